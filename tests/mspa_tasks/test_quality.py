from __future__ import annotations

import pytest

from mspa_tasks.config import QualityConfig
from mspa_tasks.quality import DataQualityError, WindowStats, enforce, run_checks

CFG = QualityConfig()
GOOD = dict(candidates=1000, quarantined=10, null_keys=2, duplicates=3, day_events=40,
            prev_day_events=50, hours_since_last_event=1.0)


def _by_name(stats: WindowStats) -> dict:
    return {r.name: r for r in run_checks(stats, CFG)}


@pytest.mark.parametrize(("change", "failing", "value"), [
    ({}, set(), None),
    ({"day_events": 10}, {"volume_vs_previous_day"}, 0.2),
    ({"day_events": 101}, {"volume_vs_previous_day"}, 2.02),
    ({"day_events": 100}, set(), None),                      # bound is inclusive
    ({"null_keys": 11}, {"null_key_rate"}, 0.011),
    ({"duplicates": 11}, {"duplicate_rate"}, 0.011),
    ({"quarantined": 51}, {"quarantine_rate"}, 0.051),
    ({"hours_since_last_event": 6.5}, {"freshness_hours"}, 6.5),
    ({"hours_since_last_event": None}, {"freshness_hours"}, None),
    ({"prev_day_events": 0}, set(), None),                    # first day: no baseline, passes
    ({"prev_day_events": 0, "day_events": 0, "hours_since_last_event": None},
     {"volume_vs_previous_day", "freshness_hours"}, None),
])
def test_checks_table(change, failing, value):
    results = _by_name(WindowStats(**{**GOOD, **change}))
    assert {n for n, r in results.items() if not r.passed} == failing
    if value is not None:
        (name,) = failing
        assert results[name].value == pytest.approx(value)


def test_error_names_check_value_and_bound():
    results = run_checks(WindowStats(**{**GOOD, "day_events": 10}), CFG)
    with pytest.raises(DataQualityError) as info:
        enforce("2026-11-20", results)
    text = str(info.value)
    assert "ds=2026-11-20" in text
    assert "volume_vs_previous_day FAILED: value 0.2, bound [0.5, 2]" in text
    assert "10 valid events on ds vs 50 the day before" in text
    assert [f.name for f in info.value.failures] == ["volume_vs_previous_day"]


def test_first_day_says_there_is_no_baseline():
    result = _by_name(WindowStats(**{**GOOD, "prev_day_events": 0}))["volume_vs_previous_day"]
    assert result.value is None and "no events on the previous day" in result.detail
