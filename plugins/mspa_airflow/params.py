"""DAG Params made from the settings' own fields: a Param's type, bounds, default and
description come from :mod:`mspa_tasks.config`, so the Airflow UI's form can never allow a
value the config refuses, nor refuse one it allows. A run's Params reach the library through
:func:`param_overrides`, validated again by the settings model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import Param

from mspa_tasks.config import Section, Settings, param_schema


def _section(path: str) -> type[Section]:
    """The model of ``align`` or of a sub-section such as ``align.grpo``."""
    model: Any = Settings
    for part in path.split("."):
        model = model.model_fields[part].annotation
    return model


def _where(section: str, path: str) -> tuple[type[Section], str]:
    """The model holding ``[section] path`` and the field's name there."""
    *parents, name = path.split(".")
    return _section(".".join([section, *parents])), name


def setting_param(section: str, name: str, *, optional: bool = False) -> Param:
    """A Param for ``[section] name`` (``name`` may be a path: ``grpo.max_steps``);
    ``optional``: empty (None) means "the config's value"."""
    model, field = _where(section, name)
    schema = param_schema(model, field, optional=optional)
    if optional:
        schema["description"] = schema["description"].rstrip(".") + " (config when empty)."
        return Param(None, **schema)
    return Param(model.model_fields[field].get_default(call_default_factory=True), **schema)


def param_overrides(params: dict[str, Any] | None, section: str,
                    names: tuple[str, ...] | Mapping[str, str]) -> dict[str, Any]:
    """The Params among ``names`` a run set (not None, not empty), cast to the field's type
    (the UI form may send "14" for 14); the settings model checks the values. ``names`` maps
    a Param to its setting's path in ``[section]`` (``{"max_steps": "grpo.max_steps"}``; a
    tuple: the same names); the overrides come back nested as the section holds them
    (``{"grpo": {"max_steps": 4}}``)."""
    paths = names if isinstance(names, Mapping) else {name: name for name in names}
    casts = {"integer": int, "number": float, "boolean": bool, "string": str}
    out: dict[str, Any] = {}
    for name, path in paths.items():
        value = (params or {}).get(name)
        if value in (None, ""):
            continue
        model, field = _where(section, path)
        node = out
        for part in path.split(".")[:-1]:
            node = node.setdefault(part, {})
        node[field] = casts.get(param_schema(model, field)["type"], lambda v: v)(value)
    return out
