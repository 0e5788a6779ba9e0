"""Fixtures shared by the stages' tests: the packaged encoder, and the tiny world published by
the real stages (tests/mspa_tasks/align/conftest.py), built once per test process and copied
into each test's folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def encoder():
    from mspa_tasks.config import VectorsConfig
    from mspa_tasks.vectors.encode import Encoder

    return Encoder(VectorsConfig())


@pytest.fixture(scope="session")
def published(tmp_path_factory, encoder):
    """``copy(days, folder)``: the tiny world with ``days`` published in that order, built
    once per test process and copied into ``folder`` for each test (a test may write to its
    copy; the world and every published file are the same bytes as a fresh build)."""
    from tests.mspa_tasks.align.conftest import _opened, _world, publish_day

    built: dict[tuple[str, ...], Path] = {}

    def copy(days: tuple[str, ...], folder: Path):
        if days not in built:
            source = tmp_path_factory.mktemp("published-" + "-".join(days))
            url, store, settings = _world(source)
            for ds in days:
                publish_day(ds, url, store, settings, encoder)
            built[days] = source
        shutil.copytree(built[days], folder, symlinks=True, dirs_exist_ok=True)
        return _opened(folder)

    return copy
