"""The task context: settings with a run's Params, and the environment's store and URLs."""

from __future__ import annotations

import pytest

from mspa_airflow.context import TaskContext
from mspa_tasks.config import ConfigError


def test_params_set_the_ingest_knobs_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setenv("MSPA_HOME", str(tmp_path))
    ctx = TaskContext({"window_days": "14", "min_authors": 2, "min_tip_days": None})
    assert (ctx.settings.ingest.window_days, ctx.settings.ingest.min_authors,
            ctx.settings.ingest.min_tip_days) == (14, 2, 3)
    assert ctx.settings is ctx.settings  # built once per task
    assert ctx.warehouse_url == f"sqlite:///{tmp_path}/warehouse.db"
    assert ctx.store.uri("x") == f"file://{tmp_path}/artifacts/x"
    assert TaskContext().settings.ingest.window_days == 30
    with pytest.raises(ConfigError, match="min_tip_days"):
        _ = TaskContext({"window_days": 2}).settings
