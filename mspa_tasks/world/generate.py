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


REGION_P = np.array(V.REGION_WEIGHTS) / sum(V.REGION_WEIGHTS)
TIP_COLUMNS = ["event_id", "user_id", "author_id", "live_id", "ts", "amount", "ingested_at"]


@dataclass(frozen=True)
class _Authors:
    """The authors' latent traits, as indices into the vocabulary (``V``)."""

    cat: np.ndarray
    reg: np.ndarray
    sty: np.ndarray
    atm0: np.ndarray
    scene0: np.ndarray
    drifts: np.ndarray
    drift_day: np.ndarray
    atm1: np.ndarray
    scene1: np.ndarray
    pop: np.ndarray
    ids: np.ndarray
    live: np.ndarray        # (day, author) -> live that day
    start: np.ndarray       # first live day

    def atm_on(self, day: int) -> np.ndarray:
        return np.where(day >= self.drift_day, self.atm1, self.atm0)


@dataclass(frozen=True)
class _Users:
    """The users' latent tastes and activity."""

    theta: np.ndarray       # category preferences
    home: np.ndarray
    bias: np.ndarray        # towards the home region
    phi: np.ndarray         # atmosphere tastes
    rate: np.ndarray        # tips per day
    loyal: np.ndarray
    ids: np.ndarray


@dataclass(frozen=True)
class _Tips:
    """The clean tips, in time order (indices into users and authors)."""

    user: np.ndarray
    author: np.ndarray
    day: np.ndarray
    ts: np.ndarray


def generate_world(spec: WorldSpec, warehouse_url: str, store: ArtifactStore) -> WorldSummary:
    """Write the world into the warehouse's source tables (replacing them) and its frames and
    latent truth into ``store`` under ``world/``. Deterministic for a given spec: the steps
    below draw from one generator in this order."""
    started = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    day0 = dt.date.fromisoformat(spec.end_ds) - dt.timedelta(days=spec.n_days - 1)
    day0_ms = int(dt.datetime.combine(day0, dt.time(), dt.UTC).timestamp() * 1000)
    expected: dict[str, Counter] = {"tip_events": Counter(), "authors": Counter()}

    authors = _draw_authors(spec, rng)
    users = _draw_users(spec, rng)
    taste = _Taste(authors, users, rng)
    tips = _draw_tips(spec, rng, users, taste, day0_ms)
    events = _tip_events(rng, authors, users, tips)
    tip_rows = _with_dirty_tips(spec, rng, authors, events, tips.day, expected["tip_events"])
    author_rows, no_image = _profiles(rng, authors, day0_ms, expected["authors"])
    media_rows, comment_rows, frames = _media(spec, rng, authors, no_image, store, day0_ms)
    impression_rows = _impressions(spec, rng, authors, users, taste, day0_ms)

    rows = _write_sources(warehouse_url, tip_rows, author_rows, media_rows, comment_rows,
                          impression_rows, _live_rooms(authors, day0_ms))
    rows["frames"] = frames
    summary = WorldSummary(
        spec=asdict(spec), rows=rows,
        expected_quarantine={k: dict(sorted(v.items())) for k, v in expected.items()},
        clean_tip_events=len(tips.ts), seconds=round(time.perf_counter() - started, 2),
    )
    summary.artifacts = {"world_truth": _publish_truth(store, spec, day0, authors, users)}
    summary.artifacts["summary"] = store.put_text(
        "world/summary.json", json.dumps(asdict(summary), indent=2, sort_keys=True) + "\n")
    log.info("world written in %.1fs: %s", summary.seconds, rows)
    return summary


def _draw_authors(spec: WorldSpec, rng: np.random.Generator) -> _Authors:
    n_cat, n_reg, n_atm, n_sty = len(V.CATEGORIES), len(V.REGIONS), len(V.ATMOSPHERES), len(V.STYLES)
    A = spec.n_authors
    cat = rng.choice(n_cat, A, p=np.array(V.CATEGORY_WEIGHTS) / sum(V.CATEGORY_WEIGHTS))
    reg = rng.choice(n_reg, A, p=REGION_P)
    sty = rng.integers(0, n_sty, A)
    atm0 = rng.integers(0, n_atm, A)
    scene0 = rng.integers(0, 3, A)
    drifts = rng.random(A) < spec.drift_share
    drift_day = np.where(drifts, rng.integers(3, spec.n_days - 1, A), spec.n_days + 1)
    atm1 = (atm0 + rng.integers(1, n_atm, A)) % n_atm
    scene1 = (scene0 + rng.integers(1, 3, A)) % 3
    pop = rng.lognormal(0.0, 1.3, A)
    if spec.shape == "kuailive":  # the same draw, stretched to the calibrated sigma
        pop = pop ** (spec.popularity_sigma / 1.3)
    # Who is live on which day, from a stream of its own so the closed worlds stay as they were.
    live, start = _live_schedule(spec, np.random.default_rng([spec.seed, 1]))
    return _Authors(cat, reg, sty, atm0, scene0, drifts, drift_day, atm1, scene1, pop,
                    AUTHOR_ID0 + np.arange(A), live, start)


