"""The ``offline`` part of the replay: exact and batched (matrix products over all kept
authors, never one query at a time).

* over the day's impressions whose user has a preference vector and whose author is kept:
  AUC and UAUC for click and for gift (scores: cosine of user and author vectors for MSPA,
  the baselines' own scores for them);
* over the day's requests with at least one watched (``replay.watched``) kept author:
  HR@K for every K of ``replay.hr_ks``;
* on test users: Recall@K and NDCG@K, relevant = the kept authors they watched on ``ds``;
* A2A alignment rate on author triples drawn from the optional dataset ``world_truth``
  when the store holds it (the demo world does; real data has no latent truth and the part
  says so).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import numpy as np

from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.config import Settings
from mspa_tasks.datasets import WORLD_TRUTH
from mspa_tasks.replay import metrics as M
from mspa_tasks.replay.data import (
    load_day,
    pair_scores,
    requests_with_positives,
    scored_impressions,
    scorers,
)
from mspa_tasks.replay.parts import row, write_part

log = logging.getLogger(__name__)


def a2a_triples(store: ArtifactStore, ds: str, author_ids: np.ndarray, n: int,
                seed: int) -> tuple[np.ndarray, str]:
    """``(triples, note)``: ``(anchor, positive, negative)`` author rows where the positive
    shares the anchor's latent category and region and the negative shares neither, from
    the optional dataset ``world_truth`` (the demo world's; real data has none)."""
    day = WORLD_TRUTH.latest(store, ds)
    if day is None:
        return np.zeros((0, 3), np.int64), "no latent truth in the store (real data): skipped"
    table = WORLD_TRUTH.read(store, day, "authors", "replay.offline")
    truth = {int(a): (c, r) for a, c, r in zip(*(table.column(k).to_pylist() for k in
                                                   ("author_id", "category", "region")),
                                                strict=True)}
    keys = [truth.get(int(a)) for a in author_ids]
    rows = np.array([i for i, k in enumerate(keys) if k is not None])
    if len(rows) < 3 or n == 0:
        return np.zeros((0, 3), np.int64), "too few authors with latent truth"
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for i in rows:
        by_key[keys[i]].append(int(i))
    rng = np.random.default_rng(seed)
    out = []
    for anchor in rng.choice(rows, size=min(n * 4, len(rows) * 50), replace=True):
        cat, region = keys[anchor]
        same = [j for j in by_key[(cat, region)] if j != anchor]
        if not same:
            continue
        neg = int(rng.choice(rows))
        if keys[neg][0] == cat or keys[neg][1] == region:
            continue
        out.append((int(anchor), int(rng.choice(same)), neg))
        if len(out) == n:
            break
    return np.array(out, np.int64).reshape(-1, 3), "positive: same category and region; " \
        f"negative: other category and other region (world_truth/ds={day})"


def replay_offline(ds: str, warehouse_url: str, store: ArtifactStore,
                   settings: Settings) -> dict[str, Any]:
    """The ``offline`` part (module doc). Returns and writes the part."""
    cfg = settings.replay
    started = time.perf_counter()
    data = load_day(ds, warehouse_url, store)
    models = scorers(data, settings)
    s = scored_impressions(data)
    rows: list[dict[str, Any]] = []
    coverage = {"impressions": s.total, "impressions_scored": int(len(s.user)),
                "authors": int(len(data.author_ids)), "users": int(len(data.user_ids)),
                "users_with_vector": int(data.has_vector.sum())}

    for name, scorer in models.items():
        scores = pair_scores(scorer, s.user, s.author)
        for label, flags in (("click", s.clicked), ("gift", s.gifted)):
            rows.append(row(f"auc_{label}", name, M.auc(scores, flags), len(scores)))
            u = M.uauc(s.user, scores, flags)
            rows.append(row(f"uauc_{label}", name, u["uauc"], u["users"]))
            rows.append(row(f"uauc_weighted_{label}", name, u["uauc_weighted"], u["users"]))

    watched = s.clicked if cfg.watched == "clicked" else s.gifted
    req_users, positives = requests_with_positives(s, watched)
    coverage["requests_with_watched"] = int(len(req_users))
    coverage["requests"] = int(len(np.unique(s.request)))
    hr_started = time.perf_counter()
    for name, scorer in models.items():
        hr = M.hit_rate_at_k(scorer.users[req_users], scorer.items, positives, cfg.hr_ks,
                             cfg.score_batch)
        rows += [row(f"hr@{k}", name, v, len(req_users)) for k, v in hr.items()]
    hr_seconds = time.perf_counter() - hr_started

    test = np.flatnonzero(data.split == "test")
    test_rel: dict[int, set[int]] = defaultdict(set)
    for u, a, w in zip(s.user, s.author, watched, strict=True):
        if w and data.split[u] == "test":
            test_rel[int(u)].add(int(a))
    t_users = np.array(sorted(test_rel), np.int64)
    relevant = [np.array(sorted(test_rel[int(u)]), np.int64) for u in t_users]
    coverage["test_users"] = int(len(test))
    coverage["test_users_with_watched"] = int(len(t_users))
    for name, scorer in models.items():
        if len(t_users):
            got = M.recall_ndcg_at_k(scorer.users[t_users], scorer.items, relevant,
                                     cfg.topk_ks, cfg.score_batch)
            rows += [row(k, name, v, len(t_users)) for k, v in got.items()]

    triples, note = a2a_triples(store, ds, data.author_ids, cfg.a2a_triples, cfg.seed)
    for name, scorer in models.items():
        if len(triples):
            rows.append(row("a2a_alignment", name,
                            M.alignment_rate(scorer.item_unit(), triples), len(triples)))
    body = {"metrics": rows, "coverage": coverage, "a2a": note,
            "n_authors": int(len(data.author_ids)),
            "timing": {"seconds": round(time.perf_counter() - started, 2),
                       "hr_seconds": round(hr_seconds, 3),
                       "hr_requests_per_s_per_model": round(
                           len(req_users) * len(models) / max(hr_seconds, 1e-9), 1)}}
    log.info("replay %s offline: coverage %s", ds, coverage)
    return write_part(store, settings, ds, "offline", body)
