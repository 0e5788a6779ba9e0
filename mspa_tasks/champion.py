"""The champion recommender model: which model serves, for the composer and the replay.

One place answers "which weights write today's texts and answer today's recommendations":
the registry's champion, or the configured base model before any retraining. The composer
(:func:`serving_settings`) and the replay (:func:`champion_model`) both ask here; neither
imports the retraining run.
"""

from __future__ import annotations

import logging

from mspa_tasks import registry
from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.config import Settings
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


def serving_settings(settings: Settings, warehouse_url: str, store: ArtifactStore) -> Settings:
    """``settings`` with the composer's model set to the champion's weights (a local copy),
    when ``align.use_champion`` is on and a trained champion exists; else unchanged."""
    if not settings.align.use_champion:
        return settings
    champ = registry.champion(warehouse_url)
    if champ is None or champ.version == base_version(settings):
        return settings
    path = resolve_model(champ.model_ref, store, settings.models_dir)
    log.info("composer model: champion %s (%s)", champ.version, path)
    return settings.with_compose(model=path)
