"""Failure and deadline alerts through Airflow's HTTP notifier to a real loopback webhook."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from mspa_airflow import alerts
from mspa_tasks.config import AlertsConfig


@pytest.fixture
def webhook(monkeypatch):
    """A webhook on loopback recording each POST's path and JSON body; its Airflow HTTP
    connection comes from the environment, as any secrets backend would provide it."""
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AIRFLOW_CONN_MSPA_ALERTS",
                       f"http://127.0.0.1:{server.server_address[1]}")
    yield received
    server.shutdown()


def _context():
    ti = SimpleNamespace(dag_id="mspa_daily", task_id="ingest.quality_gate", try_number=1,
                         log_url="http://airflow/log")
    return {"ti": ti, "task_instance": ti, "ds": "2026-11-20",
            "dag_run": SimpleNamespace(dag_id="mspa_daily", run_id="scheduled__2026-11-20"),
            "exception": RuntimeError("freshness_hours FAILED: value 16\nmore")}


def test_failure_alert_is_posted_when_enabled(webhook, monkeypatch):
    monkeypatch.setattr(alerts, "alert_settings",
                        lambda: AlertsConfig(enabled=True, endpoint="hooks/mspa"))
    alerts.on_failure(_context())
    ((path, body),) = webhook
    assert path == "/hooks/mspa"
    assert body == {"event": "task_failed", "dag_id": "mspa_daily",
                    "run_id": "scheduled__2026-11-20", "task_id": "ingest.quality_gate",
                    "ds": "2026-11-20", "try_number": 1,
                    "error": "freshness_hours FAILED: value 16", "log_url": "http://airflow/log"}


def test_deadline_alert_is_posted_when_enabled(webhook, monkeypatch):
    monkeypatch.setattr(alerts, "alert_settings", lambda: AlertsConfig(enabled=True))
    asyncio.run(alerts.deadline_missed(_context(), deadline_hours=6))
    ((_, body),) = webhook
    assert body["event"] == "deadline_missed" and body["deadline_hours"] == 6
    assert body["run_id"] == "scheduled__2026-11-20"


def test_alerts_are_off_by_default_and_only_logged(webhook, caplog):
    assert alerts.alert_settings().enabled is False  # the shipped settings
    with caplog.at_level(logging.WARNING, logger="mspa_airflow.alerts"):
        alerts.on_failure(_context())
        asyncio.run(alerts.deadline_missed(_context()))
    assert webhook == []
    assert "alerts disabled, not sent" in caplog.text and "ingest.quality_gate" in caplog.text


def test_daily_deadline_is_attached_only_when_configured(monkeypatch):
    monkeypatch.setattr(alerts, "alert_settings", lambda: AlertsConfig(deadline_hours=0))
    assert alerts.daily_deadline() == {}
    monkeypatch.setattr(alerts, "alert_settings", lambda: AlertsConfig(deadline_hours=6))
    deadline = alerts.daily_deadline()["deadline"]
    assert deadline.interval.total_seconds() == 6 * 3600
    assert deadline.callback.kwargs == {"deadline_hours": 6}
