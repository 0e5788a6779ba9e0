"""What a replay of ``ds`` reads, forward in time: day ``ds``'s impressions, scored with
what was published from data through the day before (the *model day*: the newest day
before ``ds`` whose sessions and vectors are published). In production the vectors published
at 02:00 after day D-1 serve day D's requests; the replay does the same, so nothing from day
``ds`` enters any model (vectors, texts, baselines trained on the window ending the model
day). Also what the segments need: each user's and author's interactions in that window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.config import ReplayConfig, Settings
from mspa_tasks.datasets import (
    AUTHOR_VECTORS,
    FORWARD_DAY,
    SESSIONS,
    USER_VECTORS,
    read_vectors,
)
from mspa_tasks.days import window_for
from mspa_tasks.encoder_lineage import fusion_weight
from mspa_tasks.run import DayRun
from mspa_tasks.scoring.baselines import FUSED, MSPA, Scorer, als, fuse, popularity
from mspa_tasks.warehouse import fetch_arrow, make_engine

log = logging.getLogger(__name__)

IMPRESSIONS_SCHEMA = FORWARD_DAY.tables["impressions"]


class NoEarlierDay(RuntimeError):
    """Nothing was published before ``ds``: there is no model to replay ``ds`` forward with
    (the first day of a deployment). The parts say so; it is not a failure."""


@dataclass
class ReplayData:
    """The model day's vectors and sessions, and day ``ds``'s impressions, by position."""

    ds: str                       # the replayed day (its impressions)
    model_day: str                # the day whose published artifacts score them
    author_ids: np.ndarray
    author_vectors: np.ndarray
    user_ids: np.ndarray          # every kept user of the window (sessions)
    user_vectors: np.ndarray      # MSPA preference vectors, zero rows where a user has none
    has_vector: np.ndarray        # (n_users,) bool
    split: np.ndarray             # (n_users,) "train" | "val" | "test"
    train_users: np.ndarray       # session rows used to train the baselines: user index
    train_items: np.ndarray       # ... and author index
    impressions: pa.Table
    # Interactions in the window ending the model day (tips and clicks), for the segments:
    seen_pairs: set[tuple[int, int]]  # (user index, author index) the user tipped or clicked
    author_interactions: np.ndarray   # per author index, tips + clicks in the window
    author_first_ms: np.ndarray       # per author index, first interaction (-1: none)
    author_since_ms: np.ndarray       # per author index, first profile row (-1: undated)
    window_end_ms: int
    encoder_version: str = ""         # the model day's vectors' encoder

    @property
    def author_index(self) -> dict[int, int]:
        return {int(a): i for i, a in enumerate(self.author_ids)}

    @property
    def user_index(self) -> dict[int, int]:
        return {int(u): i for i, u in enumerate(self.user_ids)}


def model_day(ds: str, store: ArtifactStore) -> str:
    """The newest day before ``ds`` whose ``sessions``, ``author_vectors`` and
    ``user_vectors`` are all published (:class:`NoEarlierDay` when none is)."""
    inputs = (SESSIONS, AUTHOR_VECTORS, USER_VECTORS)
    days = set.intersection(*(set(d for d in x.days(store) if d < ds) for x in inputs))
    if not days:
        raise NoEarlierDay(f"nothing is published before {ds}: the forward replay of {ds} "
                           "needs the vectors of an earlier day (run mspa_daily for the day "
                           "before first)")
    return max(days)


def load_day(ds: str, warehouse_url: str, store: ArtifactStore, window_days: int = 30,
             held_out: bool = False, hold_out: tuple[str, ...] = ("test",)) -> ReplayData:
    """Day ``ds``'s impressions with the model day's artifacts (module doc). Day ``ds``
    itself must have passed ingest (its sessions published: its feed is complete and
    checked), though none of its artifacts is used.

    ``held_out``: the artifacts of ``ds`` itself, for the held-out evaluation of ``u2a``
    (the last tip of each user in a ``hold_out`` split is kept out of the baselines' rows and
    is the label: test users for the replay, validation users for the retrain ablation)."""
    SESSIONS.require(store, ds, "the replay")
    day = ds if held_out else model_day(ds, store)
    a_table, a_vectors = read_vectors(store, AUTHOR_VECTORS, day)
    u_table, u_vectors = read_vectors(store, USER_VECTORS, day)
    sessions = SESSIONS.read(store, day, "sessions", "replay")
    split_table = SESSIONS.read(store, day, "user_split", "replay")
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
    keep = (a_rows >= 0) & ~(held_out & np.isin(split[u_rows], list(hold_out)))

    today = window_for(ds, 1)
    history = window_for(day, window_days)
    engine = make_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            impressions = fetch_arrow(conn, "replay/select_impressions.sql",
                                      {"start_ms": today.start_ms, "end_ms": today.end_ms},
                                      schema=IMPRESSIONS_SCHEMA)
            clicks = fetch_arrow(conn, "replay/select_clicks.sql",
                                 {"start_ms": history.start_ms, "end_ms": history.end_ms})
            since = fetch_arrow(conn, "replay/select_author_since.sql",
                                {"end_ms": history.end_ms})
    finally:
        engine.dispose()

    # Interactions in the model day's window: its tips (every one, the held-out included:
    # they happened before ds) and its clicks.
    c_users = np.array([u_index.get(int(u), -1) for u in clicks.column("user_id").to_numpy()],
                       np.int64)
    c_authors = np.array([a_index.get(int(a), -1) for a in
                          clicks.column("author_id").to_numpy()], np.int64)
    t_ok = a_rows >= 0
    c_ok = c_authors >= 0
    seen = set(zip(u_rows[t_ok].tolist(), a_rows[t_ok].tolist(), strict=True))
    seen |= {(u, a) for u, a in zip(c_users[c_ok].tolist(), c_authors[c_ok].tolist(),
                                    strict=True) if u >= 0}
    interactions = (np.bincount(a_rows[t_ok], minlength=len(author_ids))
                    + np.bincount(c_authors[c_ok], minlength=len(author_ids)))
    first = np.full(len(author_ids), -1, np.int64)
    ts = np.r_[sessions.column("ts").to_numpy()[t_ok], clicks.column("ts").to_numpy()[c_ok]]
    who = np.r_[a_rows[t_ok], c_authors[c_ok]]
    if len(who):
        order = np.lexsort((ts, who))
        starts = np.flatnonzero(np.r_[True, who[order][1:] != who[order][:-1]])
        first[who[order][starts]] = ts[order][starts]
    since_ms = np.full(len(author_ids), -1, np.int64)
    for a, ms in zip(since.column("author_id").to_pylist(), since.column("since_ms").to_pylist(),
                     strict=True):
        if int(a) in a_index:
            since_ms[a_index[int(a)]] = int(ms)
    log.info("replay %s forward with the artifacts of %s: %d kept authors, %d kept users (%d "
             "with a preference vector), %d impressions on %s", ds, day, len(author_ids),
             len(user_ids), has_vector.sum(), impressions.num_rows, ds)
    return ReplayData(ds, day, author_ids, a_vectors, user_ids, vectors, has_vector, split,
                      u_rows[keep], a_rows[keep], impressions, seen, interactions, first,
                      since_ms, history.end_ms,
                      AUTHOR_VECTORS.manifest(store, day).get("encoder_version", ""))


DEFAULT_FUSION_WEIGHT = 0.5


def fusion_weight_for(data: ReplayData, store: ArtifactStore | None) -> tuple[float, str]:
    """MSPA's weight in the fused score for the model day's vectors: the one the encoder
    alignment of that day chose on validation users, else :data:`DEFAULT_FUSION_WEIGHT`."""

    if store is None:
        return DEFAULT_FUSION_WEIGHT, "no store given: the default weight"
    weight, note = fusion_weight(store, data.model_day, data.encoder_version)
    if weight is None:
        return DEFAULT_FUSION_WEIGHT, f"{note}: the default weight {DEFAULT_FUSION_WEIGHT}"
    return weight, note


def baselines(data: ReplayData, cfg: ReplayConfig, als_scorer: Scorer | None = None
              ) -> dict[str, Scorer]:
    """Popularity and ALS trained on the data's training rows (ALS as given when the forward
    day already holds it)."""
    n_users, n_items = len(data.user_ids), len(data.author_ids)
    ids = als_scorer or als(data.train_users, data.train_items, n_users, n_items, cfg)
    return {"popularity": popularity(data.train_users, data.train_items, n_users, n_items),
            "als": ids}


def scorers(data: ReplayData, settings: Settings, store: ArtifactStore | None = None,
            als_scorer: Scorer | None = None) -> dict[str, Scorer]:
    """MSPA, the fused score (weight: :func:`fusion_weight_for`), popularity and ALS."""
    mspa = Scorer(MSPA, data.user_vectors, data.author_vectors)
    base = baselines(data, settings.replay, als_scorer)
    weight, note = fusion_weight_for(data, store)
    log.info("fused score: MSPA's weight %.2f (%s)", weight, note)
    fused = fuse(mspa, base["als"], weight, np.flatnonzero(data.has_vector))
    fused.meta.update({"weight": weight, "source": note})
    return {MSPA: mspa, FUSED: fused, **base}


# ---------------------------------------------------------------------------------------
# the forward day, loaded once per run


class StaleForwardDay(RuntimeError):
    """The published forward day was built from artifacts that have changed since."""


def _vectors(rows: np.ndarray) -> pa.Array:
    """An ``(n, d)`` matrix as a list column, without a Python float per value."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    offsets = np.arange(len(rows) + 1, dtype=np.int32) * rows.shape[1]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(rows.ravel()))


