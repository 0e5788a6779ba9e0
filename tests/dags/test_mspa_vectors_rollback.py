"""The rollback DAG run by Airflow itself (`airflow dags test` with Params), as from the UI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mspa_tasks import vector_store
from mspa_tasks.artifacts import open_store
from mspa_tasks.config import load_settings
from mspa_tasks.vectors.lifecycle import list_versions
from tests.conftest import REPO
from tests.mspa_tasks.vectors.conftest import publish_vectors
from tests.mspa_tasks.vectors.test_milvus import refresh

pytestmark = [pytest.mark.airflow]
BIN = Path(sys.executable).parent


def test_rollback_dag_moves_the_alias_back_and_records_why(tmp_path):
    home = tmp_path / "mspa"
    settings = load_settings("local", home=home)
    store = open_store(settings.artifacts_uri)
    target = vector_store.MilvusTarget(settings.vectors.milvus_uri)
    publish_vectors(store, "2026-11-19", seed=1)
    first = refresh("2026-11-19", target, store, settings)
    publish_vectors(store, "2026-11-20", seed=2)
    second = refresh("2026-11-20", target, store, settings)

    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "MSPA_HOME": str(home),
           "MSPA_ENV": "local"}
    for args in (["db", "migrate"], ["pools", "set", "mspa_milvus", "1", "milvus-lite"]):
        done = subprocess.run([str(BIN / "airflow"), *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    conf = json.dumps({"to_collection": "", "reason": "bad texts on 11-20"})
    run = subprocess.run([str(BIN / "airflow"), "dags", "test", "mspa_vectors_rollback",
                          "2026-11-21", "--conf", conf], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    log = run.stdout + run.stderr
    assert run.returncode == 0 and "state=success" in log, log[-5000:]
    versions = {v["collection"]: v for v in list_versions(target, settings)}
    assert versions[first]["serving"] and not versions[second]["serving"]
    assert (versions[second]["status"], versions[second]["reason"]) == (
        "rolled_back", "bad texts on 11-20")
