"""The daily DAG run by Airflow itself (`airflow dags test`) on the small `e2e` world."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mspa_tasks.days import window_for
from tests.conftest import REPO

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
DS = "2026-11-20"
D0 = "2026-11-19"  # the day before, run first
BIN = Path(sys.executable).parent


def _run(env: dict, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("e2e")
    # The embedded default, but the champion answers 4 test users (not 32) in at most 32
    # tokens, and the recommender's train and validation examples are one per user (its last
    # tip): the retrain test trains and evaluates 16 and 4 examples instead of ~240 and ~60
    # (one per tip is tested in tests/mspa_tasks/align/test_examples.py).
    conf = home / "e2e.toml"
    conf.write_text("[replay]\nacc_max_users = 4\n\n[align.gate]\nmax_new_tokens = 32\n\n"
                    "[align.examples]\nper_user = \"last_tip\"\n")
    env = {**os.environ, "AIRFLOW_HOME": str(home / "airflow"), "MSPA_HOME": str(home / "mspa"),
           "MSPA_ENV": "local", "MSPA_CONFIG": str(conf)}
    migrated = _run(env, str(BIN / "airflow"), "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    for name, slots in (("mspa_compose", "2"), ("mspa_milvus", "1"), ("mspa_gpu", "1")):
        pool = _run(env, str(BIN / "airflow"), "pools", "set", name, slots, name)
        assert pool.returncode == 0, pool.stderr[-3000:]
    seeded = _run(env, str(BIN / "python"), "-m", "mspa_tasks", "seed-world", "--preset", "e2e",
                  "--end-ds", DS)
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    return env


def _dags_test(env: dict, ds: str) -> subprocess.CompletedProcess:
    return _run(env, str(BIN / "airflow"), "dags", "test", "mspa_daily", ds)


def _manifest_path(env: dict, ds: str) -> Path:
    return Path(env["MSPA_HOME"]) / "artifacts" / "sessions" / f"ds={ds}" / "manifest.json"


def test_daily_dag_ingests_composes_and_publishes(airflow_env):
    """ingest -> compose through Airflow with the packaged SmolLM2 on CPU, for the day
    before DS and then DS (DS's forward replay scores with the day before's vectors)."""
    first = _dags_test(airflow_env, D0)
    first_log = first.stdout + first.stderr
    assert first.returncode == 0, first_log[-5000:]
    assert f"nothing is published before {D0}" in first_log  # no model to replay D0 with
    result = _dags_test(airflow_env, DS)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert "state=success" in log
    manifest = json.loads(_manifest_path(airflow_env, DS).read_text())
    ledger = json.loads((Path(airflow_env["MSPA_HOME"]) / "artifacts/world/summary.json")
                        .read_text())["expected_quarantine"]
    assert manifest["counts"]["events"]["quarantined"] == ledger["tip_events"]
    assert manifest["counts"]["authors"]["dropped"] == ledger["authors"]
    assert manifest["counts"]["users"]["kept"] > 0
    extras = _asset_extras(airflow_env, "mspa_sessions")
    assert {"ds": DS, "manifest": f"file://{_manifest_path(airflow_env, DS)}"} in extras
    artifacts = Path(airflow_env["MSPA_HOME"]) / "artifacts"
    prefs = json.loads((artifacts / f"preference_texts/ds={DS}/manifest.json").read_text())
    authors = json.loads((artifacts / f"author_texts/ds={DS}/manifest.json").read_text())
    assert prefs["counts"]["total"] == manifest["counts"]["users"]["kept"]
    assert authors["counts"]["total"] == manifest["counts"]["authors"]["kept"]
    assert prefs["counts"]["ok"] + prefs["counts"]["failed"] == prefs["counts"]["total"]
    assert prefs["counts"]["ok"] > prefs["counts"]["total"] // 2
    assert prefs["model_version"][0].startswith("smollm2-135m-instruct-")
    assert prefs["frames_as"] == "captions"
    assert "frames reach the prompt as captions" in log
    assert "compose.compose_shard" in log and "generate:" in log  # progress lines
    sample = (artifacts / f"reports/compose/ds={DS}/sample.md").read_text()
    assert sample.count("## user ") == 20

    # vectors: every kept author is in the collection the alias serves; query it as a consumer.
    vectors = json.loads((artifacts / f"author_vectors/ds={DS}/manifest.json").read_text())
    assert vectors["counts"]["total"] == manifest["counts"]["authors"]["kept"]
    assert vectors["counts"]["feature_text"] == authors["counts"]["ok"]
    hits, served = _consumer_query(airflow_env)
    assert served.startswith(f"mspa_authors__{DS.replace('-', '')}__all_minilm_l6_v2_")
    assert len(hits) == 10 and all(h["entity"]["category"] for h in hits)
    assert hits[0]["distance"] >= hits[-1]["distance"]
    gate = json.loads((artifacts / f"reports/vectors/ds={DS}/gate.json").read_text())
    assert gate["passed"] and gate["collection"] == served
    extras = _asset_extras(airflow_env, "mspa_author_vectors")
    assert {"alias": "mspa_authors", "collection": served, "ds": DS} in extras

    # the forward day, built once by encoder.forward_day, announced for its three readers
    forward = artifacts / f"forward_day/ds={DS}/manifest.json"
    assert json.loads(forward.read_text())["model_day"] == D0
    assert {"ds": DS, "manifest": f"file://{forward}"} in _asset_extras(airflow_env,
                                                                        "mspa_forward_day")
    # replay: MSPA and both baselines side by side, recorded per day, announced as an Asset
    assert {"encoder.forward_day", "replay.offline", "replay.u2a", "replay.ann_parity",
            "replay.publish_report"} <= _succeeded_tasks(log)
    report = json.loads((artifacts / f"reports/replay/ds={DS}/report.json").read_text())
    for metric in ("auc_click", "uauc_gift", "hr@10", "acc@4", "a2a_alignment"):
        assert {"mspa", "popularity", "als"} <= set(report["metrics"][metric]), metric
    # Recall@K needs test users with impressions on the day; the small world may have none,
    # and then the report leaves it out and its coverage says why (never a made-up 0)
    if report["coverage"]["test_users_with_watched"]:
        assert {"mspa", "popularity", "als"} <= set(report["metrics"]["recall@5"])
    else:
        assert "recall@5" not in report["metrics"]
    assert report["metrics"]["ann_recall"]["mspa"]["value"] == 1.0  # FLAT index: exact
    # the two-stage rows: the champion reranked MSPA's shortlist of D0, the baselines beside
    assert report["u2a"]["two_stage"]["tips"] >= 1
    assert {"mspa", "fused", "popularity", "als"} <= set(report["metrics"]["two_stage_hr@5"])
    assert "mspa" in report["metrics"]["first_stage_hr@5"]
    assert "replay 2026-11-20 summary:" in log and "auc_click" in log
    warehouse = sqlite3.connect(Path(airflow_env["MSPA_HOME"]) / "warehouse.db")
    (n_rows,) = warehouse.execute("SELECT COUNT(*) FROM replay_metrics WHERE ds = ?",
                                  (DS,)).fetchone()
    warehouse.close()
    assert n_rows == sum(len(v) for v in report["metrics"].values())
    extras = _asset_extras(airflow_env, "mspa_replay_report")
    assert {"ds": DS, "report": f"file://{artifacts}/reports/replay/ds={DS}/report.html"} in extras


def _asset_extras(env: dict, asset: str) -> list[dict]:
    """The ``extra`` of every event of ``asset`` in Airflow's metadata database."""
    db = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    try:
        return [json.loads(e) for (e,) in db.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.name = ?", (asset,))]
    finally:
        db.close()


def _consumer_query(env: dict) -> tuple[list[dict], str]:
    """Search the alias with one user's preference vector, as a recommender team would."""
    import pyarrow.parquet as pq
    from pymilvus import MilvusClient

    artifacts = Path(env["MSPA_HOME"]) / "artifacts"
    users = pq.read_table(next((artifacts / f"user_vectors/ds={DS}").glob("vectors-*.parquet")))
    client = MilvusClient(str(Path(env["MSPA_HOME"]) / "milvus.db"))
    try:
        client.load_collection("mspa_authors")
        hits = client.search("mspa_authors", data=[users.column("vector")[0].as_py()], limit=10,
                             output_fields=["category", "location", "encoder_version"])[0]
        served = client.describe_alias("mspa_authors")["collection_name"]
    finally:
        client.close()
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(str(Path(env["MSPA_HOME"]) / "milvus.db"))
    return hits, served

def test_quality_breach_fails_the_run_and_keeps_the_previous_partition(airflow_env):
    if not _manifest_path(airflow_env, DS).exists():
        assert _dags_test(airflow_env, DS).returncode == 0
    before = _manifest_path(airflow_env, DS).read_bytes()
    served_before = _consumer_query(airflow_env)[1]
    warehouse = sqlite3.connect(Path(airflow_env["MSPA_HOME"]) / "warehouse.db")
    day_end_ms = window_for(DS, 1).end_ms
    with warehouse:  # the day's feed stops at 08:00: the freshness check must catch it
        warehouse.execute("DELETE FROM tip_events WHERE ts >= ?", (day_end_ms - 16 * 3_600_000,))
    warehouse.close()
    result = _dags_test(airflow_env, DS)
    log = result.stdout + result.stderr
    assert result.returncode != 0
    stale = re.search(r"freshness_hours FAILED: value ([0-9.]+), bound <= 6", log)
    assert stale and float(stale.group(1)) >= 16, log[-5000:]  # the feed stopped >= 16 h early
    assert "ingest.publish_sessions" not in _succeeded_tasks(log)
    assert _manifest_path(airflow_env, DS).read_bytes() == before
    assert _consumer_query(airflow_env)[1] == served_before  # the alias did not move


def _succeeded_tasks(log: str) -> set[str]:
    return {line.split("task_id=")[1].split()[0] for line in log.splitlines()
            if "[DAG TEST] end task" in line and "task_id=" in line}


def test_retrain_dag_trains_evaluates_gates_and_registers(airflow_env):
    """mspa_retrain through Airflow on the day the daily DAG published: the default recipe
    (real SFT steps, then real GRPO steps, on CPU), both models' Acc@4/Acc@10 in the registry
    and in the run log."""
    if not _manifest_path(airflow_env, DS).exists():
        assert _dags_test(airflow_env, DS).returncode == 0
    conf = {"recipe": "sft+grpo", "sft_max_steps": 1, "max_steps": 1, "num_generations": 2,
            "max_train_users": 8, "max_eval_users": 2}
    result = _run(airflow_env, str(BIN / "airflow"), "dags", "test", "mspa_retrain", DS,
                  "-c", json.dumps(conf))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert {"prepare", "train", "register"} <= _succeeded_tasks(log)
    assert "[trainer]" in log and "step 1: reward" in log  # the trainer's log, streamed
    assert "sft step 1: loss" in log  # the warm start ran first
    assert "GRPO groups with zero reward variance, per step: [" in log  # its health signal
    warehouse = sqlite3.connect(Path(airflow_env["MSPA_HOME"]) / "warehouse.db")
    rows = warehouse.execute("SELECT version, status, reason, metrics, artifact_uri "
                             "FROM model_registry ORDER BY created_at, version").fetchall()
    warehouse.close()
    by_version = {r[0]: r for r in rows}
    base = by_version.pop("base-packaged-smollm2-135m-instruct")
    ((version, status, reason, metrics, uri),) = by_version.values()
    assert status in {"champion", "rejected"}
    assert reason.startswith("promoted: " if status == "champion" else "rejected: ")
    assert base[1] == ("retired" if status == "champion" else "champion")
    figures = json.loads(metrics)
    for model in ("new", "champion"):
        assert {"acc@4", "acc@10"} <= set(figures[model])
    assert figures["train"]["steps"] == 1 and figures["train"]["weights"]["tensors"] > 0
    assert f"gate for {version}: {reason}" in log
    assert "acc@10" in log.split(f"gate for {version}")[1]  # the side-by-side table
    model_dir = Path(uri.removeprefix("file://"))
    assert (model_dir.parent / "eval.json").is_file() and (model_dir / "_SUCCESS.json").is_file()
