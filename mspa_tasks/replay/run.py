"""Offline replay of day ``ds``: MSPA against its baselines on the day's real requests.

Three independent parts, each written to ``reports/replay/ds=<ds>/parts/<part>.json`` and
then merged by :func:`mspa_tasks.replay.report.publish_report`:

``offline`` (:func:`replay_offline`), exact and batched (matrix products over all kept
authors, never one query at a time):
  * over the day's impressions whose user has a preference vector and whose author is kept:
    AUC and UAUC for click and for gift (scores: cosine of user and author vectors for MSPA,
    the baselines' own scores for them);
  * over the day's requests with at least one watched (``replay.watched``) kept author:
    HR@K for every K of ``replay.hr_ks``;
  * on test users: Recall@K and NDCG@K, relevant = the kept authors they watched on ``ds``;
  * A2A alignment rate on author triples drawn from the world's latent truth, when the store
    holds it (the demo world does; real data has no latent truth and the part says so).
``u2a`` (:func:`replay_u2a`): Acc@m of the champion recommender model on test users'
  alignment examples (the last tip held out), and the baselines' pick among the same
  candidates.
``ann`` (:func:`replay_ann`): a sample of requests replayed through the published Milvus
  alias: HR@K there against exact search on the same sample, and ANN recall@K.

Every metric row is ``{metric, model, value, n}``: ``model`` is ``mspa`` or a baseline
(``popularity``, ``als``); ``n`` is what it was averaged over.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.config import Settings
from mspa_tasks.datasets import ALIGN_EXAMPLES, CATALOG, SESSIONS, WORLD_TRUTH, InputsMissing
from mspa_tasks.ingest import window_for
from mspa_tasks.replay import metrics as M
from mspa_tasks.replay.baselines import Scorer, als, popularity
from mspa_tasks.sampling import stable_sample
from mspa_tasks.vectors.encode import AUTHOR_VECTORS, USER_VECTORS, read_vectors
from mspa_tasks.warehouse import fetch_arrow, make_engine

log = logging.getLogger(__name__)

MSPA = "mspa"
BASELINES = ("popularity", "als")
MODELS = (MSPA, *BASELINES)
PARTS = ("offline", "u2a", "ann")
IMPRESSIONS_SCHEMA = pa.schema([("request_id", pa.int64()), ("user_id", pa.int64()),
                                ("author_id", pa.int64()), ("ts", pa.int64()),
                                ("clicked", pa.int64()), ("gifted", pa.int64())])


ReplayInputsMissing = InputsMissing  # the catalog's one error for an unpublished input


def part_key(settings: Settings, ds: str, part: str) -> str:
    return f"{settings.replay.report_prefix}/ds={ds}/parts/{part}.json"


def row(metric: str, model: str, value: float, n: int, **extra: Any) -> dict[str, Any]:
    out = {"metric": metric, "model": model,
           "value": None if value is None or not np.isfinite(value) else float(value), "n": int(n)}
    return {**out, **extra}


def _write_part(store: ArtifactStore, settings: Settings, ds: str, part: str,
                body: dict[str, Any]) -> dict[str, Any]:
    body = {"ds": ds, "part": part, **body}
    store.put_text(part_key(settings, ds, part), json.dumps(body, indent=2, default=str) + "\n")
    for r in body.get("metrics", []):
        log.info("replay %s %-14s %-11s %s (n=%d)", ds, r["metric"], r["model"],
                 "n/a" if r["value"] is None else f"{r['value']:.4f}", r["n"])
    return body


@dataclass
class ReplayData:
    """The day's vectors, sessions and impressions, indexed by position."""

    author_ids: np.ndarray
    author_vectors: np.ndarray
    user_ids: np.ndarray          # every kept user of the window (sessions)
    user_vectors: np.ndarray      # MSPA preference vectors, zero rows where a user has none
    has_vector: np.ndarray        # (n_users,) bool
    split: np.ndarray             # (n_users,) "train" | "val" | "test"
    train_users: np.ndarray       # session rows used to train the baselines: user index
    train_items: np.ndarray       # ... and author index
    impressions: pa.Table

    @property
    def author_index(self) -> dict[int, int]:
        return {int(a): i for i, a in enumerate(self.author_ids)}

    @property
    def user_index(self) -> dict[int, int]:
        return {int(u): i for i, u in enumerate(self.user_ids)}


