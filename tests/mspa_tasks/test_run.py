"""The run object: one day's places and settings, built once, and the serving models
resolved on it from the registry without rewriting the settings."""

from __future__ import annotations

import pytest

from mspa_tasks import registry
from mspa_tasks.champion import base_version
from mspa_tasks.days import InvalidPartition
from mspa_tasks.run import DayRun, RunIncomplete

DS = "2026-11-20"


def _crown(url: str, ref: str) -> None:
    registry.register(url, registry.ModelVersion(
        "r1", DS, "base", "file:///nowhere", ref, "champion", "promoted in a test", {}))


def test_a_day_that_is_not_a_date_is_refused_when_the_run_is_built(settings):
    for bad in ("2026-02-30", "20261120", "", "0001-01-01"):
        with pytest.raises(InvalidPartition):
            DayRun(bad, settings)


def test_a_missing_place_is_named_not_a_none_passed_on(settings):
    run = DayRun(DS, settings)
    for name, place in (("warehouse_url", "url"), ("store", "artifacts"), ("milvus", "target")):
        with pytest.raises(RunIncomplete, match=f"run of {DS} was built without {name}"):
            getattr(run, place)


def test_before_any_training_the_base_model_serves_and_the_composer_keeps_its_model(
        settings, store, warehouse_url):
    serving = DayRun(DS, settings, store, warehouse_url).serving
    assert serving.recommender_version == base_version(settings)
    assert serving.recommender_ref == settings.align.base_model
    assert serving.compose == settings.compose


def test_a_trained_champion_writes_the_texts_and_the_settings_stay_as_written(
        settings, store, warehouse_url, tmp_path):
    weights = str(tmp_path / "mspa-recommender-r1")
    _crown(warehouse_url, weights)
    before = settings.fingerprint()
    run = DayRun(DS, settings, store, warehouse_url)
    assert run.serving.recommender_version == "r1"
    assert run.serving.compose.model == weights
    assert run.settings.compose.model != weights
    assert run.settings.fingerprint() == before  # the recorded config_version is unchanged
    assert run.with_ds("2026-11-19").settings is settings


def test_with_use_champion_off_the_configured_composer_writes_while_the_champion_answers(
        settings, store, warehouse_url, tmp_path):
    _crown(warehouse_url, str(tmp_path / "mspa-recommender-r1"))
    serving = DayRun(DS, settings.with_align(use_champion=False), store, warehouse_url).serving
    assert serving.recommender_version == "r1"
    assert serving.compose.model == settings.compose.model


def test_the_serving_models_are_resolved_once_per_run(settings, store, warehouse_url,
                                                      tmp_path):
    run = DayRun(DS, settings, store, warehouse_url)
    first = run.serving
    _crown(warehouse_url, str(tmp_path / "later"))  # promoted while the task runs
    assert run.serving is first
    assert DayRun(DS, settings, store, warehouse_url).serving.recommender_version == "r1"
