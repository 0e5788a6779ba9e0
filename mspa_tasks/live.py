"""Who is live when, from the ``live_rooms`` source table: one row per live room, its author,
its first start and its last end (the demo world writes a room for each live day; a
platform's room log gives hours). The recommender's candidate sets draw their negatives among
the authors live at the labelled tip's moment (the paper's protocol): a streamer who was
offline is not a choice the user turned down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sqlalchemy as sa

from mspa_tasks.warehouse import fetch_arrow, make_engine

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class LiveRooms:
    """Rooms sorted by start: ``author[i]`` live from ``start[i]`` to ``end[i]`` (ms, both
    included)."""

    author: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __post_init__(self) -> None:
        longest = int((self.end - self.start).max()) if len(self.start) else 0
        object.__setattr__(self, "_longest", longest)
        object.__setattr__(self, "live_at", lru_cache(maxsize=4096)(self._live_at))

    def _live_at(self, ts: int) -> np.ndarray:
        """The distinct ids of the authors whose room covers ``ts``, ascending.

        >>> rooms = LiveRooms(np.array([7, 8, 7]), np.array([0, 5, 20]), np.array([10, 30, 25]))
        >>> rooms.live_at(6).tolist(), rooms.live_at(12).tolist(), rooms.live_at(40).tolist()
        ([7, 8], [8], [])
        """
        # A room covering ts started within the longest room's length before it.
        lo = np.searchsorted(self.start, ts - self._longest, side="left")
        hi = np.searchsorted(self.start, ts, side="right")
        covering = self.end[lo:hi] >= ts
        return np.unique(self.author[lo:hi][covering])


def live_rooms(warehouse_url: str, start_ms: int, end_ms: int) -> LiveRooms | None:
    """The rooms overlapping ``[start_ms, end_ms)``; None when the warehouse does not say who
    is live (no ``live_rooms`` table, or no room in the window): the caller says what it
    does instead."""
    engine = make_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            if "live_rooms" not in sa.inspect(conn).get_table_names():
                log.info("the warehouse has no live_rooms table: who is live is unknown")
                return None
            table = fetch_arrow(conn, "live/rooms_in_window.sql",
                                {"start_ms": start_ms, "end_ms": end_ms})
    finally:
        engine.dispose()
    if not table.num_rows:
        log.info("no live room in the window: who is live is unknown")
        return None
    columns = [np.asarray(table.column(c).to_numpy(), dtype=np.int64)
               for c in ("author_id", "start_ts", "end_ts")]
    return LiveRooms(*columns)
