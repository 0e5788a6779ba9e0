"""A refresh killed midway (SIGKILL of the real process during insert) changes nothing that
consumers see; the rerun publishes, and retention leaves no orphan collection."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from mspa_tasks import vector_store
from mspa_tasks.artifacts import open_store
from mspa_tasks.config import load_settings
from mspa_tasks.run import DayRun
from mspa_tasks.vector_store import PublishRefused
from mspa_tasks.vectors.lifecycle import list_versions, publish_collection
from tests.conftest import REPO

from .conftest import publish_vectors
from .test_milvus import consumer_search, refresh

D1, D2 = "2026-11-19", "2026-11-20"
PROGRESS = re.compile(r"insert (\S+): (\d+)/(\d+) rows")


def test_kill_during_insert_keeps_serving_and_the_rerun_publishes(tmp_path):
    home = tmp_path / "home"
    settings = load_settings("local", home=home)
    target = vector_store.MilvusTarget(settings.vectors.milvus_uri)
    store = open_store(settings.artifacts_uri)
    served = publish_vectors(store, D1, n_authors=300)
    first = refresh(D1, target, store, settings)
    publish_vectors(store, D2, n_authors=6000, seed=3)

    env = {**os.environ, "MSPA_HOME": str(home), "MSPA_ENV": "local"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mspa_tasks", "vectors", "build", "--ds", D2,
         "--insert-batch", "50"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    partial, deadline = None, time.monotonic() + 120
    for line in proc.stderr:  # kill at the first progress line: inserts are under way
        match = PROGRESS.search(line)
        if match and int(match.group(2)) < int(match.group(3)):
            proc.send_signal(signal.SIGKILL)
            partial = match.group(1)
            break
        assert time.monotonic() < deadline, "no insert progress within 120 s"
    assert proc.wait(timeout=60) == -signal.SIGKILL and partial

    # Consumers still get yesterday's version, unchanged.
    hits = consumer_search(target, served[5])
    assert hits[0]["author_id"] == 60
    with vector_store.milvus_client(target) as client:
        assert client.describe_alias("mspa_authors")["collection_name"] == first
        assert client.query("mspa_authors", filter="", output_fields=["count(*)"])[0][
            "count(*)"] == 300
        assert client.describe_collection(partial)["properties"]["mspa.status"] == "building"
    # The half-built collection can never be published.
    assert "building" in _refusal(partial, target, settings)

    rerun = subprocess.run([sys.executable, "-m", "mspa_tasks", "vectors", "refresh", "--ds", D2],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    versions = list_versions(target, settings)
    assert [(v["ds"], v["status"], v["serving"]) for v in versions] == [
        (D2, "published", True), (D1, "published", False)]
    assert partial not in {v["collection"] for v in versions}
    with vector_store.milvus_client(target) as client:
        assert client.query("mspa_authors", filter="", output_fields=["count(*)"])[0][
            "count(*)"] == 6000


def _refusal(name, target, settings) -> str:
    try:
        publish_collection(DayRun(D2, settings, milvus=target), name)
    except PublishRefused as exc:
        return str(exc)
    raise AssertionError("a half-built collection was published")
