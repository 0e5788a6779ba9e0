"""Seeded generator of a live-streaming world with known latent structure.

Two shapes (``WorldSpec.shape``). ``kuailive``, the default and demo presets, is calibrated to
KuaiLive's published statistics (arXiv 2508.05633; each marginal, its source figure and our
value are in docs/world.md): far more authors than users, authors live on some days only,
new authors first going live during the span, gifts rare relative to clicks, a heavy-tailed
popularity, and no loyalty knob (repeat tipping is whatever the preferences and the live
schedule produce). ``closed``, the small test worlds: every author exists from day 0 and is
live every day, users re-tip their last author with a personal loyalty.

Authors have a category, region, scene, visual style and atmosphere; about 30% drift to a
new atmosphere and scene partway through. Users have sparse category preferences, a home
region with a personal bias towards it, atmosphere tastes, an activity level with a long
tail (so the paper's filters have users to drop) and loyalty (re-tipping the last author).
Tips follow those preferences, weighted by a long-tailed author popularity. Texts
(profiles, ASR, frame captions, comments) and small PNG frames are drawn from the latents.
Impressions with clicks and gifts cover the last ``impression_days`` days.

Dirty rows are added on purpose, each with exactly one defect, and counted in the ledger
returned by :func:`generate_world` (``expected_quarantine``): tips with a null user or
author, tips to unknown authors, negative amounts, future timestamps, duplicate deliveries
of an event, authors with a null id, a duplicate profile, no text or no image. All of them
land inside the 30-day window that ends on the world's last day.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from mspa_tasks import vocab as V
from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.datasets import WORLD_TRUTH
from mspa_tasks.days import DAY_MS
from mspa_tasks.warehouse import bulk_insert, make_engine, run_sql

log = logging.getLogger(__name__)

AUTHOR_ID0 = 10_000
USER_ID0 = 1_000_000
# Evening-heavy diurnal curve of tipping (UTC hours; the demo world lives in one zone).
# The kuailive world's click-through rate of an impression (measured on the default world,
# docs/world.md): requests per user-day = clicks_per_user_day / (impressions per request x it).
CLICK_THROUGH = 0.54
DIURNAL = np.array([2, 1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 4, 5, 4, 4, 4, 5, 6, 8, 10, 12, 12, 9, 5],
                   dtype=float)


@dataclass(frozen=True)
class WorldSpec:
    """Size and shape knobs. ``PRESETS`` holds the named sizes."""

    n_users: int = 2_000
    n_authors: int = 38_000         # KuaiLive: 452,621 streamers / 23,772 users = 19.0
    n_days: int = 35
    end_ds: str = "2026-11-20"
    seed: int = 7
    tips_per_user_day: float = 0.146  # KuaiLive: 72,646 gifts / 23,772 users / 21 days
    impression_days: int = 7
    impressions_per_request: int = 10
    frames_per_author: int = 2
    drift_share: float = 0.3
    dirty_rate: float = 0.002
    window_days: int = 30
    shape: Literal["kuailive", "closed"] = "kuailive"
    # The kuailive shape's knobs (docs/world.md says which figure each one comes from):
    clicks_per_user_day: float = 9.83   # KuaiLive: 4,909,515 clicks / 23,772 users / 21 days
    gifts_per_click: float = 0.0148     # KuaiLive: 72,646 gifts / 4,909,515 clicks
    live_share: float = 0.3             # mean share of days an author goes live
    new_author_share: float = 0.2       # authors whose first live falls inside the span
    popularity_sigma: float = 2.0       # log-normal sigma of author popularity (closed: 1.3)

    def __post_init__(self) -> None:
        if self.n_users < 10 or self.n_authors < 20:
            raise ValueError(f"world too small: {self.n_users} users, {self.n_authors} authors "
                             "(need at least 10 users and 20 authors)")
        if self.n_days < self.window_days + 2:
            raise ValueError(f"n_days={self.n_days} must exceed window_days={self.window_days} "
                             "by at least 2 so the window has a previous day")
        dt.date.fromisoformat(self.end_ds)
        if self.shape not in ("kuailive", "closed"):
            raise ValueError(f"shape={self.shape!r}: use 'kuailive' or 'closed'")
        if not (0 < self.live_share <= 1 and 0 <= self.new_author_share < 1):
            raise ValueError(f"live_share={self.live_share} must be in (0, 1] and "
                             f"new_author_share={self.new_author_share} in [0, 1)")


PRESETS: dict[str, WorldSpec] = {
    # Closed worlds for the tests: small, every author live daily, loyal users.
    "tiny": WorldSpec(n_users=150, n_authors=200, impression_days=2, frames_per_author=1,
                      tips_per_user_day=0.5, shape="closed"),
    # The KuaiLive-shaped world at the size of the whole daily DAG on 2 cores with SmolLM2.
    # The composer writes ~1.1 author texts/s and ~0.6 preference texts/s on CPU, and every
    # kept author needs a text: the catalogue (~1,400 kept authors: HR@1000 means something)
    # is what bounds the authors-per-user ratio here (5, against KuaiLive's 19; docs/world.md).
    # The day after reuses every text whose input did not change (new frames, new tips).
    "demo": WorldSpec(n_users=300, n_authors=1_500),
    # The smallest world the whole daily DAG is tested on through Airflow with SmolLM2
    # (tests/dags): ~30 kept users, ~60 kept authors (2 test users, too few for the replay's
    # Recall@K on the last day: the report's coverage says so; tests/mspa_tasks/replay has it).
    "e2e": WorldSpec(n_users=40, n_authors=64, impression_days=2, frames_per_author=1,
                     tips_per_user_day=0.6, shape="closed"),
    # KuaiLive's shape at KuaiLive's authors-per-user ratio (2,000 users, 38,000 authors).
    "default": WorldSpec(),
    # >= 100k authors and >= 1M tip events (about 1.2M with this seed).
    "scale": WorldSpec(n_users=40_000, n_authors=100_000, tips_per_user_day=0.85,
                       impression_days=1, frames_per_author=1, shape="closed"),
    # The daily DAG's scale run (BENCHMARKS.md): >= 20k users, >= 100k authors, >= 2M tip
    # events (about 2.1M with this seed).
    "scale-dag": WorldSpec(n_users=24_000, n_authors=100_000, tips_per_user_day=2.5,
                           impression_days=1, frames_per_author=1, shape="closed"),
}


@dataclass
class WorldSummary:
    spec: dict[str, Any]
    rows: dict[str, int]
    expected_quarantine: dict[str, dict[str, int]]
    clean_tip_events: int
    seconds: float
    artifacts: dict[str, str] = field(default_factory=dict)


class _BucketSampler:
    """Draw an index with probability proportional to ``weights`` among items sharing a key."""

    def __init__(self, keys: np.ndarray, weights: np.ndarray) -> None:
        self.order = np.argsort(keys, kind="stable")
        self.sorted_keys = keys[self.order]
        self.cum = np.cumsum(weights[self.order])

    def sample(self, query: np.ndarray, u: np.ndarray) -> np.ndarray:
        lo = np.searchsorted(self.sorted_keys, query, side="left")
        hi = np.searchsorted(self.sorted_keys, query, side="right")
        base = np.where(lo > 0, self.cum[np.maximum(lo - 1, 0)], 0.0)
        top = self.cum[np.maximum(hi - 1, 0)]
        empty = (lo == hi) | (top <= base)  # no item, or none with weight (none live)
        target = base + u * (top - base)
        pos = np.clip(np.searchsorted(self.cum, target, side="right"), lo, np.maximum(hi - 1, lo))
        out = self.order[np.minimum(pos, len(self.order) - 1)]
        return np.where(empty, -1, out)


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs``."""
    cum = probs.cumsum(axis=1)
    r = rng.random(len(probs))[:, None] * cum[:, -1:]
    return (cum < r).sum(axis=1)