def _draw_users(spec: WorldSpec, rng: np.random.Generator) -> _Users:
    n_cat, n_reg, n_atm = len(V.CATEGORIES), len(V.REGIONS), len(V.ATMOSPHERES)
    U = spec.n_users
    theta = rng.dirichlet(np.full(n_cat, 0.25), U)
    home = rng.choice(n_reg, U, p=REGION_P)
    bias = rng.beta(2, 2, U)
    phi = rng.dirichlet(np.full(n_atm, 0.6), U)
    rate = spec.tips_per_user_day * rng.lognormal(-0.5, 1.0, U)
    loyal = rng.beta(2, 4, U)
    if spec.shape == "kuailive":  # no loyalty knob: repeats come from preferences and the live schedule
        loyal = np.zeros(U)
    return _Users(theta, home, bias, phi, rate, loyal, USER_ID0 + np.arange(U))


class _Taste:
    """Which live author a user picks on a day: a category, a region (home with the user's
    bias) and an atmosphere drawn from the user's tastes, then an author of that cell by
    popularity, falling back to coarser cells when none of it is live."""

    def __init__(self, authors: _Authors, users: _Users, rng: np.random.Generator) -> None:
        self.a, self.u, self.rng = authors, users, rng

    def _samplers(self, day: int) -> tuple[_BucketSampler, ...]:
        a, n_reg, n_atm = self.a, len(V.REGIONS), len(V.ATMOSPHERES)
        atm = a.atm_on(day)
        weight = a.pop * a.live[day]  # only authors live that day can be tipped or shown
        return (_BucketSampler((a.cat * n_reg + a.reg) * n_atm + atm, weight),
                _BucketSampler(a.cat * n_atm + atm, weight),
                _BucketSampler(a.cat, weight),
                _BucketSampler(np.zeros(len(a.ids), np.int64), weight))

    def preferred(self, users: np.ndarray, day: int) -> np.ndarray:
        rng, u, n_reg, n_atm = self.rng, self.u, len(V.REGIONS), len(V.ATMOSPHERES)
        full, cat_atm, cat_only, anyone = self._samplers(day)
        n = len(users)
        cat = _choice_rows(rng, u.theta[users])
        home = rng.random(n) < u.bias[users]
        reg = np.where(home, u.home[users], rng.choice(n_reg, n, p=REGION_P))
        atm = _choice_rows(rng, u.phi[users])
        pick = full.sample((cat * n_reg + reg) * n_atm + atm, rng.random(n))
        miss = pick < 0
        pick[miss] = cat_atm.sample(cat[miss] * n_atm + atm[miss], rng.random(miss.sum()))
        miss = pick < 0
        pick[miss] = cat_only.sample(cat[miss], rng.random(miss.sum()))
        miss = pick < 0  # nobody of that category is live: any live author, by popularity
        if miss.any():
            pick[miss] = anyone.sample(np.zeros(miss.sum(), np.int64), rng.random(miss.sum()))
        return pick


def _draw_tips(spec: WorldSpec, rng: np.random.Generator, users: _Users, taste: _Taste,
               day0_ms: int) -> _Tips:
    """Each day, each user tips Poisson(rate) times: a preferred live author, or (loyal
    users) the last author they tipped; at evening-heavy hours."""
    n_users = len(users.ids)
    last_author = np.full(n_users, -1)
    tip_user, tip_author, tip_day, tip_ts = [], [], [], []
    hour_p = DIURNAL / DIURNAL.sum()
    for day in range(spec.n_days):
        counts = rng.poisson(users.rate)
        who = np.repeat(np.arange(n_users), counts)
        if len(who) == 0:
            continue
        picked = taste.preferred(who, day)
        loyal = (rng.random(len(who)) < users.loyal[who]) & (last_author[who] >= 0)
        picked[loyal] = last_author[who[loyal]]
        hours = rng.choice(24, len(who), p=hour_p)
        ts = day0_ms + day * DAY_MS + hours * 3_600_000 + rng.integers(0, 3_600_000, len(who))
        last_author[who] = picked  # numpy keeps the last write per user
        tip_user.append(who)
        tip_author.append(picked)
        tip_day.append(np.full(len(who), day))
        tip_ts.append(ts)
    t_user, t_author = np.concatenate(tip_user), np.concatenate(tip_author)
    t_day, t_ts = np.concatenate(tip_day), np.concatenate(tip_ts)
    order = np.argsort(t_ts, kind="stable")
    return _Tips(t_user[order], t_author[order], t_day[order], t_ts[order])


