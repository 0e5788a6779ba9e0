"""A published day with every input the alignment stage reads, built by the real pipeline:
the tiny world, ingest, the composer (with the deterministic backend of the compose tests,
to stay inside the test budget) and the real packaged encoder."""

from __future__ import annotations

import dataclasses

import pytest

from mspa_tasks import compose, ingest
from mspa_tasks.forward_day import publish_forward_day
from mspa_tasks.run import DayRun
from mspa_tasks.vectors.encode import encode_day
from mspa_tasks.world.generate import PRESETS, generate_world
from tests.mspa_tasks.compose.conftest import WordsFromDataBackend

DS = "2026-11-20"
D0 = "2026-11-19"  # the day before: what a forward replay of DS scores with


def publish_day(ds, url, store, settings, encoder) -> None:
    """Sessions, the forward day, texts and vectors of ``ds``, through the real stages in
    the DAG's order (the forward day reads the day before's vectors, not ``ds``'s)."""
    ingest.run_ingest(DayRun(ds, settings, store, url))
    publish_forward_day(DayRun(ds, settings, store, url))
    backend = WordsFromDataBackend()
    for shard in compose.plan_shards(settings.compose):
        compose.compose_shard(DayRun(ds, settings, store, url),
                              shard["kind"], shard["shard"], shard["of"], backend=backend)
    compose.publish_texts(DayRun(ds, settings, store, url))
    encode_day(DayRun(ds, settings, store), encoder)


def _opened(tmp_path):
    """``(warehouse_url, store, settings)`` of the world folder ``tmp_path``."""
    from mspa_tasks.artifacts import open_store
    from mspa_tasks.config import load_settings

    settings = load_settings("local", home=tmp_path / "home")
    settings = settings.with_align(examples={"max_train_users": 20, "max_eval_users": 6})
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    store = open_store(f"file://{tmp_path / 'artifacts'}")
    return url, store, settings


def _world(tmp_path):
    url, store, settings = _opened(tmp_path)
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=DS), url, store)
    return url, store, settings


# ``encoder`` and ``published`` (the published world, built once per test process) are in
# tests/mspa_tasks/conftest.py, shared with the replay, vectors and fault tests.


@pytest.fixture
def day(tmp_path, published):
    """``(warehouse_url, store, settings)`` with sessions, texts and vectors of ``DS``."""
    return published((DS,), tmp_path)


@pytest.fixture
def days(tmp_path, published):
    """Like ``day``, with ``D0`` (the day before) published first."""
    return published((D0, DS), tmp_path)
