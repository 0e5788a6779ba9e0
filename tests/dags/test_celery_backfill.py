"""The daily DAG beyond one process: a two-day ``airflow backfill create`` run by the
scheduler on Airflow's CeleryExecutor (PostgreSQL metadata database, the local Redis as
broker, two workers), with the first day cleared and rerun while the backfill goes on (two
days, not three: each DAG run under Celery costs about 150 CPU seconds on this 2-core suite,
and a third day added nothing the second does not check).

``scripts/celery_stack.py`` (also ``make celery``) starts and stops every process; the
composer runs its keyword backend here (``scripts/celery_fast.toml``) so the test measures
the executor and the partitions, not SmolLM2 on 2 cores (``test_mspa_daily_e2e.py`` runs
the embedded default through Airflow).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.slow]
DAYS = ["2026-11-19", "2026-11-20"]


def test_a_backfill_on_two_celery_workers_with_a_mid_backfill_rerun(pg_url, tmp_path):
    home = tmp_path / "celery"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "celery_stack.py"), "--home", str(home),
         "--from", DAYS[0], "--to", DAYS[-1], "--workers", "2", "--metadata-url", pg_url,
         "--config", str(REPO / "scripts" / "celery_fast.toml"), "--rerun-middle",
         "--timeout", "1500"], cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:] + _logs(home)
    run = json.loads((home / "celery-run.json").read_text())

    # one backfill run per day, one partition each, all published
    assert list(run["runs"]) == DAYS and {r["state"] for r in run["runs"].values()} == {"success"}
    for ds in DAYS:
        out = run["outputs"][ds]
        assert out["sessions"]["counts"]["users"]["kept"] > 0
        assert out["preference_texts"]["counts"]["total"] == out["preference_text_rows"]
        assert out["replay_metrics_rows"] > 0
    # the last day's report trend shows every backfilled day
    assert set(DAYS) <= set(run["outputs"][DAYS[-1]]["trend_days"])

    # the DAG carried its DeadlineAlert ([alerts] deadline_hours in celery_fast.toml): the
    # scheduler set a deadline on each run while it ran, none missed, and pruned them all
    # once the runs succeeded in time
    assert {d["ds"] for d in run["deadlines_seen"]} == set(DAYS)
    assert not any(d["missed"] for d in run["deadlines_seen"])
    assert run["deadlines_left"] == []

    # both workers ran tasks, composer shards among them
    by_worker = run["tasks_by_worker"]
    assert set(by_worker) == {"worker1", "worker2"}
    for worker, tasks in by_worker.items():
        assert any("compose.compose_shard" in t for t in tasks), (worker, tasks)

    # the first day, cleared while the backfill went on, republished the same day
    last = DAYS[-1]
    assert run["middle_cleared_while"][last]["state"] != "success"
    before, after = run["middle_before"], run["middle_after"]
    assert after["sessions"] == before["sessions"]  # byte-identical files
    work = ("reused", "regenerated", "encoded", "tokens_in", "tokens_out")  # what the rerun did
    for dataset in ("preference_texts", "author_texts", "author_vectors"):
        counts = {k: v for k, v in after[dataset]["counts"].items() if k not in work}
        assert counts == {k: v for k, v in before[dataset]["counts"].items()
                          if k not in work}, dataset
    assert after["replay_metrics_rows"] == before["replay_metrics_rows"]
    assert after["preference_text_rows"] == before["preference_text_rows"]
    assert after["preference_texts"]["counts"]["reused"] == after["preference_texts"][
        "counts"]["total"]  # the rerun regenerated nothing: every cache key matched


def _logs(home: Path) -> str:
    parts = []
    for name in ("scheduler", "worker1", "worker2", "api-server"):
        path = home / "logs" / f"{name}.log"
        if path.exists():
            parts.append(f"\n--- {name} ---\n" + path.read_text(errors="replace")[-2000:])
    return "".join(parts)
