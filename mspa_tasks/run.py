"""One day's run: the value every stage entry takes.

A :class:`DayRun` holds what a stage needs to do one day's work: the day ``ds`` and its window,
the settings, the artifact store, the warehouse URL and the Milvus target. Airflow's
``TaskContext`` and the CLI build it once per task or command; a stage never loads settings or
opens a store itself. The serving models (which recommender answers, which weights write the
texts) are resolved on the run (:attr:`DayRun.serving`), once, from the registry: settings are
never rewritten to point at the champion, so a run's recorded ``config_version`` is the
configuration the operator wrote.

>>> from mspa_tasks.config import load_settings
>>> run = DayRun("2026-11-20", load_settings("local"))
>>> run.window.days, run.with_ds("2026-11-19").ds
(30, '2026-11-19')
>>> DayRun("2026-11-31", load_settings("local"))
Traceback (most recent call last):
...
mspa_tasks.days.InvalidPartition: ds='2026-11-31' is not a date in YYYY-MM-DD form
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

from mspa_tasks.artifacts import ArtifactStore, open_store
from mspa_tasks.champion import Serving, resolve_serving
from mspa_tasks.config import Settings
from mspa_tasks.days import Window, window_for
from mspa_tasks.vector_store import MilvusTarget


class RunIncomplete(ValueError):
    """A stage asked the run for a place it was not given (a warehouse, a store, Milvus)."""


@dataclass(frozen=True)
class DayRun:
    """One day's run (see the module doc). ``store``, ``warehouse_url`` and ``milvus`` may be
    left out where a stage does not need them (a test, the Milvus lifecycle); asking for one
    that is missing raises :class:`RunIncomplete` naming it."""

    ds: str
    settings: Settings
    store: ArtifactStore | None = None
    warehouse_url: str | None = None
    milvus: MilvusTarget | None = None

    def __post_init__(self) -> None:
        window_for(self.ds, self.settings.ingest.window_days)  # a bad ds is refused here

    @classmethod
    def open(cls, ds: str, settings: Settings, warehouse_url: str | None = None,
             milvus: MilvusTarget | None = None) -> DayRun:
        """The run of ``ds`` on the places ``settings`` names (the CLI's, and a local run's)."""
        return cls(ds, settings, open_store(settings.artifacts_uri),
                   warehouse_url or settings.warehouse_url,
                   milvus or MilvusTarget(settings.vectors.milvus_uri))

    def with_ds(self, ds: str) -> DayRun:
        """The same places and settings, another day (a backfill, the day before)."""
        return dataclasses.replace(self, ds=ds)

    @cached_property
    def window(self) -> Window:
        return window_for(self.ds, self.settings.ingest.window_days)

    @property
    def url(self) -> str:
        """The warehouse URL; :class:`RunIncomplete` when the run was built without one."""
        return self._require("warehouse_url")

    @property
    def artifacts(self) -> ArtifactStore:
        return self._require("store")

    @property
    def target(self) -> MilvusTarget:
        return self._require("milvus")

    @cached_property
    def serving(self) -> Serving:
        """The serving models, resolved once per run from the registry
        (:func:`mspa_tasks.champion.resolve_serving`)."""
        return resolve_serving(self.settings, self.url, self.artifacts)

    def _require(self, name: str):
        value = getattr(self, name)
        if value is None:
            raise RunIncomplete(f"the run of {self.ds} was built without {name}")
        return value