def load_day(ds: str, warehouse_url: str, store: ArtifactStore) -> ReplayData:
    for dataset in (SESSIONS, CATALOG[AUTHOR_VECTORS], CATALOG[USER_VECTORS]):
        dataset.require(store, ds, "the replay")
    a_table, a_vectors = read_vectors(store, AUTHOR_VECTORS, ds)
    u_table, u_vectors = read_vectors(store, USER_VECTORS, ds)
    sessions = SESSIONS.read(store, ds, "sessions")
    split_table = SESSIONS.read(store, ds, "user_split")
    author_ids = a_table.column("author_id").to_numpy()
    user_ids = np.unique(sessions.column("user_id").to_numpy())
    u_index = {int(u): i for i, u in enumerate(user_ids)}
    a_index = {int(a): i for i, a in enumerate(author_ids)}

    vectors = np.zeros((len(user_ids), a_vectors.shape[1]), np.float32)
    has_vector = np.zeros(len(user_ids), bool)
    for uid, vec in zip(u_table.column("user_id").to_numpy(), u_vectors, strict=True):
        if int(uid) in u_index:
            vectors[u_index[int(uid)]] = vec
            has_vector[u_index[int(uid)]] = True
    split_of = dict(zip(split_table.column("user_id").to_pylist(),
                        split_table.column("split").to_pylist(), strict=True))
    split = np.array([split_of.get(int(u), "train") for u in user_ids])

    s_users = sessions.column("user_id").to_numpy()
    s_authors = sessions.column("author_id").to_numpy()
    held_out = sessions.column("is_ground_truth").to_numpy(zero_copy_only=False).astype(bool)
    u_rows = np.array([u_index[int(u)] for u in s_users], np.int64)
    a_rows = np.array([a_index.get(int(a), -1) for a in s_authors], np.int64)
    keep = (a_rows >= 0) & ~(held_out & (split[u_rows] == "test"))

    window = window_for(ds, 1)
    engine = make_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            impressions = fetch_arrow(conn, "replay/select_impressions.sql",
                                      {"start_ms": window.start_ms, "end_ms": window.end_ms},
                                      schema=IMPRESSIONS_SCHEMA)
    finally:
        engine.dispose()
    log.info("replay %s: %d kept authors, %d kept users (%d with a preference vector), "
             "%d impressions on the day", ds, len(author_ids), len(user_ids), has_vector.sum(),
             impressions.num_rows)
    return ReplayData(author_ids, a_vectors, user_ids, vectors, has_vector, split,
                      u_rows[keep], a_rows[keep], impressions)


def scorers(data: ReplayData, settings: Settings) -> dict[str, Scorer]:
    n_users, n_items = len(data.user_ids), len(data.author_ids)
    return {MSPA: Scorer(MSPA, data.user_vectors, data.author_vectors),
            "popularity": popularity(data.train_users, data.train_items, n_users, n_items),
            "als": als(data.train_users, data.train_items, n_users, n_items, settings.replay)}


@dataclass
class Scored:
    """The day's impressions that every model can score (user with a vector, kept author)."""

    request: np.ndarray
    user: np.ndarray       # user index
    author: np.ndarray     # author index
    clicked: np.ndarray
    gifted: np.ndarray
    total: int             # impressions on the day before restriction


def scored_impressions(data: ReplayData) -> Scored:
    imp = data.impressions
    u_index, a_index = data.user_index, data.author_index
    users = np.array([u_index.get(int(u), -1) for u in imp.column("user_id").to_numpy()],
                     np.int64)
    authors = np.array([a_index.get(int(a), -1) for a in imp.column("author_id").to_numpy()],
                       np.int64)
    ok = (users >= 0) & (authors >= 0)
    ok[ok] = data.has_vector[users[ok]]
    col = lambda name: imp.column(name).to_numpy()[ok]  # noqa: E731
    return Scored(col("request_id"), users[ok], authors[ok], col("clicked").astype(bool),
                  col("gifted").astype(bool), imp.num_rows)


def pair_scores(scorer: Scorer, users: np.ndarray, authors: np.ndarray) -> np.ndarray:
    """``scorer.users[u] @ scorer.items[a]`` for each pair, row-wise (no full matrix)."""
    return np.einsum("ij,ij->i", scorer.users[users].astype(np.float64),
                     scorer.items[authors].astype(np.float64))


def _requests_with_positives(s: Scored, watched: np.ndarray) -> tuple[np.ndarray, list]:
    """``(user index per request, watched author indices per request)`` for requests with
    at least one watched kept author, in request order."""
    order = np.lexsort((s.author, s.request))
    req, auth, pos = s.request[order], s.author[order], watched[order]
    user = s.user[order]
    starts = np.flatnonzero(np.r_[True, req[1:] != req[:-1]])
    bounds = np.r_[starts, len(req)]
    users, positives = [], []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):  # grouping, not scoring
        p = np.unique(auth[a:b][pos[a:b]])
        if len(p):
            users.append(user[a])
            positives.append(p)
    return np.array(users, np.int64), positives


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
    req_users, positives = _requests_with_positives(s, watched)
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
    return _write_part(store, settings, ds, "offline", body)