def _matrix(table: pa.Table, column: str) -> np.ndarray:
    values = table.column(column).combine_chunks()
    n = table.num_rows
    flat = np.asarray(values.flatten(), dtype=np.float32)
    return flat.reshape(n, len(flat) // n if n else 0)


def build_forward_day(run: DayRun) -> tuple[ReplayData, Scorer]:
    """The forward day of ``ds`` and ALS trained on the model day's window, in memory: what
    :func:`publish_forward_day` publishes (benchmarks that replay a day the DAG did not run
    use it directly)."""
    data = load_day(run.ds, run.url, run.artifacts, run.settings.ingest.window_days)
    return data, als(data.train_users, data.train_items, len(data.user_ids),
                     len(data.author_ids), run.settings.replay)


def publish_forward_day(run: DayRun) -> dict:
    """Load day ``ds`` forward (:func:`load_day`), train ALS on the model day's window once,
    and publish both as ``forward_day/ds=<ds>``: what the encoder gate, the offline replay
    and the ANN parity read (:func:`read_forward_day`). On the first day of a deployment
    nothing is published and the reason is returned."""
    try:
        data, ids = build_forward_day(run)
    except NoEarlierDay as exc:
        log.warning("%s", exc)
        return {"ds": run.ds, "note": str(exc)}
    seen = np.array(sorted(data.seen_pairs), np.int64).reshape(-1, 2)
    tables = {
        "users": FORWARD_DAY.build("users", {
            "user_id": data.user_ids, "split": data.split.tolist(),
            "has_vector": data.has_vector, "vector": _vectors(data.user_vectors),
            "als": _vectors(ids.users)}),
        "authors": FORWARD_DAY.build("authors", {
            "author_id": data.author_ids, "vector": _vectors(data.author_vectors),
            "als": _vectors(ids.items), "interactions": data.author_interactions,
            "first_ms": data.author_first_ms, "since_ms": data.author_since_ms}),
        "train": FORWARD_DAY.build("train", {"user": data.train_users,
                                             "author": data.train_items}),
        "seen": FORWARD_DAY.build("seen", {"user": seen[:, 0], "author": seen[:, 1]}),
        "impressions": data.impressions.cast(IMPRESSIONS_SCHEMA),
    }
    published = FORWARD_DAY.publish(run.artifacts, run.ds, tables, {
        "model_day": data.model_day, "encoder_version": data.encoder_version,
        "window_end_ms": data.window_end_ms, "als": {
            k: getattr(run.settings.replay, k) for k in type(run.settings.replay).model_fields
            if k.startswith("als_")},
        "counts": {name: t.num_rows for name, t in tables.items()}})
    log.info("forward day %s (artifacts of %s) published: %s", run.ds, data.model_day,
             published.manifest["counts"])
    return {"ds": run.ds, "model_day": data.model_day, "manifest": published.manifest_uri,
            "counts": published.manifest["counts"]}


def read_forward_day(run: DayRun) -> tuple[ReplayData, Scorer]:
    """The forward day of ``ds`` as :func:`publish_forward_day` published it, and its ALS
    scorer. :class:`NoEarlierDay` on a deployment's first day, :class:`InputsMissing` when
    the task that builds it has not run, :class:`StaleForwardDay` when the model day's
    vectors changed since it was built (a rerun of the day before)."""
    store, ds = run.artifacts, run.ds
    day = model_day(ds, store)  # NoEarlierDay first: the first day is not a missing input
    manifest = FORWARD_DAY.manifest(store, ds, "the forward replay")
    encoder = AUTHOR_VECTORS.manifest(store, day).get("encoder_version", "")
    if (manifest["model_day"], manifest["encoder_version"]) != (day, encoder):
        raise StaleForwardDay(
            f"forward_day/ds={ds} was built from the artifacts of {manifest['model_day']} "
            f"(encoder {manifest['encoder_version']}), the model day is now {day} (encoder "
            f"{encoder}): clear encoder.forward_day for {ds} and what follows it")
    read = lambda table: FORWARD_DAY.read(store, ds, table, "the forward replay")  # noqa: E731
    users, authors, train, seen = read("users"), read("authors"), read("train"), read("seen")
    n = lambda t, c: t.column(c).to_numpy(zero_copy_only=False)  # noqa: E731
    data = ReplayData(
        ds, day, n(authors, "author_id"), _matrix(authors, "vector"), n(users, "user_id"),
        _matrix(users, "vector"), n(users, "has_vector").astype(bool), n(users, "split"),
        n(train, "user"), n(train, "author"), read("impressions"),
        set(zip(n(seen, "user").tolist(), n(seen, "author").tolist(), strict=True)),
        n(authors, "interactions"), n(authors, "first_ms"), n(authors, "since_ms"),
        int(manifest["window_end_ms"]), manifest["encoder_version"])
    log.info("forward day %s read (artifacts of %s, built once by encoder.forward_day)", ds,
             day)
    return data, Scorer("als", _matrix(users, "als"), _matrix(authors, "als"))


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


def requests_with_positives(s: Scored, watched: np.ndarray) -> tuple[np.ndarray, list]:
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
