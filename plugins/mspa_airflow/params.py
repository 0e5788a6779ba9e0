"""DAG Params made from the settings' own fields: a Param's type, bounds, default and
description come from :mod:`mspa_tasks.config`, so the Airflow UI's form can never allow a
value the config refuses, nor refuse one it allows. A run's Params reach the library through
:func:`param_overrides`, validated again by the settings model."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from mspa_tasks.config import Section, Settings, param_schema


def _section(name: str) -> type[Section]:
    return Settings.model_fields[name].annotation


def setting_param(section: str, name: str, *, optional: bool = False) -> Param:
    """A Param for ``[section] name``; ``optional``: empty (None) means "the config's value"."""
    section = _section(section)
    schema = param_schema(section, name, optional=optional)
    if optional:
        schema["description"] = schema["description"].rstrip(".") + " (config when empty)."
        return Param(None, **schema)
    return Param(section.model_fields[name].get_default(call_default_factory=True), **schema)


def param_overrides(params: dict[str, Any] | None, section: str,
                    names: tuple[str, ...]) -> dict[str, Any]:
    """The Params among ``names`` a run set (not None, not empty), cast to the field's type
    (the UI form may send "14" for 14); the settings model checks the values."""
    section = _section(section)
    casts = {"integer": int, "number": float, "boolean": bool, "string": str}
    out = {}
    for name in names:
        value = (params or {}).get(name)
        if value in (None, ""):
            continue
        kind = param_schema(section, name)["type"]
        out[name] = casts.get(kind, lambda v: v)(value)
    return out