def replay_u2a(ds: str, warehouse_url: str, store: ArtifactStore,
               settings: Settings) -> dict[str, Any]:
    """The ``u2a`` part: Acc@m of the champion LLM and of the baselines' picks, test users."""
    from mspa_tasks.align.champion import champion_model
    from mspa_tasks.align.evaluate import accuracy_report, evaluate_model
    from mspa_tasks.align.examples import build_examples, read_examples
    from mspa_tasks.align.store import resolve_model

    cfg = settings.replay
    if not ALIGN_EXAMPLES.is_published(store, ds):
        build_examples(ds, warehouse_url, store, settings)
    rows = read_examples(store, ds, "test", settings.align.eval_m)
    chosen = set(stable_sample({r["user_id"] for r in rows}, cfg.acc_max_users, f"{ds}:acc"))
    rows = [r for r in rows if r["user_id"] in chosen]
    if not rows:
        return _write_part(store, settings, ds, "u2a", {
            "metrics": [], "note": "no test-user alignment examples for this day"})
    version, ref = champion_model(warehouse_url, settings)
    path = resolve_model(ref, store, settings.models_dir)
    report, answers = evaluate_model(path, rows, settings.align.eval_batch_size,
                                     settings.align.eval_max_new_tokens,
                                     label=f"champion {version}")
    metrics = [row(f"acc@{m}", MSPA, report[f"acc@{m}"], report[f"n@{m}"],
                   model_version=version) for m in settings.align.eval_m]

    data = load_day(ds, warehouse_url, store)
    models = scorers(data, settings)
    u_index, a_index = data.user_index, data.author_index
    for name in BASELINES:
        scorer = models[name]
        picks = []
        for r in rows:
            cands = [a_index.get(int(a), -1) for a in r["candidate_ids"]]
            u = u_index[int(r["user_id"])]
            scores = [float(scorer.users[u] @ scorer.items[c]) if c >= 0 else -np.inf
                      for c in cands]
            picks.append(f"Recommended author: {r['candidate_ids'][int(np.argmax(scores))]}")
        base = accuracy_report(picks, rows)
        metrics += [row(f"acc@{m}", name, base[f"acc@{m}"], base[f"n@{m}"])
                    for m in settings.align.eval_m]
    metrics += [row(f"chance@{m}", "chance", 1 / m, report[f"n@{m}"])
                for m in settings.align.eval_m]
    samples = [{"user_id": r["user_id"], "m": r["m"], "ground_truth": r["ground_truth"],
                "answer": a[:400]} for r, a in list(zip(rows, answers, strict=True))[:5]]
    return _write_part(store, settings, ds, "u2a", {
        "metrics": metrics, "champion": version, "test_users": len(chosen),
        "format": {f"format@{m}": report[f"format@{m}"] for m in settings.align.eval_m},
        "samples": samples})


def replay_ann(ds: str, warehouse_url: str, store: ArtifactStore, settings: Settings,
               target) -> dict[str, Any]:
    """The ``ann`` part: a sample of requests through the published alias (or, for a past
    day replayed after a newer one was published, that day's own collection) vs exact."""
    from mspa_tasks.vectors import milvus

    cfg = settings.replay
    data = load_day(ds, warehouse_url, store)
    s = scored_impressions(data)
    watched = s.clicked if cfg.watched == "clicked" else s.gifted
    req_users, positives = _requests_with_positives(s, watched)
    if not len(req_users) or cfg.ann_sample == 0:
        return _write_part(store, settings, ds, "ann", {"metrics": [],
                                                        "note": "no requests to sample"})
    rng = np.random.default_rng(cfg.seed)
    pick = np.sort(rng.choice(len(req_users), min(cfg.ann_sample, len(req_users)),
                              replace=False))
    queries = data.user_vectors[req_users[pick]]
    k = milvus.clamp_k(cfg.hr_k, len(data.author_ids))  # as the vector gate
    with milvus.milvus_client(target) as client:
        # the alias itself when it serves ds; a past day's own collection in a backfill
        serving = milvus.collection_of_day(client, settings.vectors.alias, ds)
        if serving is None:
            return _write_part(store, settings, ds, "ann", {
                "metrics": [], "note": f"no collection of ds={ds} behind "
                                       f"{settings.vectors.alias} (nothing published yet)"})
        through = (settings.vectors.alias if serving == milvus.serving_collection(
            client, settings.vectors.alias) else serving)
        milvus.ensure_loaded(client, through)
        started = time.perf_counter()
        ann = milvus.search_positions(client, through, queries, k,
                                       settings.vectors, data.author_index)
        seconds = time.perf_counter() - started
    exact_scores = queries @ data.author_vectors.T
    recall = milvus.recall_at_k(exact_scores, ann, k)
    sample_pos = [positives[i] for i in pick]
    hr_ann = float(np.mean([bool(set(p.tolist()) & set(a)) for p, a in
                            zip(sample_pos, ann, strict=True)]))
    hr_exact = M.hit_rate_at_k(queries, data.author_vectors, sample_pos, (k,))[k]
    metrics = [row("ann_hr_exact", MSPA, hr_exact, len(pick)),
               row("ann_hr_milvus", MSPA, hr_ann, len(pick)),
               row("ann_recall", MSPA, recall, len(pick))]
    return _write_part(store, settings, ds, "ann", {
        "metrics": metrics, "k": k, "collection": serving, "alias": settings.vectors.alias,
        "index_type": settings.vectors.index_type,
        "timing": {"seconds": round(seconds, 2),
                   "queries_per_s": round(len(pick) / max(seconds, 1e-9), 2)}})
