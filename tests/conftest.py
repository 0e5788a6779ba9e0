"""Shared fixtures: real SQLite and PostgreSQL warehouses, real file:// and S3 (moto's
server over HTTP) artifact stores, and a tiny demo world written into them."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent


def scalar(url: str, sql: str, **params) -> object:
    """One value from the database at ``url`` (a fresh engine, disposed after)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(sa.text(sql), params).scalar_one()
    engine.dispose()
    return value
# The packaged-model cache that `make models` filled (content-keyed, safe to share).
DEV_MODELS_DIR = Path(os.environ.get("MSPA_HOME") or REPO / "var").resolve() / "models"
# Every MSPA_HOME a test makes (Airflow subprocesses included) links that cache instead of
# converting SmolLM2 again (~40 s each).
os.environ.setdefault("MSPA_MODELS_CACHE", str(DEV_MODELS_DIR))
# Tests never touch the developer's var/ folder or Airflow home: both live in a temp dir.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mspa-tests-"))
os.environ["MSPA_HOME"] = str(_SESSION_HOME / "mspa")
os.environ["AIRFLOW_HOME"] = str(_SESSION_HOME / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Under pytest-xdist (`make test` runs `-n 2` on this 2-core machine) each worker, and every
# Airflow subprocess it starts, computes on one thread: two workers x two OpenMP threads would
# oversubscribe the cores (spinning threads wait on each other) instead of sharing them.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slowest tests first (Airflow's end-to-end runs, then the rest marked ``slow``), so
    that under ``make test``'s two workers (``--dist loadscope --no-loadscope-reorder``: a module
    at a time, in this order) they share them from the start instead of the suite ending on
    one worker running a five-minute module it picked up last."""
    def rank(item: pytest.Item) -> int:
        slow = item.get_closest_marker("slow") is not None
        return 0 if slow and item.get_closest_marker("airflow") else 1 if slow else 2

    items.sort(key=rank)  # stable: the collection order within each rank

PG_ADMIN_URL = os.environ.get("MSPA_TEST_PG_URL",
                              "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:  # never skip: the SQL suite must run on PostgreSQL
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} does not answer ({exc.orig}); "
                    "run `make postgres` (scripts/ensure_postgres.sh) first")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin_engine: sa.Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"mspa_t_{uuid.uuid4().hex[:12]}"
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = pg_admin_engine.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name})
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The same test on a SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    return request.getfixturevalue("pg_url")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server, on loopback, over real HTTP."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_client(s3_endpoint: str):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    return client


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path):
    """An artifact store on a local folder and on an S3 bucket."""
    from mspa_tasks.artifacts import open_store

    if request.param == "file":
        return open_store(f"file://{tmp_path / 'artifacts'}")
    client = request.getfixturevalue("s3_client")
    bucket = f"mspa-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    return open_store(f"s3://{bucket}/pipeline", s3_client=client)


@pytest.fixture
def settings(tmp_path):
    from mspa_tasks.config import load_settings

    return load_settings("local", home=tmp_path / "home")
