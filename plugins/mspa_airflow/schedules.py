"""How every MSPA DAG is scheduled: data intervals on a UTC cron, one run at a time, no
catch-up on deploy (backfills are explicit). One place, so the DAGs cannot drift apart."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.interval import CronDataIntervalTimetable

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def scheduled(cron: str) -> dict[str, Any]:
    """The ``@dag`` keyword arguments of a DAG run on ``cron`` (UTC)."""
    return {"schedule": CronDataIntervalTimetable(cron, timezone="UTC"), "start_date": START,
            "catchup": False, "max_active_runs": 1}
