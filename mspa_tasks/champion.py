"""The champion recommender model: which model serves, for the composer and the replay.

One place answers "which weights write today's texts and answer today's recommendations":
the registry's champion, or the configured base model before any retraining. A run resolves
it once (:attr:`mspa_tasks.run.DayRun.serving`, built by :func:`resolve_serving`); neither
the composer nor the replay imports the retraining run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mspa_tasks import registry
from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.config import ComposeConfig, Settings
from mspa_tasks.model_store import resolve_model

log = logging.getLogger(__name__)


def base_version(settings: Settings) -> str:
    """The registry name of the configured base model (the first champion).

    >>> from mspa_tasks.config import load_settings
    >>> base_version(load_settings("local"))
    'base-packaged-smollm2-135m-instruct'
    """
    ref = settings.align.base_model
    return "base-" + "".join(c if c.isalnum() else "-" for c in ref.lower()).strip("-")


def champion_model(warehouse_url: str, settings: Settings) -> tuple[str, str]:
    """``(version, model_ref)`` of the serving recommender: the registry's champion, or the
    configured base model when nothing was ever registered (the replay never registers)."""
    registry.prepare_registry(warehouse_url)
    champ = registry.champion(warehouse_url)
    if champ is None:
        return base_version(settings), settings.align.base_model
    return champ.version, champ.model_ref


@dataclass(frozen=True)
class Serving:
    """The models that serve on a run: the recommender (registry version and weights) and the
    composer's configuration with the weights that write today's texts."""

    recommender_version: str
    recommender_ref: str
    compose: ComposeConfig


def resolve_serving(settings: Settings, warehouse_url: str, store: ArtifactStore) -> Serving:
    """What serves today. The recommender is the registry's champion (the configured base
    model before any retraining). The composer writes with the champion's weights (a local
    copy) when ``align.use_champion`` is on and a trained champion exists, else with
    ``compose.model``; ``settings`` itself is left as configured."""
    version, ref = champion_model(warehouse_url, settings)
    compose = settings.compose
    if settings.align.use_champion and version != base_version(settings):
        path = resolve_model(ref, store, settings.models_dir)
        log.info("composer model: champion %s (%s)", version, path)
        compose = compose.replaced(model=path)
    return Serving(version, ref, compose)
