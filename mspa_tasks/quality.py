"""Data-quality checks that gate a day's ingest before anything downstream is refreshed.

Each check turns one measured figure into a :class:`CheckResult` with the bound it was held
to. :func:`enforce` raises :class:`DataQualityError` naming every breached check, its value
and its bound, so the task log says exactly why the day stopped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from mspa_tasks.config import QualityConfig


class GateError(RuntimeError):
    """A gate stopped: the message names every failed check, its value and its bound."""

    def __init__(self, what: str, failures: list[CheckResult], consequence: str = "") -> None:
        self.failures = failures
        lines = "\n".join(f"  - {f.message}" for f in failures)
        super().__init__(f"{what}: {len(failures)} check(s) failed{consequence}\n{lines}")


class DataQualityError(GateError):
    """One or more data-quality checks failed; downstream outputs were not refreshed."""

    def __init__(self, ds: str, failures: list[CheckResult]) -> None:
        self.ds = ds
        super().__init__(f"data-quality gate stopped ds={ds}", failures)


@dataclass(frozen=True)
class CheckResult:
    name: str
    value: float | None
    lower: float | None
    upper: float | None
    passed: bool
    detail: str

    @property
    def message(self) -> str:
        bound = _bound_text(self.lower, self.upper)
        verdict = "ok" if self.passed else "FAILED"
        value = "n/a" if self.value is None else f"{self.value:.6g}"
        return f"{self.name} {verdict}: value {value}, bound {bound} ({self.detail})"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class WindowStats:
    """Figures of one staged window (see ``sql/ingest/window_stats.sql``)."""

    candidates: int
    quarantined: int
    null_keys: int
    duplicates: int
    day_events: int
    prev_day_events: int
    hours_since_last_event: float | None


def _bound_text(lower: float | None, upper: float | None) -> str:
    if lower is not None and upper is not None:
        return f"[{lower:g}, {upper:g}]"
    if upper is not None:
        return f"<= {upper:g}"
    return f">= {lower:g}"


def _within(value: float, lower: float | None, upper: float | None) -> bool:
    return (lower is None or value >= lower) and (upper is None or value <= upper)


def _rate_check(name: str, part: int, whole: int, upper: float, what: str) -> CheckResult:
    rate = part / whole if whole else 0.0
    return CheckResult(name, rate, None, upper, _within(rate, None, upper),
                       f"{part:,} of {whole:,} candidate events are {what}")


def run_checks(stats: WindowStats, cfg: QualityConfig) -> list[CheckResult]:
    """Evaluate every check on ``stats``.

    >>> s = WindowStats(1000, 10, 2, 3, 40, 50, 1.5)
    >>> [(c.name, c.passed) for c in run_checks(s, QualityConfig())]  # doctest: +NORMALIZE_WHITESPACE
    [('volume_vs_previous_day', True), ('null_key_rate', True), ('duplicate_rate', True),
     ('quarantine_rate', True), ('freshness_hours', True)]
    """
    results = []
    if stats.prev_day_events == 0:
        # First day of data (or a gap): there is no baseline to compare with; say so.
        results.append(CheckResult("volume_vs_previous_day", None, cfg.volume_ratio_min,
                                   cfg.volume_ratio_max, stats.day_events > 0,
                                   f"no events on the previous day; {stats.day_events:,} today"))
    else:
        ratio = stats.day_events / stats.prev_day_events
        results.append(CheckResult(
            "volume_vs_previous_day", ratio, cfg.volume_ratio_min, cfg.volume_ratio_max,
            _within(ratio, cfg.volume_ratio_min, cfg.volume_ratio_max),
            f"{stats.day_events:,} valid events on ds vs {stats.prev_day_events:,} the day before"))
    results.append(_rate_check("null_key_rate", stats.null_keys, stats.candidates,
                               cfg.max_null_key_rate, "missing a key"))
    results.append(_rate_check("duplicate_rate", stats.duplicates, stats.candidates,
                               cfg.max_duplicate_rate, "duplicates of an earlier event"))
    results.append(_rate_check("quarantine_rate", stats.quarantined, stats.candidates,
                               cfg.max_quarantine_rate, "quarantined"))
    hours = stats.hours_since_last_event
    results.append(CheckResult(
        "freshness_hours", hours, None, cfg.max_staleness_hours,
        hours is not None and math.isfinite(hours) and hours <= cfg.max_staleness_hours,
        "hours between the window's end and its last valid event"
        if hours is not None else "no valid event in the window"))
    return results


def enforce(ds: str, results: list[CheckResult]) -> None:
    """Raise :class:`DataQualityError` if any check failed."""
    failures = [r for r in results if not r.passed]
    if failures:
        raise DataQualityError(ds, failures)
