"""What every MSPA task needs from Airflow, in one object: the settings (with a manual run's
Params applied), the artifact store, the warehouse URL and the Milvus target, each built on
first use from the environment's connections; and :func:`stage`, the one call a DAG task
makes: the library entry point on the day's :class:`~mspa_tasks.run.DayRun`, its summary as
the task's XCom. DAG files stay wiring only."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Mapping
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

    def day(self, ds: str):
        """The run of ``ds`` on this environment's places: what every stage entry takes."""
        from mspa_tasks.run import DayRun

        return DayRun(ds, self.settings, self.store, self.warehouse_url, self.milvus)


def summary(result: Any) -> Any:
    """What a stage returned, as a task's XCom: a ``summary()`` where the result has one, a
    dataclass's fields, each check's ``as_dict()``; dicts, lists and strings as they are."""
    if hasattr(result, "summary"):
        return result.summary()
    if isinstance(result, list):
        return [summary(r) for r in result]
    if hasattr(result, "as_dict"):
        return result.as_dict()
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    return result


def stage(entry: str, ds: str, params: dict[str, Any] | None, *args: Any,
          retry: bool = False, keys: tuple[str, ...] | None = None, outlet_events: Any = None,
          extras: Mapping[Any, Callable[[Any], dict[str, Any] | None]] | None = None) -> Any:
    """Run the library entry ``"module:function"`` (under ``mspa_tasks``) on the run of ``ds``
    with ``args``; return its summary.

    ``retry=False`` (the default) fails the task at once, without Airflow's retries, on an
    error a retry cannot fix (a gate, an empty input, a bad value: :mod:`.failures`);
    ``retry=True`` leaves every error to the retry policy. ``keys`` keeps only those keys of
    a dict summary (a replay part is large; its XCom is what the grid shows). ``extras`` maps
    each outlet Asset to the extra its event carries, built from the summary (``None``: the
    task published nothing for it). The library is imported here,
    at run time, so that parsing a DAG file imports none of it."""
    from mspa_airflow.failures import fail_fast

    module, name = entry.split(":")
    function = getattr(importlib.import_module(f"mspa_tasks.{module}"), name)
    run = TaskContext(params).day(ds)
    with contextlib.nullcontext() if retry else fail_fast():
        result = summary(function(run, *args))
    for asset, extra in (extras or {}).items():
        if (value := extra(result)) is not None:
            outlet_events[asset].extra = value
    return {k: result.get(k) for k in keys} if keys else result


def manifest_of(ds: str, key: str | None = None) -> Callable[[Any], dict[str, Any] | None]:
    """An outlet event's extra: the day and the manifest the summary names (under ``key``
    where a task publishes several datasets); none where the task published nothing."""
    def extra(result: dict[str, Any]) -> dict[str, Any] | None:
        part = result[key] if key else result
        return {"ds": ds, "manifest": part["manifest"]} if "manifest" in part else None
    return extra


def alias_extra(result: dict[str, Any]) -> dict[str, Any]:
    """The alias event's extra: which collection the alias serves, of which day."""
    return {k: result[k] for k in ("alias", "collection", "ds")}
