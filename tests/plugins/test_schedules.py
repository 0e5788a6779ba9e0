"""How every MSPA DAG is scheduled (mspa_airflow.schedules)."""

from __future__ import annotations

import datetime as dt

from mspa_airflow.schedules import START, scheduled
from mspa_tasks.config import IngestConfig


def test_a_schedule_is_a_utc_cron_interval_one_run_at_a_time_without_catch_up():
    kwargs = scheduled("0 2 * * *")
    assert kwargs["catchup"] is False and kwargs["max_active_runs"] == 1
    timetable = kwargs["schedule"]
    assert timetable.serialize() == {"expression": "0 2 * * *", "timezone": "UTC"}


def test_the_start_date_is_not_after_the_earliest_day_ingest_accepts():
    """A run whose logical date precedes the start date has no task and still succeeds: a
    backfill of the oldest accepted day must not be one."""
    earliest = dt.date.fromisoformat(IngestConfig().earliest_event_date)
    assert START.date() <= earliest and START.tzinfo == dt.UTC
