"""Failure notifications and deadline alerts of the MSPA DAGs — off by default.

Both go through Airflow's own ``HttpNotifier`` / ``HttpAsyncHook`` (provider ``http``) to
the URL of the Airflow connection ``[alerts] http_conn_id`` (a chat webhook, an incident
tool): credentials live in that connection, never here. With ``[alerts] enabled = false``
(the default) a failure or a missed deadline is only logged.

* :func:`on_failure` — a task's ``on_failure_callback`` (after its last retry).
* :func:`deadline_missed` — the ``AsyncCallback`` of the daily DAG's ``DeadlineAlert`` (run by
  the triggerer when a run has not finished ``[alerts] deadline_hours`` after it was queued).
  :func:`daily_deadline` attaches it when ``deadline_hours > 0`` (``prod.toml``: 6). It is 0 on
  the embedded default because ``airflow dags test`` on Airflow 3.3.2 crashes at the end of a
  run of a DAG with a deadline (apache/airflow#73428, fix open in #73430); the scheduler
  handles it (the CeleryExecutor test runs the DAG with one).

The payload names the DAG, run, task, ``ds``, the exception's first line and the log URL.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def alert_settings() -> Any:
    from mspa_tasks.config import load_settings

    return load_settings().alerts


def payload(context: dict[str, Any], event: str) -> dict[str, Any]:
    """The JSON sent for ``event`` (``task_failed`` or ``deadline_missed``)."""
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    exc = context.get("exception")
    return {
        "event": event,
        "dag_id": getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", None),
        "run_id": getattr(dag_run, "run_id", None),
        "task_id": getattr(ti, "task_id", None),
        "ds": context.get("ds"),
        "try_number": getattr(ti, "try_number", None),
        "error": str(exc).splitlines()[0][:500] if exc else None,
        "log_url": getattr(ti, "log_url", None),
    }


def on_failure(context: dict[str, Any]) -> None:
    """Task failure callback: POST the payload when alerts are enabled, else log it."""
    cfg = alert_settings()
    body = payload(context, "task_failed")
    if not cfg.enabled:
        log.warning("alert (alerts disabled, not sent): %s", body)
        return
    from airflow.providers.http.notifications.http import HttpNotifier

    HttpNotifier(http_conn_id=cfg.http_conn_id, endpoint=cfg.endpoint or None,
                 json=body).notify(context)
    log.info("alert sent through connection %s: %s", cfg.http_conn_id, body)


async def deadline_missed(context: dict[str, Any], **kwargs: Any) -> None:
    """The daily DAG's deadline callback (runs in the triggerer)."""
    cfg = alert_settings()
    body = {**payload(context, "deadline_missed"), **kwargs}
    if not cfg.enabled:
        log.warning("deadline missed (alerts disabled, not sent): %s", body)
        return
    from airflow.providers.http.hooks.http import HttpAsyncHook

    await HttpAsyncHook(method="POST", http_conn_id=cfg.http_conn_id).run(
        endpoint=cfg.endpoint or None, json=body)
    log.info("deadline alert sent through connection %s: %s", cfg.http_conn_id, body)


def daily_deadline() -> dict[str, Any]:
    """``@dag`` keyword arguments: a ``DeadlineAlert`` on runs not finished
    ``[alerts] deadline_hours`` after being queued, or nothing when that is 0."""
    import datetime as dt

    hours = alert_settings().deadline_hours
    if hours <= 0:
        return {}
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return {"deadline": DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=dt.timedelta(hours=hours),
        callback=AsyncCallback("mspa_airflow.alerts.deadline_missed",
                               kwargs={"deadline_hours": hours}))}
