"""The daily DAG through Airflow (`airflow dags test`) on KuaiLive data: the fixture in the
exact published schema, imported with `python -m mspa_tasks import-kuailive`, run with the
source's settings (conf/sources/kuailive.toml). The composer runs the model-free keyword
backend here (the SmolLM2 path through Airflow is tests/dags/test_mspa_daily_e2e.py): what
this test proves is the data path, from CSV lines to a forward replay report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mspa_tasks.config import CONF_DIR
from tests.conftest import REPO
from tests.kuailive_fixture import LAST_DS, write_fixture

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
BIN = Path(sys.executable).parent
D0 = "2025-05-24"


def _run(env: dict, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def kuailive_env(tmp_path_factory) -> tuple[dict, object]:
    home = tmp_path_factory.mktemp("kuailive")
    expected = write_fixture(home / "KuaiLive")
    conf = home / "kuailive-keywords.toml"  # the source's settings, plus the keyword composer
    conf.write_text((CONF_DIR / "sources" / "kuailive.toml").read_text()
                    + '\n[compose]\nbackend = "keywords"\n'
                    + '\n[vectors.align]\nenabled = false\n'  # tested on its own
                    + '\n[replay]\nacc_max_users = 2\n'  # the champion answers 2 test users
                    + '\n[align.gate]\nmax_new_tokens = 24\n')  # in short answers
    env = {**os.environ, "AIRFLOW_HOME": str(home / "airflow"), "MSPA_HOME": str(home / "mspa"),
           "MSPA_ENV": "local", "MSPA_CONFIG": str(conf)}
    migrated = _run(env, str(BIN / "airflow"), "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    for name, slots in (("mspa_compose", "2"), ("mspa_milvus", "1"), ("mspa_gpu", "1")):
        assert _run(env, str(BIN / "airflow"), "pools", "set", name, slots, name).returncode == 0
    imported = _run(env, str(BIN / "python"), "-m", "mspa_tasks", "import-kuailive",
                    str(home / "KuaiLive"))
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert f"airflow dags test mspa_daily {LAST_DS}" in imported.stdout  # the next step, said
    return env, expected


def test_mspa_daily_runs_on_imported_kuailive_days(kuailive_env):
    env, expected = kuailive_env
    for ds in (D0, LAST_DS):
        result = _run(env, str(BIN / "airflow"), "dags", "test", "mspa_daily", ds)
        log = result.stdout + result.stderr
        assert result.returncode == 0, log[-5000:]
        assert "state=success" in log
        # A day of 2025 runs its tasks (a run before a DAG's start date would have none and
        # still succeed).
        assert "task_id=ingest.publish_sessions" in log and "task_id=replay.publish_report" in log
    artifacts = Path(env["MSPA_HOME"]) / "artifacts"
    manifest = json.loads((artifacts / f"sessions/ds={LAST_DS}/manifest.json").read_text())
    assert manifest["counts"]["authors"]["dropped"] == {"no_text": expected.no_text_authors}
    assert manifest["counts"]["users"]["kept"] > 20
    vectors = json.loads((artifacts / f"author_vectors/ds={LAST_DS}/manifest.json").read_text())
    assert vectors["counts"]["total"] == manifest["counts"]["authors"]["kept"]
    report = json.loads((artifacts / f"reports/replay/ds={LAST_DS}/report.json").read_text())
    assert report["model_day"] == D0  # forward: the day before's vectors score LAST_DS
    for metric in ("auc_click", "hr@1000"):
        assert {"mspa", "popularity", "als"} <= set(report["metrics"][metric]), metric
