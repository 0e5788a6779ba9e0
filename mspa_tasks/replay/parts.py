"""The replay's parts: the model names, one metric row's shape, and where each part's JSON
is written (``reports/replay/ds=<ds>/parts/<part>.json``), merged later by
:func:`mspa_tasks.replay.results.publish_report`.

Every metric row is ``{metric, model, value, n}``: ``model`` is ``mspa`` or a baseline
(``popularity``, ``als``); ``n`` is what it was averaged over.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.config import Settings
from mspa_tasks.scoring.baselines import BASELINES, FUSED, MODELS, MSPA

__all__ = ["BASELINES", "FUSED", "MODELS", "MSPA", "PARTS", "part_key",
           "row", "write_part"]

log = logging.getLogger(__name__)

PARTS = ("offline", "u2a", "ann")


def part_key(settings: Settings, ds: str, part: str) -> str:
    return f"{settings.replay.report_prefix}/ds={ds}/parts/{part}.json"


def row(metric: str, model: str, value: float, n: int, **extra: Any) -> dict[str, Any]:
    out = {"metric": metric, "model": model,
           "value": None if value is None or not np.isfinite(value) else float(value), "n": int(n)}
    return {**out, **extra}


def write_part(store: ArtifactStore, settings: Settings, ds: str, part: str,
                body: dict[str, Any]) -> dict[str, Any]:
    body = {"ds": ds, "part": part, **body}
    store.put_text(part_key(settings, ds, part), json.dumps(body, indent=2, default=str) + "\n")
    for r in body.get("metrics", []):
        log.info("replay %s %-14s %-11s %s (n=%d)", ds, r["metric"], r["model"],
                 "n/a" if r["value"] is None else f"{r['value']:.4f}", r["n"])
    return body
