"""The ``ann`` part of the replay: a sample of requests replayed through the published Milvus
alias (or a past day's own collection), HR@K there against exact search on the same
sample, and ANN recall@K.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from mspa_tasks import vector_store
from mspa_tasks.forward_day import (
    NoEarlierDay,
    read_forward_day,
    requests_with_positives,
    scored_impressions,
)
from mspa_tasks.replay.parts import MSPA, row, write_part
from mspa_tasks.run import DayRun
from mspa_tasks.scoring import metrics as M

log = logging.getLogger(__name__)


def replay_ann(run: DayRun) -> dict[str, Any]:
    """The ``ann`` part: a sample of day ``ds``'s requests through the collection that
    served them (the model day's: the alias itself when it still serves that day, else that
    day's own collection) vs exact search on the same vectors."""
    ds, store, settings, target = run.ds, run.artifacts, run.settings, run.target

    cfg = settings.replay
    try:
        data, _ = read_forward_day(run)
    except NoEarlierDay as exc:
        return write_part(store, settings, ds, "ann", {"metrics": [], "note": str(exc)})
    day = data.model_day
    s = scored_impressions(data)
    watched = s.clicked if cfg.watched == "clicked" else s.gifted
    req_users, positives = requests_with_positives(s, watched)
    if not len(req_users) or cfg.ann_sample == 0:
        return write_part(store, settings, ds, "ann", {"metrics": [],
                                                        "note": "no requests to sample"})
    rng = np.random.default_rng(cfg.seed)
    pick = np.sort(rng.choice(len(req_users), min(cfg.ann_sample, len(req_users)),
                              replace=False))
    queries = data.user_vectors[req_users[pick]]
    k = vector_store.clamp_k(cfg.hr_k, len(data.author_ids))  # as the vector gate
    with vector_store.milvus_client(target) as client:
        # the alias itself when it serves the model day; else that day's own collection
        serving = vector_store.collection_of_day(client, settings.vectors.alias, day)
        if serving is None:
            return write_part(store, settings, ds, "ann", {
                "metrics": [], "note": f"no collection of ds={day} behind "
                                       f"{settings.vectors.alias} (never published, or "
                                       "dropped by retention)"})
        through = (settings.vectors.alias if serving == vector_store.serving_collection(
            client, settings.vectors.alias) else serving)
        vector_store.ensure_loaded(client, through)
        started = time.perf_counter()
        ann = vector_store.search_positions(client, through, queries, k,
                                       settings.vectors, data.author_index)
        seconds = time.perf_counter() - started
    exact_scores = queries @ data.author_vectors.T
    recall = vector_store.recall_at_k(exact_scores, ann, k)
    sample_pos = [positives[i] for i in pick]
    hr_ann = float(np.mean([bool(set(p.tolist()) & set(a)) for p, a in
                            zip(sample_pos, ann, strict=True)]))
    hr_exact = M.hit_rate_at_k(queries, data.author_vectors, sample_pos, (k,))[k]
    metrics = [row("ann_hr_exact", MSPA, hr_exact, len(pick)),
               row("ann_hr_milvus", MSPA, hr_ann, len(pick)),
               row("ann_recall", MSPA, recall, len(pick))]
    return write_part(store, settings, ds, "ann", {
        "metrics": metrics, "k": k, "model_day": day, "collection": serving,
        "alias": settings.vectors.alias,
        "index_type": settings.vectors.index_type,
        "timing": {"seconds": round(seconds, 2),
                   "queries_per_s": round(len(pick) / max(seconds, 1e-9), 2)}})
