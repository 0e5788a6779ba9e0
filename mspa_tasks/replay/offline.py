"""The ``offline`` part of the replay: exact and batched (matrix products over all kept
authors, never one query at a time).

* over the day's impressions whose user has a preference vector and whose author is kept:
  AUC and UAUC for click and for gift (scores: cosine of user and author vectors for MSPA,
  the baselines' own scores for them);
* over the day's requests with at least one watched (``replay.watched``) kept author:
  HR@K for every K of ``replay.hr_ks``;
* on test users: Recall@K and NDCG@K, relevant = the kept authors they watched on ``ds``;
* every metric per segment (:mod:`.segments`: new to the user or repeat, cold or
  established author, head / torso / tail), with its counts;
* a 95% interval for every metric from a bootstrap over users, and for each baseline the
  paired difference against MSPA with whether it is significant (:mod:`.uncertainty`).

Forward: day ``ds``'s impressions are scored with the artifacts of the day before
(:mod:`.data`); the part names that day.
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
from mspa_tasks.datasets import WORLD_TRUTH
from mspa_tasks.encoder_lineage import check_encoder_before
from mspa_tasks.forward_day import (
    NoEarlierDay,
    read_forward_day,
    requests_with_positives,
    scored_impressions,
    scorers,
)
from mspa_tasks.replay import segments as S
from mspa_tasks.replay.parts import row, write_part
from mspa_tasks.run import DayRun
from mspa_tasks.scoring import metrics as M
from mspa_tasks.scoring import uncertainty as U
from mspa_tasks.scoring.baselines import pair_scores

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


def _with_ci(rows: list[dict[str, Any]], metric: str, values: dict[str, np.ndarray],
             users: np.ndarray, cfg, **extra: Any) -> None:
    """Append one row per model: the mean of per-unit ``values``, its 95% interval over
    users and the paired difference against MSPA."""
    est = U.user_bootstrap(values, users, cfg.bootstrap, cfg.seed) if cfg.bootstrap else {}
    for name, v in values.items():
        ci = est[name].as_dict() if name in est else {}
        ci.pop("value", None)
        ci.pop("users", None)
        rows.append(row(metric, name, float(np.mean(v)) if len(v) else float("nan"), len(v),
                        users=int(len(np.unique(users))), **ci, **extra))


def _auc_rows(rows, metric, models, s, scores, flags, mask, cfg, **extra) -> None:
    users = s.user[mask]
    labels = flags[mask]
    if cfg.bootstrap:
        est = U.auc_bootstrap({n: scores[n][mask] for n in models}, labels, users,
                              cfg.bootstrap, cfg.seed)
    for name in models:
        value = M.auc(scores[name][mask], labels)
        ci = est[name].as_dict() if cfg.bootstrap else {}
        for key in ("value", "users"):
            ci.pop(key, None)
        rows.append(row(metric, name, value, int(mask.sum()), users=int(len(np.unique(users))),
                        **ci, **extra))


def _uauc_rows(rows, metric, models, s, scores, flags, mask, cfg, **extra) -> None:
    per = {n: M.grouped_auc(s.user[mask], scores[n][mask], flags[mask]) for n in models}
    valid = next(iter(per.values())).valid  # the same users are valid for every model
    groups = np.unique(s.user[mask])[valid] if len(s.user[mask]) else np.zeros(0, np.int64)
    _with_ci(rows, metric, {n: p.auc[valid] for n, p in per.items()}, groups, cfg, **extra)


def replay_offline(run: DayRun) -> dict[str, Any]:
    """The ``offline`` part (module doc). Returns and writes the part."""
    ds, warehouse_url, store, settings = run.ds, run.url, run.artifacts, run.settings
    cfg = settings.replay
    started = time.perf_counter()
    try:
        data, als_scorer = read_forward_day(run)
    except NoEarlierDay as exc:
        log.warning("%s", exc)
        return write_part(store, settings, ds, "offline", {"metrics": [], "note": str(exc)})
    check_encoder_before(warehouse_url, data.encoder_version, ds)
    models = scorers(data, settings, store, als_scorer)
    body = offline_body(data, models, store, cfg, started)
    log.info("replay %s offline (artifacts of %s): coverage %s; segments %s", ds,
             data.model_day, body["coverage"], body["segment_counts"])
    return write_part(store, settings, ds, "offline", body)


def offline_body(data, models: dict, store: ArtifactStore, cfg, started: float | None = None
                 ) -> dict[str, Any]:
    """Every figure of the offline part for the scorers ``models`` (name -> Scorer; paired
    intervals against ``mspa``), on the day ``data`` holds. bench/encoder.py calls it with
    more scorers than the daily replay's."""
    started = time.perf_counter() if started is None else started
    names = list(models)
    s = scored_impressions(data)
    rows: list[dict[str, Any]] = []
    coverage = {"impressions": s.total, "impressions_scored": int(len(s.user)),
                "authors": int(len(data.author_ids)), "users": int(len(data.user_ids)),
                "users_with_vector": int(data.has_vector.sum())}
    popularity = S.popularity_buckets(data.author_interactions)
    cold = S.cold_authors(data.author_interactions, data.author_first_ms, data.window_end_ms,
                          cfg.cold_days, data.author_since_ms)
    pairs = S.pair_segments(s.user, s.author, data.seen_pairs, popularity, cold)
    everything = np.ones(len(s.user), bool)
    segment_rows: list[dict[str, Any]] = []

    scores = {name: pair_scores(scorer, s.user, s.author) for name, scorer in models.items()}
    boot_started = time.perf_counter()
    for label, flags in (("click", s.clicked), ("gift", s.gifted)):
        _auc_rows(rows, f"auc_{label}", names, s, scores, flags, everything, cfg)
        _uauc_rows(rows, f"uauc_{label}", names, s, scores, flags, everything, cfg)
        for name in names:
            u = M.uauc(s.user, scores[name], flags)
            rows.append(row(f"uauc_weighted_{label}", name, u["uauc_weighted"], u["users"]))
    for seg, mask in pairs.items():
        _auc_rows(segment_rows, "auc_click", names, s, scores, s.clicked, mask, cfg, segment=seg)
        _uauc_rows(segment_rows, "uauc_click", names, s, scores, s.clicked, mask, cfg,
                   segment=seg)

    watched = s.clicked if cfg.watched == "clicked" else s.gifted
    req_users, positives = requests_with_positives(s, watched)
    coverage["requests_with_watched"] = int(len(req_users))
    coverage["requests"] = int(len(np.unique(s.request)))
    hr_seconds = 0.0
    by_segment = _segment_positives(req_users, positives, data, popularity, cold)
    for seg, (seg_users, seg_pos) in {None: (req_users, positives), **by_segment}.items():
        if not len(seg_users):
            continue
        hr_started = time.perf_counter()
        hits = {name: M.hits_per_query(scorer.users[seg_users], scorer.items, seg_pos,
                                       cfg.hr_ks, cfg.score_batch)
                for name, scorer in models.items()}
        hr_seconds += time.perf_counter() - hr_started
        target = rows if seg is None else segment_rows
        extra = {} if seg is None else {"segment": seg}
        for k in cfg.hr_ks:
            _with_ci(target, f"hr@{k}", {n: h[k] for n, h in hits.items()}, seg_users, cfg,
                     **extra)

    test_rel: dict[int, set[int]] = defaultdict(set)
    for u, a, w in zip(s.user, s.author, watched, strict=True):
        if w and data.split[u] == "test":
            test_rel[int(u)].add(int(a))
    t_users = np.array(sorted(test_rel), np.int64)
    relevant = [np.array(sorted(test_rel[int(u)]), np.int64) for u in t_users]
    coverage["test_users"] = int((data.split == "test").sum())
    coverage["test_users_with_watched"] = int(len(t_users))
    if len(t_users):
        per = {name: M.recall_ndcg_per_query(scorer.users[t_users], scorer.items, relevant,
                                             cfg.topk_ks, cfg.score_batch)
               for name, scorer in models.items()}
        for metric in next(iter(per.values())):
            _with_ci(rows, metric, {n: p[metric] for n, p in per.items()}, t_users, cfg)
    boot_seconds = time.perf_counter() - boot_started - hr_seconds

    triples, note = a2a_triples(store, data.model_day, data.author_ids, cfg.a2a_triples,
                                cfg.seed)
    for name, scorer in models.items():
        if len(triples):
            rows.append(row("a2a_alignment", name,
                            M.alignment_rate(scorer.item_unit(), triples), len(triples)))
    segment_counts = {seg: {"impressions": int(m.sum()),
                            "requests": int(len(by_segment.get(seg, ((), ()))[0]))}
                      for seg, m in pairs.items()}
    body = {"metrics": rows, "segments": segment_rows, "segment_counts": segment_counts,
            "coverage": coverage, "a2a": note, "n_authors": int(len(data.author_ids)),
            "model_day": data.model_day,
            "fusion": models["fused"].meta if "fused" in models else {},
            "artifacts": {"mspa": f"author and user vectors of {data.model_day}",
                          "fused": f"MSPA's vectors and ALS of {data.model_day}, MSPA's "
                                   f"weight {models['fused'].meta.get('weight', 0):.2f}"
                                   if "fused" in models else "",
                          "popularity": f"tips of the window ending {data.model_day}",
                          "als": f"tips of the window ending {data.model_day}",
                          "scored": f"impressions of {data.ds}"},
            "bootstrap": {"replicates": cfg.bootstrap, "unit": "user", "level": 0.95,
                          "seed": cfg.seed},
            "timing": {"seconds": round(time.perf_counter() - started, 2),
                       "hr_seconds": round(hr_seconds, 3),
                       "metrics_and_bootstrap_seconds": round(boot_seconds, 3),
                       "hr_requests_per_s_per_model": round(
                           len(req_users) * len(models) / max(hr_seconds, 1e-9), 1)}}
    return body


def _segment_positives(req_users: np.ndarray, positives: list[np.ndarray], data,
                       popularity: np.ndarray, cold: np.ndarray
                       ) -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
    """Per segment, the requests with at least one watched author in it, and those
    authors as their positives (one segment pass over every (request, author) pair)."""
    sizes = np.array([len(p) for p in positives], np.int64)
    request = np.repeat(np.arange(len(positives)), sizes)
    authors = np.concatenate(positives) if len(positives) else np.zeros(0, np.int64)
    masks = S.pair_segments(req_users[request], authors, data.seen_pairs, popularity, cold)
    out = {}
    for seg, m in masks.items():
        kept = np.flatnonzero(np.bincount(request[m], minlength=len(positives)))
        bounds = np.r_[0, np.cumsum(sizes)]
        out[seg] = (req_users[kept], [positives[i][m[bounds[i]:bounds[i + 1]]] for i in kept])
    return out
