"""The kuailive world's calibration: each target marginal with its published source figure
(KuaiLive, arXiv 2508.05633, and the dataset's homepage table), and the same marginal
measured on a generated world's warehouse tables.

``docs/world.md`` carries the table :func:`markdown` writes for the demo and default
presets (``python -m mspa_tasks world-stats``); a test regenerates the demo world and checks
every calibrated marginal against its target.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from mspa_tasks.days import DAY_MS, window_for
from mspa_tasks.world.generate import WorldSpec

# KuaiLive's published totals (21 days, 2025-05-05..05-25).
KUAILIVE = {"users": 23_772, "streamers": 452_621, "rooms": 11_613_708, "clicks": 4_909_515,
            "comments": 196_526, "likes": 179_311, "gifts": 72_646, "days": 21}


@dataclass(frozen=True)
class Target:
    name: str
    source: str          # where the figure comes from
    kuailive: float | None  # None: no published aggregate (the value is an assumption)
    tolerance: float | None  # relative band a generated world must fall in (None: reported only)


K = KUAILIVE
TARGETS = (
    Target("authors per user", "452,621 streamers / 23,772 users",
           K["streamers"] / K["users"], None),
    Target("gifts per user-day", "72,646 gifts / 23,772 users / 21 days",
           K["gifts"] / K["users"] / K["days"], 0.25),
    Target("clicks per user-day", "4,909,515 clicks / 23,772 users / 21 days",
           K["clicks"] / K["users"] / K["days"], 0.25),
    Target("gifts per click", "72,646 gifts / 4,909,515 clicks", K["gifts"] / K["clicks"], 0.25),
    Target("interactions per author, 21 days (mean)",
           "5,357,998 interactions / 452,621 streamers", 5_357_998 / K["streamers"], None),
    Target("median / mean interactions per interacted author", "not published ('most "
           "streamers have few interactions'): heavy tail", None, None),
    Target("top 1% authors' share of interactions", "not published (long-tail popularity)",
           None, None),
    Target("share of authors shown on an impression day (only live ones can be)",
           "not published (11.6M rooms / 452,621 streamers / 21 days = 1.22 rooms per "
           "streamer-day counts several rooms a day); the world's live_share is 0.3",
           None, None),
    Target("share of authors first live inside the span", "not published", None, None),
    Target("repeat share of gifts (to an author the user gifted before in the span)",
           "not a knob: what preferences and the live schedule produce", None, None),
)


def measure(warehouse_url: str, spec: WorldSpec) -> dict[str, float]:
    """Every target's value on the world ``spec`` wrote into ``warehouse_url``."""
    n_users, n_authors = spec.n_users, spec.n_authors
    day0 = window_for(spec.end_ds, spec.n_days).start_ms // DAY_MS
    engine = sa.create_engine(warehouse_url)
    try:
        tips = pd.read_sql("SELECT user_id, author_id, ts FROM tip_events "
                           "WHERE user_id IS NOT NULL AND author_id IS NOT NULL "
                           "AND amount > 0", engine).drop_duplicates()
        imp = pd.read_sql("SELECT user_id, author_id, ts, clicked, gifted FROM impressions",
                          engine)
        authors = pd.read_sql("SELECT author_id, MIN(updated_at) AS first_ms FROM authors "
                              "WHERE author_id IS NOT NULL GROUP BY author_id", engine)
    finally:
        engine.dispose()
    tips = tips[tips.author_id.isin(authors.author_id) & (tips.ts // DAY_MS < day0 + spec.n_days)]
    tip_days, imp_days = spec.n_days, spec.impression_days
    clicks = imp[imp.clicked == 1]
    per_author = pd.concat([tips.author_id, clicks.author_id]).value_counts()
    shown_per_day = imp.assign(day=imp.ts // DAY_MS).groupby("day").author_id.nunique()
    tips = tips.sort_values("ts")
    top = max(1, len(per_author) // 100)
    return {
        "authors per user": n_authors / n_users,
        "gifts per user-day": len(tips) / n_users / tip_days,
        "clicks per user-day": len(clicks) / n_users / imp_days,
        "gifts per click": imp.gifted.sum() / max(1, len(clicks)),
        "interactions per author, 21 days (mean)": (len(tips) / tip_days + len(clicks) / imp_days)
        * 21 / n_authors,
        "median / mean interactions per interacted author": per_author.median() / per_author.mean(),
        "top 1% authors' share of interactions": per_author.iloc[:top].sum() / per_author.sum(),
        # Impressions show only live authors: a lower bound of the live share.
        "share of authors shown on an impression day (only live ones can be)":
            shown_per_day.mean() / n_authors,
        "share of authors first live inside the span":
            float((authors.first_ms // DAY_MS > day0).mean()),
        "repeat share of gifts (to an author the user gifted before in the span)":
            float(tips.duplicated(["user_id", "author_id"]).mean()),
    }


def markdown(measured: dict[str, dict[str, float]]) -> str:
    """The docs/world.md table: one column per measured preset."""
    names = list(measured)
    lines = ["| marginal | source figure | KuaiLive | " + " | ".join(names) + " |",
             "| --- | --- | ---: | " + " | ".join("---:" for _ in names) + " |"]
    for t in TARGETS:
        ref = "—" if t.kuailive is None else f"{t.kuailive:.4g}"
        lines.append(f"| {t.name} | {t.source} | {ref} | "
                     + " | ".join(f"{measured[n][t.name]:.4g}" for n in names) + " |")
    return "\n".join(lines) + "\n"


def out_of_band(values: dict[str, float]) -> list[str]:
    """The calibrated marginals (those with a tolerance) outside their band, said."""
    out = []
    for t in TARGETS:
        if t.tolerance is None or t.kuailive is None:
            continue
        v = values[t.name]
        if abs(v - t.kuailive) > t.tolerance * t.kuailive:
            out.append(f"{t.name}: {v:.4g}, target {t.kuailive:.4g} ± {t.tolerance:.0%}")
    return out
