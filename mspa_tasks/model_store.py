"""Model folders in the artifact store, and model references resolved to local folders.

A model reference is one of:

* ``packaged:smollm2-135m-instruct`` — the packaged model of the embedded default;
* ``artifact:<key>`` — a folder in the artifact store (``models/recommender/<version>/model``),
  complete only when its ``_SUCCESS.json`` (file list with sizes and SHA-256) exists; it is
  copied once into the local models folder and checked against that list;
* a local folder, or a hub id (production; never fetched in tests or the demo).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from mspa_tasks.artifacts import ArtifactNotFound, ArtifactStore
from mspa_tasks.models import packaged_model

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS.json"


class IncompleteModel(RuntimeError):
    """A model folder in the store has no success marker or does not match it."""


def model_prefix(version: str) -> str:
    return f"models/recommender/{version}"


def upload_folder(store: ArtifactStore, folder: Path, prefix: str) -> str:
    """Copy ``folder`` under ``prefix``; the success marker is written last. Returns its URI."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        data = path.read_bytes()
        store.put_bytes(f"{prefix}/{rel}", data)
        files[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    store.put_text(f"{prefix}/{SUCCESS}", json.dumps({"files": files}, indent=2, sort_keys=True))
    return store.uri(prefix)


def download_folder(store: ArtifactStore, prefix: str, target: Path) -> Path:
    """The folder under ``prefix`` as a local folder ``target`` (copied once, verified)."""
    try:
        marker = json.loads(store.get_text(f"{prefix}/{SUCCESS}"))
    except ArtifactNotFound as exc:
        raise IncompleteModel(f"{store.uri(prefix)} has no {SUCCESS}: the upload did not "
                              "finish; it is not a usable model") from exc
    if (target / SUCCESS).is_file() and json.loads((target / SUCCESS).read_text()) == marker:
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for rel, meta in marker["files"].items():
        data = store.get_bytes(f"{prefix}/{rel}")
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise IncompleteModel(f"{store.uri(prefix)}/{rel} does not match {SUCCESS}")
        (partial / rel).parent.mkdir(parents=True, exist_ok=True)
        (partial / rel).write_bytes(data)
    (partial / SUCCESS).write_text(json.dumps(marker))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    log.info("copied %s (%d files) to %s", store.uri(prefix), len(marker["files"]), target)
    return target


def resolve_model(ref: str, store: ArtifactStore | None, models_dir: Path) -> str:
    """A local folder (or, for a hub id, the id itself) for the model reference ``ref``."""

    packaged = packaged_model(ref, models_dir, "llm")
    if packaged is not None:
        return str(packaged)
    if ref.startswith("artifact:"):
        if store is None:
            raise ValueError(f"model {ref!r} needs the artifact store")
        key = ref.removeprefix("artifact:").strip("/")
        name = "mspa-recommender-" + key.removeprefix("models/recommender/").split("/")[0]
        return str(download_folder(store, key, models_dir / name))
    return ref