def _tip_events(rng: np.random.Generator, authors: _Authors, users: _Users,
                tips: _Tips) -> dict[str, np.ndarray]:
    """The clean tips as ``tip_events`` columns: ids, a live room per author-day, amounts,
    and a landing time shortly after each event."""
    n = len(tips.ts)
    amount = np.round(np.maximum(rng.lognormal(1.2, 1.0, n), 0.1), 1).astype(object)
    return {
        "event_id": (np.arange(n) + 1).astype(object),
        "user_id": users.ids[tips.user].astype(object),
        "author_id": authors.ids[tips.author].astype(object),
        "live_id": (authors.ids[tips.author] * 1000 + tips.day).astype(object),
        "ts": tips.ts.astype(object),
        "amount": amount,
        "ingested_at": (tips.ts + rng.exponential(20_000, n).astype(np.int64) + 500),
    }


def _with_dirty_tips(spec: WorldSpec, rng: np.random.Generator, authors: _Authors,
                     events: dict[str, np.ndarray], t_day: np.ndarray,
                     expected: Counter) -> list[tuple]:
    """The tip rows to load, in landing order: the clean ones plus extra rows inside the last
    window, each with one defect (counted in ``expected`` by quarantine reason)."""
    n_clean = len(events["ts"])
    first_window_day = spec.n_days - spec.window_days
    eligible = np.flatnonzero((t_day > first_window_day) & (t_day < spec.n_days - 1))
    n_each = max(3, int(n_clean * spec.dirty_rate))
    dirty: dict[str, list] = {k: [] for k in events}
    next_event_id = n_clean + 1

    def add(kind: str, reason: str, n: int) -> None:
        nonlocal next_event_id
        for i in rng.choice(eligible, n, replace=False):
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
                row["author_id"] = int(authors.ids[-1]) + 1 + int(rng.integers(1, 10_000))
            elif kind == "negative_amount":
                row["amount"] = -float(row["amount"])
            elif kind == "future":
                row["ts"] = int(row["ingested_at"]) + 400 * DAY_MS
            for k in events:
                dirty[k].append(row[k])
        expected[reason] += n

    add("null_user", "null_key", n_each)
    add("null_author", "null_key", n_each)
    add("unknown_author", "unknown_author", n_each)
    add("negative_amount", "invalid_amount", n_each)
    add("future", "future_timestamp", n_each)
    add("duplicate", "duplicate_event", n_each)

    landed = np.concatenate([events["ingested_at"], np.array(dirty["ingested_at"],
                                                              dtype=np.int64)])
    load_order = np.argsort(landed, kind="stable")
    merged = {k: np.concatenate([np.asarray(events[k], dtype=object),
                                 np.array(dirty[k], dtype=object)])[load_order]
              for k in TIP_COLUMNS}
    return list(zip(range(1, len(load_order) + 1), *[_py(merged[k]) for k in TIP_COLUMNS],
                    strict=True))


