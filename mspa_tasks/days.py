"""Days, windows and the code version: the calendar every stage shares.

A run's day ``ds`` is a calendar date in ``YYYY-MM-DD`` form (UTC); its window is the
half-open interval ``[start_ms, end_ms)`` in epoch milliseconds, the unit of every event
time in the warehouse (as in KuaiLive).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from mspa_tasks import __version__
from mspa_tasks.warehouse import sql_fingerprint

DAY_MS = 86_400_000
# Epoch-millisecond days that logs can hold: a typo such as 0001-01-01 or 9999-12-31 (whose
# next day overflows) is refused before anything runs.
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2199, 12, 31)


class InvalidPartition(ValueError):
    """``ds`` is not a calendar date in ``YYYY-MM-DD`` form, or not a day we serve."""


@dataclass(frozen=True)
class Window:
    """The half-open window ``[start_ms, end_ms)`` of ``days`` days ending with day ``ds``."""

    ds: str
    days: int
    start_ms: int
    end_ms: int

    @property
    def day_start_ms(self) -> int:
        return self.end_ms - DAY_MS

    @property
    def prev_day_start_ms(self) -> int:
        return self.end_ms - 2 * DAY_MS


def window_for(ds: str, days: int) -> Window:
    """The window of ``days`` days ending with day ``ds`` (UTC), in epoch milliseconds.

    >>> w = window_for("2026-11-20", 30)
    >>> (w.end_ms - w.start_ms) // 86_400_000, dt.datetime.fromtimestamp(w.start_ms / 1000, dt.UTC).date()
    (30, datetime.date(2026, 10, 22))
    """
    try:
        day = dt.date.fromisoformat(ds)
    except (TypeError, ValueError) as exc:
        raise InvalidPartition(f"ds={ds!r} is not a date in YYYY-MM-DD form") from exc
    if day.isoformat() != ds:
        raise InvalidPartition(f"ds={ds!r} is not a date in YYYY-MM-DD form")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidPartition(f"ds={ds!r} is outside the days this pipeline serves "
                               f"({FIRST_DAY}..{LAST_DAY}): give the run's logical date")
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    end_ms = int(end.timestamp() * 1000)
    return Window(ds=ds, days=days, start_ms=end_ms - days * DAY_MS, end_ms=end_ms)


def code_version() -> str:
    """Package version plus a hash of the library's Python and SQL sources."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"{__version__}+py.{digest.hexdigest()[:12]}.sql.{sql_fingerprint()[:12]}"
