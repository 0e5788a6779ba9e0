"""Faults on real processes and real servers, then the state.

* the composer's process SIGKILLed in the middle of a shard, and again in the middle of
  publishing (``tests/killpoint.py``);
* the replay report's process SIGKILLed between its HTML and its JSON;
* the warehouse connection terminated by PostgreSQL in the middle of the extract;
* the S3 artifact store (moto's server behind a loopback proxy) failing the manifest write.

After each: what was published before is unchanged and still served, nothing half-written is
readable, and the retry or rerun completes with every row exactly once. (The Milvus refresh
killed during its inserts: ``tests/mspa_tasks/vectors/test_faults.py``.)
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest
import sqlalchemy as sa

from mspa_tasks import compose, ingest, registry, replay
from mspa_tasks.artifacts import open_store
from mspa_tasks.config import load_settings
from mspa_tasks.llm.keywords import KeywordBackend
from mspa_tasks.publish import published_days, read_manifest, read_table
from mspa_tasks.run import DayRun
from mspa_tasks.world.generate import PRESETS, generate_world
from tests.killpoint import run_arg, run_killed
from tests.mspa_tasks.align.conftest import DS, days  # noqa: F401 (fixtures)

D1, D2 = "2026-11-19", "2026-11-20"


@pytest.fixture
def keywords_home(tmp_path):
    """A tiny world, settings whose composer is the keyword backend (in this process and,
    through MSPA_CONFIG, in killed children), and D1 published end to end."""
    override = tmp_path / "keywords.toml"
    override.write_text('[compose]\nbackend = "keywords"\n')
    home = tmp_path / "home"
    settings = load_settings("local", home=home).with_compose(backend="keywords")
    store = open_store(settings.artifacts_uri)
    url = settings.warehouse_url
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=D2), url, store)
    for ds in (D1, D2):
        ingest.run_ingest(DayRun(ds, settings, store, url))
    _compose_day(D1, url, store, settings)
    compose.publish_texts(DayRun(D1, settings, store, url))
    return {"home": home, "settings": settings, "store": store, "url": url,
            "env": {"MSPA_CONFIG": str(override), "MSPA_HOME": str(home)}}


def _compose_day(ds, url, store, settings, skip=()):
    for shard in compose.plan_shards(settings.compose):
        if (shard["kind"], shard["shard"]) not in skip:
            compose.compose_shard(DayRun(ds, settings, store, url),
                                  shard["kind"], shard["shard"], shard["of"], backend=KeywordBackend())


def test_composer_killed_mid_shard_and_mid_publish_then_rerun(keywords_home):
    h = keywords_home
    url, store, settings = h["url"], h["store"], h["settings"]
    d1_manifest = store.get_bytes(f"preference_texts/ds={D1}/manifest.json")
    champion = registry.champion(url)

    # 1. killed while generating users shard 1: nothing of it is staged, nothing published
    _compose_day(D2, url, store, settings, skip={("users", 1)})
    run_killed("mspa_tasks.compose.shards:compose_shard",
               [run_arg(D2, url, store.root_uri, h["home"]), "users", 1,
                settings.compose.n_shards],
               kill_at="mspa_tasks.llm.keywords:KeywordBackend.generate", env=h["env"])
    with pytest.raises(compose.ShardsMissing, match="1 of 2 users shards are not staged"):
        compose.publish_texts(DayRun(D2, settings, store, url))
    assert published_days(store, "preference_texts") == [D1]

    # 2. the retry stages the shard; publishing is killed between the two datasets' commits
    _compose_day(D2, url, store, settings, skip={("users", 0), ("authors", 0), ("authors", 1)})
    run_killed("mspa_tasks.compose.outputs:publish_texts",
               [run_arg(D2, url, store.root_uri, h["home"])],
               kill_at="mspa_tasks.publish:commit_manifest", when="author_texts",
               env=h["env"])
    assert published_days(store, "author_texts") == [D1]  # the previous day still served
    assert store.get_bytes(f"preference_texts/ds={D1}/manifest.json") == d1_manifest

    # 3. the rerun publishes both, every user and author exactly once
    result = compose.publish_texts(DayRun(D2, settings, store, url))
    sessions = read_table(store, "sessions", D2, "sessions")
    users = set(sessions.column("user_id").to_pylist())
    authors = set(read_table(store, "sessions", D2, "authors").column("author_id").to_pylist())
    texts = read_table(store, "preference_texts", D2, "texts").column("user_id").to_pylist()
    assert sorted(texts) == sorted(users) and len(texts) == len(set(texts))
    assert result["author_texts"]["counts"]["total"] == len(authors)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n, distinct = conn.execute(sa.text(
            "SELECT COUNT(*), COUNT(DISTINCT user_id) FROM preference_texts WHERE ds = :ds"),
            {"ds": D2}).one()
    assert n == distinct == len(users)
    assert registry.champion(url) == champion  # nothing here may move the champion
    assert store.list(f"_staging/preference_texts/ds={D2}/") == []


def test_report_killed_between_html_and_json_then_rerun(days, tmp_path):  # noqa: F811
    url, store, settings = days
    settings = settings.replaced(artifacts_uri=store.root_uri)
    replay.replay_offline(DayRun(DS, settings, store, url))
    for part in ("u2a", "ann"):
        replay.write_part(store, settings, DS, part, {"metrics": [], "note": "test"})
    first = replay.publish_report(DayRun(DS, settings, store, url)).report
    rows_before = _metric_rows(url)

    home = tmp_path / "home"  # the day fixture's settings home: same replay config
    run_killed("mspa_tasks.replay.results:publish_report",
               [run_arg(DS, url, store.root_uri, home)],
               kill_at="mspa_tasks.artifacts:LocalStore.put_bytes", when="report.json")
    # the complete report of the first run is what readers still get; rows not duplicated
    assert replay.list_reports(store, settings) == [DS]
    assert replay.read_report(store, settings, DS)["generated_at"] == first["generated_at"]
    assert _metric_rows(url) == rows_before

    again = replay.publish_report(DayRun(DS, settings, store, url)).report
    assert again["metrics"] == first["metrics"] and _metric_rows(url) == rows_before


def _metric_rows(url):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT metric, model, value FROM replay_metrics "
                                    "ORDER BY metric, model")).all()


@pytest.mark.postgres
def test_warehouse_connection_dropped_mid_extract_then_retry(pg_url, pg_admin_engine, tmp_path,
                                                             monkeypatch):
    settings = load_settings("local", home=tmp_path / "home")
    store = open_store(f"file://{tmp_path / 'artifacts'}")
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=D2), pg_url, store)
    first = ingest.run_ingest(DayRun(D2, settings, store, pg_url))
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        quarantined = conn.execute(sa.text(
            "SELECT COUNT(*) FROM quarantine_tip_events WHERE ds = :ds"), {"ds": D2}).scalar_one()
    manifest = store.get_bytes(f"sessions/ds={D2}/manifest.json")

    real_fetch = ingest.fetch_arrow
    dropped = []

    def fetch_after_the_server_drops_us(conn, name, *args, **kwargs):
        if name == "ingest/classify_events.sql" and not dropped:  # mid-transaction
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with pg_admin_engine.connect() as admin:
                admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            dropped.append(pid)
        return real_fetch(conn, name, *args, **kwargs)

    monkeypatch.setattr(ingest, "fetch_arrow", fetch_after_the_server_drops_us)
    with pytest.raises(sa.exc.OperationalError, match="terminat|server closed the connection"):
        ingest.extract_window(DayRun(D2, settings, store, pg_url))
    assert dropped
    # the transaction's partial work (the day's reset) was rolled back by the server
    with engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT COUNT(*) FROM quarantine_tip_events WHERE ds = :ds"),
            {"ds": D2}).scalar_one() == quarantined
    assert store.get_bytes(f"sessions/ds={D2}/manifest.json") == manifest

    again = ingest.run_ingest(DayRun(D2, settings, store, pg_url))  # Airflow's retry: the same call
    assert again.manifest["counts"] == first.manifest["counts"]
    with engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT COUNT(*) FROM quarantine_tip_events WHERE ds = :ds"),
            {"ds": D2}).scalar_one() == quarantined


class _FailingS3Proxy:
    """A loopback HTTP proxy in front of moto's S3 server that answers 500 InternalError
    to every PUT whose path contains ``fail_path`` (while set), and forwards the rest."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.fail_path: str | None = None
        self.failed: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if (self.command == "PUT" and proxy.fail_path
                        and proxy.fail_path in unquote(self.path)):
                    proxy.failed.append(self.path)
                    payload = (b"<?xml version='1.0'?><Error><Code>InternalError</Code>"
                               b"<Message>injected</Message></Error>")
                    self.send_response(500)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_artifact_store_failing_the_manifest_write_then_retry(s3_endpoint, tmp_path):
    import boto3
    from botocore.config import Config

    proxy = _FailingS3Proxy(s3_endpoint)
    client = boto3.client("s3", endpoint_url=proxy.url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"mode": "standard", "max_attempts": 3}))
    client.create_bucket(Bucket="mspa-faults")
    store = open_store("s3://mspa-faults/pipeline", s3_client=client)
    settings = load_settings("local", home=tmp_path / "home")
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    world_store = open_store(f"file://{tmp_path / 'world'}")  # frames: not what is tested
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=D2), url, world_store)
    ingest.run_ingest(DayRun(D1, settings, store, url))
    d1 = read_manifest(store, "sessions", D1)

    run = DayRun(D2, settings, store, url)
    ingest.prepare_tables(run)
    ingest.extract_window(run)
    ingest.quality_gate(run)
    proxy.fail_path = f"sessions/ds={D2}/manifest.json"
    with pytest.raises(Exception, match="InternalError"):
        ingest.publish_sessions(run)
    assert len(proxy.failed) > 1  # boto3 retried the 500 itself, then gave up
    assert published_days(store, "sessions") == [D1]
    assert read_manifest(store, "sessions", D1) == d1

    proxy.fail_path = None  # the store recovers: Airflow's retry of the task
    published = ingest.publish_sessions(run)
    assert published_days(store, "sessions") == [D1, D2]
    sessions = read_table(store, "sessions", D2, "sessions")  # checksums verified
    assert sessions.num_rows == published.manifest["counts"]["events"]["kept"]
    json.dumps(published.manifest)
