"""Credentials reach tasks only through Airflow connections and never reach the logs.

A password with URL-special characters is planted in the warehouse connection (the local
PostgreSQL trusts loopback, so any password connects and the task really uses it). Airflow
runs the DAG's first task with it, then a task whose database does not exist (the failure
path: driver error, traceback, failure callback). Every byte Airflow printed and every task
log file is searched for the password, raw and percent-encoded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from tests.conftest import REPO

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.slow]
BIN = Path(sys.executable).parent
PLANTED = "Pl@nted/s3cr3t#Kx9"
FORMS = (PLANTED, quote(PLANTED, safe=""))


def _airflow(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "airflow"), *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def _everything_logged(result: subprocess.CompletedProcess, airflow_home: Path) -> str:
    files = [p.read_text(errors="replace") for p in (airflow_home / "logs").rglob("*")
             if p.is_file()]
    return "\n".join([result.stdout, result.stderr, *files])


def test_planted_warehouse_password_never_reaches_task_logs(pg_url, tmp_path):
    url = sa.make_url(pg_url)
    conn_uri = (f"postgresql://postgres:{quote(PLANTED, safe='')}@{url.host}:{url.port}/"
                f"{url.database}")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "MSPA_HOME": str(tmp_path / "mspa"), "MSPA_ENV": "local",
           "AIRFLOW_CONN_MSPA_WAREHOUSE": conn_uri}
    # The warehouse's source tables exist (the pipeline never creates them; the demo world's
    # DDL stands in for the real warehouse).
    from mspa_tasks.warehouse import make_engine, run_sql

    engine = make_engine(pg_url)
    with engine.begin() as conn:
        run_sql(conn, "ddl/warehouse.sql")
    engine.dispose()
    migrated = _airflow(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]

    ok = _airflow(env, "tasks", "test", "mspa_daily", "ingest.prepare_tables", "2026-11-20")
    log = _everything_logged(ok, tmp_path / "airflow")
    assert ok.returncode == 0, log[-4000:]
    tables = set(sa.inspect(sa.create_engine(pg_url)).get_table_names())
    assert {"tip_events", "quarantine_tip_events", "dq_results"} <= tables  # it connected
    for form in FORMS:
        assert form not in log
    assert "warehouse: connection mspa_warehouse -> postgresql+psycopg2://postgres:***@" in log

    env["AIRFLOW_CONN_MSPA_WAREHOUSE"] = conn_uri.rsplit("/", 1)[0] + "/mspa_no_such_db"
    failed = _airflow(env, "tasks", "test", "mspa_daily", "ingest.prepare_tables", "2026-11-21")
    log = _everything_logged(failed, tmp_path / "airflow")
    assert "new_state=up_for_retry" in log  # `tasks test` exits 0 either way
    assert 'database "mspa_no_such_db" does not exist' in log, log[-4000:]
    for form in FORMS:
        assert form not in log