def _profiles(rng: np.random.Generator, authors: _Authors, day0_ms: int,
              expected: Counter) -> tuple[list[tuple], set[int]]:
    """``authors`` rows (an intro written from the latents; 2% without text, a second older
    profile for two authors, two rows without an id) and the authors left without media."""
    A = len(authors.ids)
    shuffled = rng.permutation(A)
    n_no_text = max(2, int(A * 0.02))
    n_no_image = max(2, int(A * 0.02))
    no_text = set(shuffled[:n_no_text].tolist())
    no_image = set(shuffled[n_no_text:n_no_text + n_no_image].tolist())
    expected["no_text"] += n_no_text
    expected["no_image"] += n_no_image
    # A profile exists from the author's first live (the world's first day for most), so a
    # day (a backfill included) reads only the profiles known by its window's end.
    profile_ms = day0_ms + authors.start * DAY_MS
    rows = []
    for a in range(A):
        cat = V.CATEGORIES[authors.cat[a]]
        region = V.REGIONS[authors.reg[a]]
        intro = _intro(rng, cat, V.SCENES[cat][authors.scene0[a]], V.STYLES[authors.sty[a]],
                       V.ATMOSPHERES[authors.atm0[a]], region)
        if a in no_text:
            intro = None if a % 2 else "   "
        rows.append((int(authors.ids[a]), _nickname(rng), f"{V.CITIES[region]}, {region}",
                     intro, cat, int(profile_ms[a])))
    twice = shuffled[n_no_text + n_no_image:][:2].tolist()
    for a in twice:  # an older second profile row for the same author
        row = rows[a]
        rows.append((row[0], row[1] + "_old", row[2], row[3], row[4], row[5] - DAY_MS))
    expected["duplicate_author"] += len(twice)
    for _ in range(2):
        rows.append((None, _nickname(rng), "Unknown", "profile without an id", "chatting",
                     day0_ms))
    expected["null_key"] += 2
    return rows, no_image


def _media(spec: WorldSpec, rng: np.random.Generator, authors: _Authors, no_image: set[int],
           store: ArtifactStore, day0_ms: int) -> tuple[list[tuple], list[tuple], int]:
    """``author_media`` rows (a PNG frame in ``store``, its caption and an ASR snippet, on
    days the author was live, in the atmosphere of that day) and three comments per frame,
    about 1% of them prompt injections. Returns the rows and the frames written."""
    media_rows, comment_rows = [], []
    frames = 0
    for a in range(len(authors.ids)):
        if a in no_image:
            continue
        live_days = np.flatnonzero(authors.live[:, a])  # frames are taken while live
        days = np.sort(rng.choice(live_days, min(spec.frames_per_author, len(live_days)),
                                  replace=False))
        for day in days.tolist():
            author_id = int(authors.ids[a])
            live_id = author_id * 1000 + day
            drifted = day >= authors.drift_day[a]
            atm_i = int(authors.atm1[a] if drifted else authors.atm0[a])
            scene_i = int(authors.scene1[a] if drifted else authors.scene0[a])
            cat = V.CATEGORIES[authors.cat[a]]
            scene, style = V.SCENES[cat][scene_i], V.STYLES[authors.sty[a]]
            atm = V.ATMOSPHERES[atm_i]
            uri = store.put_bytes(f"world/frames/{author_id}/{live_id}.png",
                                  _frame_png(rng, cat, scene, style))
            frames += 1
            ts = day0_ms + day * DAY_MS + 20 * 3_600_000
            caption = f"{style} shot of a {scene}; a {cat} stream, {atm} mood"
            asr = (f"{_pick(rng, V.ASR_LINES[cat])}. {V.ATMOSPHERE_ASR[atm]}. "
                   f"{_pick(rng, V.ASR_LINES[cat])}.")
            media_rows.append((author_id, live_id, ts, uri, caption, asr))
            for k in range(3):
                text = _pick(rng, V.COMMENTS[atm])
                if rng.random() < 0.01:
                    text = _pick(rng, V.INJECTIONS)
                comment_rows.append((author_id, live_id, ts + (k + 1) * 60_000, text))
    return media_rows, comment_rows, frames


