"""How every MSPA DAG is scheduled: data intervals on a UTC cron, one run at a time, no
catch-up on deploy (backfills are explicit). One place, so the DAGs cannot drift apart."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.interval import CronDataIntervalTimetable

# Early enough for any historical day (KuaiLive's logs are from May 2025): a run whose
# logical date precedes the start date has no task at all and still "succeeds" (Airflow),
# which would pass a backfill of old data off as done. catchup=False keeps a deploy from
# scheduling those years. The same floor as ingest.earliest_event_date.
START = dt.datetime(2010, 1, 1, tzinfo=dt.UTC)


def scheduled(cron: str) -> dict[str, Any]:
    """The ``@dag`` keyword arguments of a DAG run on ``cron`` (UTC)."""
    return {"schedule": CronDataIntervalTimetable(cron, timezone="UTC"), "start_date": START,
            "catchup": False, "max_active_runs": 1}
