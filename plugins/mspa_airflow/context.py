"""What every MSPA task needs from Airflow, in one object: the settings (with a manual run's
Params applied), the artifact store, the warehouse URL and the Milvus target, each built on
first use from the environment's connections. DAG files stay wiring only."""

from __future__ import annotations

from functools import cached_property
from typing import Any

PARAM_KNOBS = ("window_days", "min_authors", "min_tip_days")  # [ingest] knobs a run may set


class TaskContext:
    """One task's view of the environment (``MSPA_ENV``) and the run's Params."""

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = dict(params or {})

    @cached_property
    def settings(self):
        from mspa_airflow.params import param_overrides
        from mspa_tasks.config import load_settings

        settings = load_settings()
        knobs = param_overrides(self.params, "ingest", PARAM_KNOBS)
        return settings.with_ingest(**knobs) if knobs else settings

    @cached_property
    def store(self):
        from mspa_airflow.hooks import artifact_store

        return artifact_store(self.settings)

    @cached_property
    def warehouse_url(self) -> str:
        from mspa_airflow.hooks import WarehouseHook

        return WarehouseHook(settings=self.settings).get_sqlalchemy_url()

    @cached_property
    def milvus(self):
        from mspa_airflow.hooks import MilvusHook

        return MilvusHook(settings=self.settings).get_target()
