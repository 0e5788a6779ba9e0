"""Step 1 of the nightly refresh: a new versioned collection of the day's author vectors
(schema, index from config, inserted in batches, loaded). Status ``building``, then
``built``; the alias is not touched. Steps 2 and 3: :mod:`.gate`, :mod:`.lifecycle`.

Collections are named ``{alias}__{yyyymmdd}__{encoder}__{build id}``; state lives in Milvus
as collection properties (``mspa.status``, ``mspa.ds``, ``mspa.encoder_version``, …).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from mspa_tasks.config import VectorsConfig
from mspa_tasks.datasets import AUTHOR_VECTORS, read_vectors
from mspa_tasks.progress import Progress
from mspa_tasks.publish import require_rows
from mspa_tasks.run import DayRun
from mspa_tasks.vector_store import (
    STATUS,
    milvus_client,
    now_ms,
    set_properties,
)
from mspa_tasks.vectors.gate import VectorGateError, check_vectors

log = logging.getLogger(__name__)

VARCHAR_LIMITS = {"encoder_version": 128, "composer_version": 256, "text_hash": 64,
                  "text_source": 16, "category": 64, "location": 128}


def collection_name(alias: str, ds: str, encoder_version: str, build_id: str) -> str:
    """A valid, self-describing Milvus name.

    >>> collection_name("mspa_authors", "2026-11-20", "all-minilm-l6-v2-1a2b3c", "b1")
    'mspa_authors__20261120__all_minilm_l6_v2_1a2b3c__b1'
    """
    encoder = re.sub(r"[^0-9a-zA-Z]+", "_", encoder_version).strip("_").lower()[:48]
    return f"{alias}__{ds.replace('-', '')}__{encoder}__{build_id}"


def author_schema(dim: int, description: str = "") -> Any:
    """The collection schema consumers rely on (README, "For recommender teams")."""
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                        description=description)
    schema.add_field("author_id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    for name, limit in VARCHAR_LIMITS.items():
        schema.add_field(name, DataType.VARCHAR, max_length=limit)
    schema.add_field("updated_at", DataType.INT64)  # epoch ms of the build
    return schema


def index_spec(cfg: VectorsConfig) -> dict[str, Any]:
    """The vector index: type and parameters from config; inner product on unit vectors
    (= cosine)."""
    return {"field_name": "vector", "index_type": cfg.index_type, "metric_type": "IP",
            "params": dict(cfg.index_params)}


@dataclass(frozen=True)
class BuildResult:
    collection: str
    rows: int
    seconds: float


def build_collection(run: DayRun, build_id: str | None = None) -> BuildResult:
    """Create a new versioned collection of ``ds``'s author vectors; never touches the alias."""
    ds, target, store, settings = run.ds, run.target, run.artifacts, run.settings
    cfg = settings.vectors
    started = time.perf_counter()
    table, vectors = read_vectors(store, AUTHOR_VECTORS, ds)
    require_rows(table, AUTHOR_VECTORS.name, ds, "build_collection")
    manifest = AUTHOR_VECTORS.manifest(store, ds, "vectors.build_collection")
    check = check_vectors(vectors)
    if not check.passed:  # refuse before creating anything
        raise VectorGateError(f"author_vectors/ds={ds}", [check])
    build_id = build_id or "b" + dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")[:17]
    name = collection_name(cfg.alias, ds, manifest["encoder_version"], build_id)
    rows = [{**r, "encoder_version": manifest["encoder_version"]}
            for r in table.drop_columns(["vector", "reused"]).to_pylist()]
    updated_at = now_ms()
    with milvus_client(target) as client:
        from pymilvus import MilvusClient

        index = MilvusClient.prepare_index_params()
        index.add_index(**index_spec(cfg))
        client.create_collection(
            name, schema=author_schema(vectors.shape[1], f"MSPA author vectors ds={ds}"),
            index_params=index,
            properties={STATUS: "building", "mspa.ds": ds,
                        "mspa.encoder_version": manifest["encoder_version"],
                        "mspa.created_at": str(updated_at),
                        "mspa.rows_expected": str(len(rows))})
        log.info("created %s (%s, %s); inserting %d authors", name, cfg.index_type,
                 cfg.index_params or "default params", len(rows))
        progress = Progress(f"insert {name}", len(rows), log, unit="rows", every_s=0)
        for start in range(0, len(rows), cfg.insert_batch):
            batch = [{**_clip(r), "vector": vectors[start + i].tolist(),
                      "updated_at": updated_at}
                     for i, r in enumerate(rows[start:start + cfg.insert_batch])]
            client.insert(name, batch)
            progress.update(len(batch))
        client.flush(name)
        client.load_collection(name)
        set_properties(client, name, status="built")
    seconds = time.perf_counter() - started
    log.info("built %s: %d rows in %.1fs", name, len(rows), seconds)
    return BuildResult(name, len(rows), seconds)


def _clip(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name, limit in VARCHAR_LIMITS.items():
        value = out.get(name) or ""
        out[name] = value[:limit] if len(value.encode()) <= limit \
            else value.encode()[:limit].decode(errors="ignore")
    return out


