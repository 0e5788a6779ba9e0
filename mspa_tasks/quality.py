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


@dataclass(frozen=True)
class KeptStats:
    """What the paper's filters kept of one window (a draft's or manifest's ``counts``)."""

    users: int
    authors: int
    events: int
    candidates: int

    @property
    def event_share(self) -> float:
        """Kept events over candidate events (0 for a window with no candidates)."""
        return self.events / self.candidates if self.candidates else 0.0


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


def run_kept_checks(kept: KeptStats, previous: tuple[str, KeptStats] | None,
                    cfg: QualityConfig) -> list[CheckResult]:
    """Bound what the filters kept: kept users, kept authors and the kept share of candidate
    events, each against an absolute floor and against ``previous`` (the previous published
    day, ``(ds, stats)``; None on the first day, when only the floors apply).

    >>> day = KeptStats(users=100, authors=300, events=4000, candidates=5000)
    >>> [(c.name, c.passed) for c in run_kept_checks(day, None, QualityConfig())][:3]
    [('kept_users', True), ('kept_authors', True), ('kept_event_share', True)]
    >>> empty = KeptStats(users=0, authors=0, events=0, candidates=5000)
    >>> [c.name for c in run_kept_checks(empty, ("d0", day), QualityConfig()) if not c.passed]
    ['kept_users', 'kept_authors', 'kept_event_share', 'kept_users_vs_previous_day', 'kept_authors_vs_previous_day', 'kept_event_share_vs_previous_day']
    """
    results = [
        CheckResult("kept_users", kept.users, cfg.min_kept_users, None,
                    kept.users >= cfg.min_kept_users, "users kept by the filters"),
        CheckResult("kept_authors", kept.authors, cfg.min_kept_authors, None,
                    kept.authors >= cfg.min_kept_authors,
                    "authors kept by the filters (the candidate pool)"),
        CheckResult("kept_event_share", kept.event_share, cfg.min_kept_event_share, None,
                    kept.event_share >= cfg.min_kept_event_share,
                    f"{kept.events:,} of {kept.candidates:,} candidate events kept"),
    ]
    figures = (("kept_users", "users", lambda s: s.users, "{:,}"),
               ("kept_authors", "authors", lambda s: s.authors, "{:,}"),
               ("kept_event_share", "share of candidate events", lambda s: s.event_share,
                "{:.3f}"))
    for name, what, get, shown in figures:
        check = f"{name}_vs_previous_day"
        if previous is None:
            results.append(CheckResult(check, None, cfg.kept_ratio_min, cfg.kept_ratio_max, True,
                                       "no published day before ds: the floor alone applies"))
            continue
        prev_ds, prev = previous
        now, before = get(kept), get(prev)
        ratio = now / before if before else (1.0 if now == before else float("inf"))
        results.append(CheckResult(
            check, ratio, cfg.kept_ratio_min, cfg.kept_ratio_max,
            _within(ratio, cfg.kept_ratio_min, cfg.kept_ratio_max),
            f"kept {what} {shown.format(now)} on ds vs {shown.format(before)} on {prev_ds}"))
    return results


def enforce(ds: str, results: list[CheckResult]) -> None:
    """Raise :class:`DataQualityError` if any check failed."""
    failures = [r for r in results if not r.passed]
    if failures:
        raise DataQualityError(ds, failures)
