"""Segments of the replay: where a content-based recommender should earn its keep.

Every segment is a property of a (user, author) pair or of an author, judged on the
interactions (tips and clicks) of the window ending the model day, never on day ``ds``:

* **novelty** — ``new_to_user``: the user never tipped nor clicked the author in the window;
  ``repeat``: they did (re-watching a favourite, what ID models are good at);
* **freshness** — ``cold``: the author had no interaction in the window, or the first one in
  its last ``COLD_DAYS`` days, or first went live in them (its first profile row, which the
  world and the KuaiLive import date to the first live); ``established``: otherwise;
* **popularity** — ``head`` / ``torso`` / ``tail``: authors ranked by interactions in the
  window, cut where the cumulative interactions pass one third and two thirds of the total
  (each bucket holds the same attention; the tail holds most authors). Authors with no
  interaction are tail.

A request belongs to a segment when at least one author it watched does; its positives are
then those authors only. An impression belongs to the segment of its pair.
"""

from __future__ import annotations

import numpy as np

from mspa_tasks.days import DAY_MS

COLD_DAYS = 3
FAMILIES: dict[str, tuple[str, ...]] = {
    "novelty": ("new_to_user", "repeat"),
    "freshness": ("cold", "established"),
    "popularity": ("head", "torso", "tail"),
}
SEGMENTS = tuple(s for names in FAMILIES.values() for s in names)


def popularity_buckets(interactions: np.ndarray) -> np.ndarray:
    """``head``/``torso``/``tail`` per author (module doc).

    >>> popularity_buckets(np.array([1, 30, 0, 10, 10, 9])).tolist()
    ['tail', 'head', 'tail', 'torso', 'tail', 'tail']
    """
    interactions = np.asarray(interactions, dtype=float)
    out = np.full(len(interactions), "tail", dtype=object)
    total = interactions.sum()
    if total == 0:
        return out
    order = np.argsort(-interactions, kind="stable")
    before = np.cumsum(interactions[order]) - interactions[order]  # mass above each author
    share = before / total
    out[order[share < 1 / 3]] = "head"
    out[order[(share >= 1 / 3) & (share < 2 / 3)]] = "torso"
    out[interactions == 0] = "tail"
    return out


def cold_authors(interactions: np.ndarray, first_ms: np.ndarray, window_end_ms: int,
                 cold_days: int = COLD_DAYS, since_ms: np.ndarray | None = None) -> np.ndarray:
    """True for authors new to the window: none of its interactions, the first one in its
    last ``cold_days`` days, or a first live (``since_ms``, -1: unknown) in them.

    >>> cold_authors(np.array([0, 5, 5, 5]), np.array([-1, 0, 9 * DAY_MS, 0]), 10 * DAY_MS,
    ...              since_ms=np.array([-1, -1, -1, 8 * DAY_MS])).tolist()
    [True, False, True, True]
    """
    recent = window_end_ms - cold_days * DAY_MS
    cold = (np.asarray(interactions) == 0) | (np.asarray(first_ms) >= recent)
    if since_ms is not None:
        cold |= np.asarray(since_ms) >= recent
    return cold


def pair_segments(users: np.ndarray, authors: np.ndarray, seen: set[tuple[int, int]],
                  popularity: np.ndarray, cold: np.ndarray) -> dict[str, np.ndarray]:
    """Per (user index, author index) pair, a boolean mask for every segment."""
    repeat = np.fromiter(((int(u), int(a)) in seen for u, a in zip(users, authors, strict=True)),
                         bool, len(users))
    bucket = popularity[authors] if len(authors) else np.array([], dtype=object)
    is_cold = cold[authors] if len(authors) else np.array([], dtype=bool)
    return {"new_to_user": ~repeat, "repeat": repeat, "cold": is_cold,
            "established": ~is_cold, **{b: bucket == b for b in FAMILIES["popularity"]}}