def _impressions(spec: WorldSpec, rng: np.random.Generator, authors: _Authors, users: _Users,
                 taste: _Taste, day0_ms: int) -> list[tuple]:
    """Requests of the last ``impression_days`` days: half preferred, half popular live
    authors; clicks and gifts by the user's affinity to each shown author."""
    rows = []
    request_id = 1
    k = spec.impressions_per_request
    n_users, n_authors = len(users.ids), len(authors.ids)
    kuailive = spec.shape == "kuailive"
    # kuailive: requests per user-day in proportion to the user's activity, so that clicks per
    # user-day average the calibrated figure at the world's measured click-through rate.
    activity = users.rate / spec.tips_per_user_day
    requests_per_day = spec.clicks_per_user_day / (k * CLICK_THROUGH)
    crng = np.random.default_rng([spec.seed, 2])
    for day in range(spec.n_days - spec.impression_days, spec.n_days):
        if kuailive:
            active = np.repeat(np.arange(n_users), crng.poisson(activity * requests_per_day))
        else:
            active = np.flatnonzero(rng.random(n_users) < np.minimum(0.9, 0.3 + users.rate))
        pref = taste.preferred(np.repeat(active, k // 2), day).reshape(len(active), k // 2)
        live_pop = authors.pop * authors.live[day]
        pop = rng.choice(n_authors, (len(active), k - k // 2), p=live_pop / live_pop.sum())
        shown = np.concatenate([pref, pop], axis=1)
        atm = authors.atm_on(day)
        who = np.repeat(active[:, None], k, axis=1)
        affinity = (users.theta[who, authors.cat[shown]] * 3
                    + (users.home[who] == authors.reg[shown]) * users.bias[who]
                    + users.phi[who, atm[shown]] * 2)
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
                rows.append((request_id, int(users.ids[active[r]]),
                             int(authors.ids[shown[r, j]]), int(ts[r]) + j, int(clicked[r, j]),
                             int(gifted[r, j])))
            request_id += 1
    return rows


def _live_rooms(authors: _Authors, day0_ms: int) -> list[tuple]:
    """``live_rooms`` rows: a room for each day an author is live (the world schedules live
    days, not hours: a room spans its day), with the ``live_id`` its tips and frames carry.
    Draws nothing: the other tables are the same with or without it."""
    days, cols = np.nonzero(authors.live)
    ids = authors.ids[cols].astype(np.int64)
    start = day0_ms + days.astype(np.int64) * DAY_MS
    return list(zip(_py(ids * 1000 + days), _py(ids), _py(start), _py(start + DAY_MS - 1),
                    strict=True))


def _write_sources(warehouse_url: str, tip_rows: list, author_rows: list, media_rows: list,
                   comment_rows: list, impression_rows: list,
                   room_rows: list) -> dict[str, int]:
    """Replace the warehouse's source tables with these rows, in one transaction."""
    engine = make_engine(warehouse_url)
    with engine.begin() as conn:
        run_sql(conn, "ddl/warehouse.sql")
        run_sql(conn, "world/truncate_sources.sql")
        rows = {
            "tip_events": bulk_insert(conn, "tip_events", ["load_seq", *TIP_COLUMNS], tip_rows),
            "authors": bulk_insert(conn, "authors", ["author_id", "nickname", "location", "intro",
                                                     "category", "updated_at"], author_rows),
            "author_media": bulk_insert(conn, "author_media", [
                "author_id", "live_id", "ts", "frame_uri", "frame_caption", "asr_text"], media_rows),
            "live_comments": bulk_insert(conn, "live_comments",
                                         ["author_id", "live_id", "ts", "text"], comment_rows),
            "impressions": bulk_insert(conn, "impressions", [
                "request_id", "user_id", "author_id", "ts", "clicked", "gifted"], impression_rows),
            "live_rooms": bulk_insert(conn, "live_rooms",
                                      ["live_id", "author_id", "start_ts", "end_ts"], room_rows),
        }
    engine.dispose()
    return rows


def _publish_truth(store: ArtifactStore, spec: WorldSpec, day0: dt.date, authors: _Authors,
                   users: _Users) -> str:
    """The latent truth through the catalog (an optional input of the replay's A2A metric),
    at the world's first day so that every day of the world sees it. Returns its manifest."""
    a = authors
    latents = pa.table({
        "author_id": a.ids, "category": [V.CATEGORIES[i] for i in a.cat],
        "region": [V.REGIONS[i] for i in a.reg], "style": [V.STYLES[i] for i in a.sty],
        "atmosphere_before": [V.ATMOSPHERES[i] for i in a.atm0],
        "atmosphere_after": [V.ATMOSPHERES[i] for i in a.atm1],
        "drift_day": np.where(a.drifts, a.drift_day, -1), "popularity": a.pop,
        "first_live_day": a.start, "live_days": a.live.sum(axis=0),
    })
    live_day, live_author = np.nonzero(a.live)
    live_table = pa.table({"author_id": a.ids[live_author], "day": live_day})
    user_latents = pa.table({
        "user_id": users.ids, "home_region": [V.REGIONS[i] for i in users.home],
        "region_bias": users.bias, "tips_per_day": users.rate, "loyalty": users.loyal,
        **{f"pref_{c}": users.theta[:, i] for i, c in enumerate(V.CATEGORIES)},
        **{f"atm_{m}": users.phi[:, i] for i, m in enumerate(V.ATMOSPHERES)},
    })
    truth = WORLD_TRUTH.publish(store, day0.isoformat(), {
        "authors": latents.cast(WORLD_TRUTH.tables["authors"]),
        "users": user_latents.cast(WORLD_TRUTH.tables["users"]),
        "live": live_table.cast(WORLD_TRUTH.tables["live"])},
        {"spec": asdict(spec), "seed": spec.seed})
    return truth.manifest_uri


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