def generate_world(spec: WorldSpec, warehouse_url: str, store: ArtifactStore) -> WorldSummary:
    """Write the world into the warehouse's source tables (replacing them) and its frames and
    latent truth into ``store`` under ``world/``. Deterministic for a given spec."""
    started = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    end_day = dt.date.fromisoformat(spec.end_ds)
    day0 = end_day - dt.timedelta(days=spec.n_days - 1)
    day0_ms = int(dt.datetime.combine(day0, dt.time(), dt.UTC).timestamp() * 1000)
    n_cat, n_reg, n_atm, n_sty = len(V.CATEGORIES), len(V.REGIONS), len(V.ATMOSPHERES), len(V.STYLES)

    # ---- authors ---------------------------------------------------------------------
    A = spec.n_authors
    a_cat = rng.choice(n_cat, A, p=np.array(V.CATEGORY_WEIGHTS) / sum(V.CATEGORY_WEIGHTS))
    a_reg = rng.choice(n_reg, A, p=np.array(V.REGION_WEIGHTS) / sum(V.REGION_WEIGHTS))
    a_sty = rng.integers(0, n_sty, A)
    a_atm0 = rng.integers(0, n_atm, A)
    a_scene0 = rng.integers(0, 3, A)
    drifts = rng.random(A) < spec.drift_share
    a_drift_day = np.where(drifts, rng.integers(3, spec.n_days - 1, A), spec.n_days + 1)
    a_atm1 = (a_atm0 + rng.integers(1, n_atm, A)) % n_atm
    a_scene1 = (a_scene0 + rng.integers(1, 3, A)) % 3
    a_pop = rng.lognormal(0.0, 1.3, A)
    kuailive = spec.shape == "kuailive"
    if kuailive:  # the same draw, stretched to the calibrated sigma
        a_pop = a_pop ** (spec.popularity_sigma / 1.3)
    author_ids = AUTHOR_ID0 + np.arange(A)
    # Who is live on which day, from a stream of its own so the closed worlds stay as they were.
    live, a_start = _live_schedule(spec, np.random.default_rng([spec.seed, 1]))

    # ---- users -----------------------------------------------------------------------
    U = spec.n_users
    u_theta = rng.dirichlet(np.full(n_cat, 0.25), U)
    u_home = rng.choice(n_reg, U, p=np.array(V.REGION_WEIGHTS) / sum(V.REGION_WEIGHTS))
    u_bias = rng.beta(2, 2, U)
    u_phi = rng.dirichlet(np.full(n_atm, 0.6), U)
    u_rate = spec.tips_per_user_day * rng.lognormal(-0.5, 1.0, U)
    u_loyal = rng.beta(2, 4, U)
    if kuailive:  # no loyalty knob: repeats come from preferences and the live schedule
        u_loyal = np.zeros(U)
    user_ids = USER_ID0 + np.arange(U)
    region_p = np.array(V.REGION_WEIGHTS) / sum(V.REGION_WEIGHTS)

    def atm_on(day: int) -> np.ndarray:
        return np.where(day >= a_drift_day, a_atm1, a_atm0)

    def scene_on(day: int) -> np.ndarray:
        return np.where(day >= a_drift_day, a_scene1, a_scene0)

    def samplers(day: int) -> tuple[_BucketSampler, ...]:
        atm = atm_on(day)
        weight = a_pop * live[day]  # only authors live that day can be tipped or shown
        return (_BucketSampler((a_cat * n_reg + a_reg) * n_atm + atm, weight),
                _BucketSampler(a_cat * n_atm + atm, weight),
                _BucketSampler(a_cat, weight),
                _BucketSampler(np.zeros(A, np.int64), weight))

    def preferred_authors(users: np.ndarray, day: int) -> np.ndarray:
        full, cat_atm, cat_only, anyone = samplers(day)
        n = len(users)
        cat = _choice_rows(rng, u_theta[users])
        home = rng.random(n) < u_bias[users]
        reg = np.where(home, u_home[users], rng.choice(n_reg, n, p=region_p))
        atm = _choice_rows(rng, u_phi[users])
        pick = full.sample((cat * n_reg + reg) * n_atm + atm, rng.random(n))
        miss = pick < 0
        pick[miss] = cat_atm.sample(cat[miss] * n_atm + atm[miss], rng.random(miss.sum()))
        miss = pick < 0
        pick[miss] = cat_only.sample(cat[miss], rng.random(miss.sum()))
        miss = pick < 0  # nobody of that category is live: any live author, by popularity
        if miss.any():
            pick[miss] = anyone.sample(np.zeros(miss.sum(), np.int64), rng.random(miss.sum()))
        return pick

    # ---- tips ------------------------------------------------------------------------
    last_author = np.full(U, -1)
    tip_user, tip_author, tip_day, tip_ts = [], [], [], []
    hour_p = DIURNAL / DIURNAL.sum()
    for day in range(spec.n_days):
        counts = rng.poisson(u_rate)
        users = np.repeat(np.arange(U), counts)
        if len(users) == 0:
            continue
        authors = preferred_authors(users, day)
        loyal = (rng.random(len(users)) < u_loyal[users]) & (last_author[users] >= 0)
        authors[loyal] = last_author[users[loyal]]
        hours = rng.choice(24, len(users), p=hour_p)
        ts = day0_ms + day * DAY_MS + hours * 3_600_000 + rng.integers(0, 3_600_000, len(users))
        last_author[users] = authors  # numpy keeps the last write per user
        tip_user.append(users)
        tip_author.append(authors)
        tip_day.append(np.full(len(users), day))
        tip_ts.append(ts)
    t_user = np.concatenate(tip_user)
    t_author = np.concatenate(tip_author)
    t_day = np.concatenate(tip_day)
    t_ts = np.concatenate(tip_ts)
    order = np.argsort(t_ts, kind="stable")
    t_user, t_author, t_day, t_ts = t_user[order], t_author[order], t_day[order], t_ts[order]
    n_clean = len(t_ts)
    events = {
        "event_id": (np.arange(n_clean) + 1).astype(object),
        "user_id": user_ids[t_user].astype(object),
        "author_id": author_ids[t_author].astype(object),
        "live_id": (author_ids[t_author] * 1000 + t_day).astype(object),
        "ts": t_ts.astype(object),
        "amount": np.round(np.maximum(rng.lognormal(1.2, 1.0, n_clean), 0.1), 1).astype(object),
        "ingested_at": (t_ts + rng.exponential(20_000, n_clean).astype(np.int64) + 500),
    }

    # ---- dirty tip rows: extra rows, each with one defect, inside the last window -------
    expected: dict[str, Counter] = {"tip_events": Counter(), "authors": Counter()}
    first_window_day = spec.n_days - spec.window_days
    eligible = np.flatnonzero((t_day > first_window_day) & (t_day < spec.n_days - 1))
    n_each = max(3, int(n_clean * spec.dirty_rate))
    dirty_cols: dict[str, list] = {k: [] for k in events}
    next_event_id = n_clean + 1

    def add_dirty(kind: str, reason: str, n: int) -> None:
        nonlocal next_event_id
        base = rng.choice(eligible, n, replace=False)
        for i in base:
            row = {k: events[k][i] for k in events}
            row["ingested_at"] = int(row["ingested_at"]) + int(rng.integers(60_000, 600_000))
            if kind != "duplicate":
                row["event_id"] = next_event_id
                next_event_id += 1
            if kind == "null_user":
                row["user_id"] = None
            elif kind == "null_author":
                row["author_id"] = None
            elif kind == "unknown_author":
                row["author_id"] = int(author_ids[-1]) + 1 + int(rng.integers(1, 10_000))
            elif kind == "negative_amount":
                row["amount"] = -float(row["amount"])
            elif kind == "future":
                row["ts"] = int(row["ingested_at"]) + 400 * DAY_MS
            for k in events:
                dirty_cols[k].append(row[k])
        expected["tip_events"][reason] += n

    add_dirty("null_user", "null_key", n_each)
    add_dirty("null_author", "null_key", n_each)
    add_dirty("unknown_author", "unknown_author", n_each)
    add_dirty("negative_amount", "invalid_amount", n_each)
    add_dirty("future", "future_timestamp", n_each)
    add_dirty("duplicate", "duplicate_event", n_each)

    all_ingested = np.concatenate([events["ingested_at"], np.array(dirty_cols["ingested_at"],
                                                                    dtype=np.int64)])
    load_order = np.argsort(all_ingested, kind="stable")
    columns = ["event_id", "user_id", "author_id", "live_id", "ts", "amount", "ingested_at"]
    merged = {k: np.concatenate([np.asarray(events[k], dtype=object),
                                 np.array(dirty_cols[k], dtype=object)])[load_order]
              for k in columns}
    tip_rows = list(zip(range(1, len(load_order) + 1),
                        *[_py(merged[k]) for k in columns], strict=True))

    # ---- author profiles, media, frames, comments ---------------------------------------
    ids_shuffled = rng.permutation(A)
    n_no_text = max(2, int(A * 0.02))
    n_no_image = max(2, int(A * 0.02))
    no_text = set(ids_shuffled[:n_no_text].tolist())
    no_image = set(ids_shuffled[n_no_text:n_no_text + n_no_image].tolist())
    expected["authors"]["no_text"] += n_no_text
    expected["authors"]["no_image"] += n_no_image
    # A profile exists from the author's first live (the world's first day for most), so a
    # day (a backfill included) reads only the profiles known by its window's end.
    profile_ms = day0_ms + a_start * DAY_MS
    author_rows = []
    for a in range(A):
        cat = V.CATEGORIES[a_cat[a]]
        region = V.REGIONS[a_reg[a]]
        intro = _intro(rng, cat, V.SCENES[cat][a_scene0[a]], V.STYLES[a_sty[a]],
                       V.ATMOSPHERES[a_atm0[a]], region)
        if a in no_text:
            intro = None if a % 2 else "   "
        author_rows.append((int(author_ids[a]), _nickname(rng), f"{V.CITIES[region]}, {region}",
                            intro, cat, int(profile_ms[a])))
    clean_pool = [a for a in ids_shuffled[n_no_text + n_no_image:][:2].tolist()]
    for a in clean_pool:  # an older second profile row for the same author
        row = author_rows[a]
        author_rows.append((row[0], row[1] + "_old", row[2], row[3], row[4], row[5] - DAY_MS))
    expected["authors"]["duplicate_author"] += len(clean_pool)
    for _ in range(2):
        author_rows.append((None, _nickname(rng), "Unknown", "profile without an id", "chatting",
                            day0_ms))
    expected["authors"]["null_key"] += 2

    media_rows, comment_rows = [], []
    frames_written = 0
    for a in range(A):
        if a in no_image:
            continue
        live_days = np.flatnonzero(live[:, a])  # frames are taken while live
        days = np.sort(rng.choice(live_days, min(spec.frames_per_author, len(live_days)),
                                  replace=False))
        for day in days.tolist():
            live_id = int(author_ids[a]) * 1000 + day
            atm_i = int(a_atm1[a] if day >= a_drift_day[a] else a_atm0[a])
            scene_i = int(a_scene1[a] if day >= a_drift_day[a] else a_scene0[a])
            cat = V.CATEGORIES[a_cat[a]]
            scene, style, atm = V.SCENES[cat][scene_i], V.STYLES[a_sty[a]], V.ATMOSPHERES[atm_i]
            key = f"world/frames/{int(author_ids[a])}/{live_id}.png"
            uri = store.put_bytes(key, _frame_png(rng, cat, scene, style))
            frames_written += 1
            ts = day0_ms + day * DAY_MS + 20 * 3_600_000
            caption = f"{style} shot of a {scene}; a {cat} stream, {atm} mood"
            asr = (f"{_pick(rng, V.ASR_LINES[cat])}. {V.ATMOSPHERE_ASR[atm]}. "
                   f"{_pick(rng, V.ASR_LINES[cat])}.")
            media_rows.append((int(author_ids[a]), live_id, ts, uri, caption, asr))
            for k in range(3):
                text = _pick(rng, V.COMMENTS[atm])
                if rng.random() < 0.01:
                    text = _pick(rng, V.INJECTIONS)
                comment_rows.append((int(author_ids[a]), live_id, ts + (k + 1) * 60_000, text))

    # ---- impressions -------------------------------------------------------------------
    imp_rows = []
    request_id = 1
    k = spec.impressions_per_request
    # kuailive: requests per user-day in proportion to the user's activity, so that clicks per
    # user-day average the calibrated figure at the world's measured click-through rate.
    activity = u_rate / spec.tips_per_user_day
    requests_per_day = spec.clicks_per_user_day / (k * CLICK_THROUGH)
    crng = np.random.default_rng([spec.seed, 2])
    for day in range(spec.n_days - spec.impression_days, spec.n_days):
        if kuailive:
            active = np.repeat(np.arange(U), crng.poisson(activity * requests_per_day))
        else:
            active = np.flatnonzero(rng.random(U) < np.minimum(0.9, 0.3 + u_rate))
        pref = preferred_authors(np.repeat(active, k // 2), day).reshape(len(active), k // 2)
        live_pop = a_pop * live[day]
        pop = rng.choice(A, (len(active), k - k // 2), p=live_pop / live_pop.sum())
        shown = np.concatenate([pref, pop], axis=1)
        atm = atm_on(day)
        users = np.repeat(active[:, None], k, axis=1)
        affinity = (u_theta[users, a_cat[shown]] * 3
                    + (u_home[users] == a_reg[shown]) * u_bias[users]
                    + u_phi[users, atm[shown]] * 2)
        p_click = 1 / (1 + np.exp(-(2.5 * affinity - 2.5)))
        clicked = rng.random(shown.shape) < p_click
        p_gift = 1 / (1 + np.exp(-(2.0 * affinity - 4.5)))
        if kuailive:  # scaled so that gifts / clicks is the calibrated ratio
            p_gift = np.minimum(1.0, p_gift * spec.gifts_per_click * clicked.sum()
                                / max(p_gift[clicked].sum(), 1e-12))
        gifted = clicked & (rng.random(shown.shape) < p_gift)
        ts = day0_ms + day * DAY_MS + rng.integers(0, DAY_MS, len(active))
        for r in range(len(active)):
            for j in range(k):
                imp_rows.append((request_id, int(user_ids[active[r]]), int(author_ids[shown[r, j]]),
                                 int(ts[r]) + j, int(clicked[r, j]), int(gifted[r, j])))
            request_id += 1

    # ---- write (replacing the source tables) ---------------------------------------------
    engine = make_engine(warehouse_url)
    with engine.begin() as conn:
        run_sql(conn, "ddl/warehouse.sql")
        run_sql(conn, "world/truncate_sources.sql")
        rows = {
            "tip_events": bulk_insert(conn, "tip_events", ["load_seq", *columns], tip_rows),
            "authors": bulk_insert(conn, "authors", ["author_id", "nickname", "location", "intro",
                                                     "category", "updated_at"], author_rows),
            "author_media": bulk_insert(conn, "author_media", [
                "author_id", "live_id", "ts", "frame_uri", "frame_caption", "asr_text"], media_rows),
            "live_comments": bulk_insert(conn, "live_comments",
                                         ["author_id", "live_id", "ts", "text"], comment_rows),
            "impressions": bulk_insert(conn, "impressions", [
                "request_id", "user_id", "author_id", "ts", "clicked", "gifted"], imp_rows),
        }
    engine.dispose()
    rows["frames"] = frames_written

    latents = pa.table({
        "author_id": author_ids, "category": [V.CATEGORIES[i] for i in a_cat],
        "region": [V.REGIONS[i] for i in a_reg], "style": [V.STYLES[i] for i in a_sty],
        "atmosphere_before": [V.ATMOSPHERES[i] for i in a_atm0],
        "atmosphere_after": [V.ATMOSPHERES[i] for i in a_atm1],
        "drift_day": np.where(drifts, a_drift_day, -1), "popularity": a_pop,
        "first_live_day": a_start, "live_days": live.sum(axis=0),
    })
    live_day, live_author = np.nonzero(live)
    live_table = pa.table({"author_id": author_ids[live_author], "day": live_day})
    user_latents = pa.table({
        "user_id": user_ids, "home_region": [V.REGIONS[i] for i in u_home],
        "region_bias": u_bias, "tips_per_day": u_rate, "loyalty": u_loyal,
        **{f"pref_{c}": u_theta[:, i] for i, c in enumerate(V.CATEGORIES)},
        **{f"atm_{m}": u_phi[:, i] for i, m in enumerate(V.ATMOSPHERES)},
    })
    summary = WorldSummary(
        spec=asdict(spec), rows=rows,
        expected_quarantine={k: dict(sorted(v.items())) for k, v in expected.items()},
        clean_tip_events=n_clean, seconds=round(time.perf_counter() - started, 2),
    )
    # The latent truth goes through the catalog (an optional input of the replay's A2A
    # metric), at the world's first day so that every day of the world sees it.
    truth = WORLD_TRUTH.publish(store, day0.isoformat(), {
        "authors": latents.cast(WORLD_TRUTH.tables["authors"]),
        "users": user_latents.cast(WORLD_TRUTH.tables["users"]),
        "live": live_table.cast(WORLD_TRUTH.tables["live"])},
        {"spec": asdict(spec), "seed": spec.seed})
    summary.artifacts = {"world_truth": truth.manifest_uri}
    summary.artifacts["summary"] = store.put_text(
        "world/summary.json", json.dumps(asdict(summary), indent=2, sort_keys=True) + "\n")
    log.info("world written in %.1fs: %s", summary.seconds, rows)
    return summary


def _live_schedule(spec: WorldSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(live, first_day)``: ``live[day, author]`` and each author's first live day.

    closed: everyone from day 0, every day. kuailive: ``new_author_share`` of the authors
    first go live on a uniform day of the span (the rest before it); each author goes live on
    a day with a personal propensity drawn from Beta(0.6 m/(1-m), 0.6) (mean m =
    ``live_share``: many rarely, a few daily), and always on their first day."""
    A, days = spec.n_authors, spec.n_days
    if spec.shape == "closed":
        return np.ones((days, A), bool), np.zeros(A, np.int64)
    m = spec.live_share
    propensity = rng.beta(0.6 * m / max(1 - m, 1e-9), 0.6, A) if m < 1 else np.ones(A)
    first = np.where(rng.random(A) < spec.new_author_share, rng.integers(1, days, A), 0)
    live = rng.random((days, A)) < propensity
    live &= np.arange(days)[:, None] >= first[None, :]
    live[first, np.arange(A)] = True
    return live, first


def _py(values: np.ndarray) -> list:
    return [None if v is None else (v.item() if hasattr(v, "item") else v) for v in values]


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(0, len(options)))]


def _nickname(rng: np.random.Generator) -> str:
    parts = [_pick(rng, V.SYLLABLES) for _ in range(int(rng.integers(2, 4)))]
    return "".join(parts).capitalize() + str(int(rng.integers(1, 999)))


def _intro(rng: np.random.Generator, cat: str, scene: str, style: str, atm: str,
           region: str) -> str:
    templates = (
        "{Verb} from my {scene} in {city}. {Atm}, {style} vibes.",
        "{city} streamer who {verb}. Usually live in a {scene}; {atm}.",
        "Live nightly: {verb}. {Atm} streams with {style} lighting from a {scene}.",
    )
    verb = _pick(rng, V.CATEGORY_PHRASES[cat])
    atm_phrase = _pick(rng, V.ATMOSPHERE_PHRASES[atm])
    text = _pick(rng, templates).format(
        verb=verb, Verb=verb[0].upper() + verb[1:], scene=scene, city=V.CITIES[region],
        atm=atm_phrase, Atm=atm_phrase[0].upper() + atm_phrase[1:], style=style)
    return text


def _frame_png(rng: np.random.Generator, cat: str, scene: str, style: str) -> bytes:
    """A 32x32 PNG: scene colour background, style tint, a category-coloured subject."""
    from PIL import Image

    img = np.empty((32, 32, 3), dtype=np.int16)
    img[:] = np.array(V.SCENE_COLORS[scene]) + np.array(V.STYLE_TINT[style])
    x, y = (int(v) for v in rng.integers(4, 16, 2))
    img[y:y + 14, x:x + 10] = V.CATEGORY_COLORS[cat]
    img += rng.integers(-12, 13, img.shape, dtype=np.int16)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
