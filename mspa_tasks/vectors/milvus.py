"""The nightly author-vector refresh in Milvus: build, validate, publish by alias swap, rollback.

One code path for milvus-lite (a file URI) and Milvus standalone/distributed (a server URI and
a token), through pymilvus ``MilvusClient``. Consumers search the stable alias
(``vectors.alias``, e.g. ``mspa_authors``); each refresh is a new collection:

``{alias}__{yyyymmdd}__{encoder}__{build id}``

1. :func:`build_collection` creates it (schema: :func:`author_schema`, index from config),
   inserts the ``author_vectors`` partition of ``ds`` in batches and loads it. Status
   ``building``, then ``built``.
2. :func:`validate_collection` is the gate: row count equals the kept author set, the same
   ids, stored vectors equal the encoded ones, ANN recall@K against exact search on a sample
   of users' preference vectors at or above ``min_recall``, and every spot-checked author
   finds itself first when searched by its own vector. Any failure marks the collection
   ``failed`` with the reason and raises :class:`VectorGateError`; the alias is not touched.
3. :func:`publish_collection` swaps the alias in one ``alter_alias`` (only onto a
   ``validated`` collection), then applies the retention rule (:func:`retention_plan`). The
   alias only moves forward in ``ds``: publishing a past day (a backfill, a rerun) while a
   newer day serves leaves the alias where it is.
4. :func:`rollback` points the alias back at the previous published version.

The client, the properties and the reads any stage needs are in
:mod:`mspa_tasks.vector_store`; their names are also this module's (the CLI, the DAGs and the
tests call ``milvus.milvus_client``, ``milvus.MilvusTarget``). State lives in Milvus itself,
as collection properties (``mspa.status``, ``mspa.ds``,
``mspa.encoder_version``, ``mspa.published_at``, …), so what is served and what is kept can
always be read from the one system consumers use. A milvus-lite file is held by one process
at a time: every function opens its client and closes it before returning.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.config import Settings, VectorsConfig
from mspa_tasks.datasets import AUTHOR_VECTORS, USER_VECTORS, read_vectors
from mspa_tasks.progress import Progress
from mspa_tasks.publish import require_rows
from mspa_tasks.quality import CheckResult, GateError
from mspa_tasks.sampling import stable_positions
from mspa_tasks.vector_store import (
    SERVABLE,
    STATUS,
    MilvusTarget,
    Version,
    clamp_k,
    ensure_loaded,
    milvus_client,
    properties,
    recall_at_k,
    search_positions,
    serving_collection,
    set_properties,
)
from mspa_tasks.vector_store import (
    versions as collection_versions,
)

log = logging.getLogger(__name__)

VARCHAR_LIMITS = {"encoder_version": 128, "composer_version": 256, "text_hash": 64,
                  "text_source": 16, "category": 64, "location": 128}


class VectorGateError(GateError):
    """The new collection failed validation; the alias still serves the previous version."""

    def __init__(self, collection: str, failures: list[CheckResult]) -> None:
        self.collection = collection
        super().__init__(f"vector gate stopped {collection}", failures,
                         "; the alias was not moved")


class PublishRefused(RuntimeError):
    """An alias swap or rollback that would serve an unvalidated or unknown collection."""


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


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_vectors(vectors: np.ndarray) -> CheckResult:
    norms = np.linalg.norm(vectors, axis=1) if len(vectors) else np.zeros(0)
    bad = int((~np.isfinite(vectors).all(axis=1)).sum() + (norms < 1e-6).sum()) \
        if len(vectors) else 0
    return CheckResult("zero_or_invalid_vectors", bad, None, 0, bad == 0,
                       "vectors that are all-zero, NaN or infinite")


@dataclass(frozen=True)
class BuildResult:
    collection: str
    rows: int
    seconds: float


def build_collection(ds: str, target: MilvusTarget, store: ArtifactStore,
                     settings: Settings, build_id: str | None = None) -> BuildResult:
    """Create a new versioned collection of ``ds``'s author vectors; never touches the alias."""
    cfg = settings.vectors
    started = time.perf_counter()
    table, vectors = read_vectors(store, AUTHOR_VECTORS, ds)
    require_rows(table, AUTHOR_VECTORS.name, ds, "build_collection")
    manifest = AUTHOR_VECTORS.manifest(store, ds, "vectors.build_collection")
    check = _check_vectors(vectors)
    if not check.passed:  # refuse before creating anything
        raise VectorGateError(f"author_vectors/ds={ds}", [check])
    build_id = build_id or "b" + dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")[:17]
    name = collection_name(cfg.alias, ds, manifest["encoder_version"], build_id)
    rows = [{**r, "encoder_version": manifest["encoder_version"]}
            for r in table.drop_columns(["vector", "reused"]).to_pylist()]
    updated_at = _now_ms()
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


def _present_ids(client: Any, name: str, ids: list[int], chunk: int = 1000) -> set[int]:
    """Which of ``ids`` the collection holds (primary-key lookups in chunks)."""
    found: set[int] = set()
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        rows = client.query(name, filter=f"author_id in {part}", output_fields=["author_id"],
                            limit=len(part))
        found.update(int(r["author_id"]) for r in rows)
    return found


def effective_k(cfg: VectorsConfig, n: int) -> int:
    """recall@K's K: the configured K, at most a quarter of the collection so that the
    check still measures ranking (top-n of n is trivially complete).

    >>> from mspa_tasks.config import VectorsConfig
    >>> effective_k(VectorsConfig(), 100_000), effective_k(VectorsConfig(), 400)
    (1000, 100)
    """
    return clamp_k(cfg.recall_k, n)


def validate_collection(ds: str, name: str, target: MilvusTarget, store: ArtifactStore,
                        settings: Settings) -> list[CheckResult]:
    """The gate (module doc, step 2). Returns the checks; raises :class:`VectorGateError`."""
    cfg = settings.vectors
    table, vectors = read_vectors(store, AUTHOR_VECTORS, ds)
    ids = table.column("author_id").to_numpy()
    index_of = {int(a): i for i, a in enumerate(ids)}
    _, user_vectors = read_vectors(store, USER_VECTORS, ds)
    checks = [_check_vectors(vectors)]
    with milvus_client(target) as client:
        _require_collection(client, name)
        if not len(ids):  # nothing to judge: the collection can never serve
            set_properties(client, name, status="failed", reason="empty author_vectors")
            require_rows(table, AUTHOR_VECTORS.name, ds, "validate_collection")
        status = properties(client, name).get(STATUS)
        if status not in ("built", "validated", "failed"):
            raise PublishRefused(f"{name} has status {status!r}; only a built collection can "
                                 "be validated (rerun build_collection)")
        ensure_loaded(client, name)
        count = int(client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])
        checks.append(CheckResult("row_count", count, len(ids), len(ids), count == len(ids),
                                  "rows in the collection = kept authors of the day"))
        present = _present_ids(client, name, [int(a) for a in ids])
        missing = sorted(set(index_of) - present)
        unexpected = count - len(present)
        checks.append(CheckResult(
            "ids_match", len(missing) + unexpected, None, 0, not missing and not unexpected,
            f"kept authors missing: {len(missing)} {missing[:5]}; rows not kept: {unexpected}"))

        probe = stable_positions(ids, max(cfg.spot_checks, 1), f"{ds}:stored")
        got = {int(r["author_id"]): r["vector"] for r in
               client.get(name, ids=[int(ids[p]) for p in probe], output_fields=["vector"])}
        drift = max((float(np.abs(np.asarray(got[int(ids[p])]) - vectors[p]).max())
                     if int(ids[p]) in got else np.inf for p in probe), default=0.0)
        checks.append(CheckResult("stored_vectors_match", drift, None, 1e-5, drift <= 1e-5,
                                  f"max |stored - encoded| over {len(probe)} authors"))

        k = effective_k(cfg, len(ids))
        queries = user_vectors if len(user_vectors) else vectors
        sample = queries[stable_positions(np.arange(len(queries)), cfg.recall_sample, f"{ds}:recall")]
        recall = recall_at_k(sample @ vectors.T,
                             search_positions(client, name, sample, k, cfg, index_of), k)
        checks.append(CheckResult(f"recall_at_{k}", recall, cfg.min_recall, None,
                                  recall >= cfg.min_recall,
                                  f"ANN vs exact search, {len(sample)} "
                                  f"{'user' if len(user_vectors) else 'author'} queries, "
                                  f"{cfg.index_type}"))

        spots = stable_positions(ids, cfg.spot_checks, f"{ds}:spot")
        found = search_positions(client, name, vectors[spots], 5, cfg, index_of)
        lost = [int(ids[p]) for p, hits in zip(spots, found, strict=True)
                if not hits or hits[0] < 0 or (hits[0] != p and
                                               float(vectors[p] @ vectors[hits[0]]) < 1 - 1e-5)]
        checks.append(CheckResult("self_is_nearest", len(lost), None, 0, not lost,
                                  f"{len(spots)} authors searched by their own vector; "
                                  f"not first: {lost[:5]}"))
        failures = [c for c in checks if not c.passed]
        if failures:
            set_properties(client, name, status="failed",
                            reason="; ".join(f.name for f in failures)[:500])
        else:
            set_properties(client, name, status="validated", recall=f"{recall:.4f}",
                            validated_at=_now_ms())
    report = {"ds": ds, "collection": name, "checks": [c.as_dict() for c in checks],
              "passed": not failures}
    store.put_text(f"reports/vectors/ds={ds}/gate.json",
                   json.dumps(report, indent=2, default=str) + "\n")
    for c in checks:
        log.info("gate %s", c.message)
    if failures:
        raise VectorGateError(name, failures)
    return checks


def list_versions(target: MilvusTarget, settings: Settings) -> list[dict[str, Any]]:
    """Every collection of the alias's family, newest published first."""
    with milvus_client(target) as client:
        return [v.as_dict() for v in collection_versions(client, settings.vectors.alias)]


IN_FLIGHT = ("building", "built", "validated")


def retention_plan(versions: list[Version], keep: int, now_ms: int = 0, grace_ms: int = 0,
                   published_ds: str | None = None, published_at: int = 0,
                   ) -> tuple[list[str], list[str]]:
    """``(kept, dropped)`` collection names. Kept: the serving one, plus the newest published
    versions of other days until ``keep`` versions are kept (one per day), plus every build
    still in flight (``building``/``built``/``validated``) that another run may need: one
    of another day created less than ``grace_ms`` before ``now_ms`` (an interleaved backfill
    is building or validating it, or its replay still reads it). Dropped: the rest — failed,
    rolled-back and superseded versions, older duplicates of a day, versions beyond ``keep``,
    builds of ``published_ds`` older than the one just published (an interrupted attempt of
    the same run), and in-flight builds older than the grace period (abandoned).

    >>> V = lambda c, ds, st, t, s=False, made=0: Version(c, ds, st, t, s,
    ...                                                   {"mspa.created_at": str(made)})
    >>> retention_plan([V("c3", "d3", "published", 3, True), V("c2", "d2", "published", 2),
    ...                 V("c2b", "d2", "published", 1), V("c1", "d1", "published", 0),
    ...                 V("x", "d4", "failed", 0)], keep=2)
    (['c3', 'c2'], ['c2b', 'c1', 'x'])
    >>> other = [V("c3", "d3", "published", 3, True, made=90), V("b", "d1", "built", 0, made=95),
    ...          V("old", "d0", "built", 0, made=1), V("mine", "d3", "built", 0, made=80)]
    >>> retention_plan(other, keep=2, now_ms=100, grace_ms=50, published_ds="d3",
    ...                published_at=90)
    (['c3', 'b'], ['old', 'mine'])
    """
    kept: list[str] = [v.collection for v in versions if v.serving]
    days = {v.ds for v in versions if v.serving}
    for v in versions:  # newest published first
        if len(kept) >= keep:
            break
        if v.status in SERVABLE and not v.serving and v.ds not in days:
            kept.append(v.collection)
            days.add(v.ds)
    for v in versions:
        if v.status not in IN_FLIGHT or v.collection in kept:
            continue
        made = int(v.properties.get("mspa.created_at", 0) or 0)
        superseded = v.ds == published_ds and made < published_at
        if not superseded and now_ms - made < grace_ms:
            kept.append(v.collection)
    return kept, [v.collection for v in versions if v.collection not in kept]


def _require_collection(client: Any, name: str) -> None:
    if not client.has_collection(name):
        raise PublishRefused(f"collection {name} does not exist (dropped by retention, or "
                             "never built): rerun build_collection for this ds")


def publish_collection(ds: str, name: str, target: MilvusTarget,
                       settings: Settings) -> dict[str, Any]:
    """Point the alias at ``name`` (one ``alter_alias``) and apply the retention rule. The
    collection's own day decides whether the alias moves: a ``ds`` that is not that day is
    refused (a move back is only ever a recorded :func:`rollback`)."""
    cfg = settings.vectors
    with milvus_client(target) as client:
        _require_collection(client, name)
        status = properties(client, name).get(STATUS)
        if status not in ("validated", "published"):
            raise PublishRefused(f"{name} has status {status!r}: an alias only ever points to "
                                 "a validated collection (docs/decisions.md)")
        own_ds = properties(client, name).get("mspa.ds")
        if own_ds != ds:
            raise PublishRefused(
                f"{name} holds the vectors of ds={own_ds}, not ds={ds}: a collection is "
                f"published under its own day (--ds {own_ds}); to serve an older day, roll "
                f"back: mspa vectors rollback --to {name} --reason '...'")
        previous = serving_collection(client, cfg.alias)
        newer = properties(client, previous).get("mspa.ds", "") if previous else ""
        if previous and previous != name and newer > ds:
            # A backfill or a rerun of a past day: consumers keep the newer vectors. The
            # collection stays validated (the day's replay measures it); retention drops it.
            log.warning("alias %s stays on %s (ds=%s): %s is of the older ds=%s, and a past "
                        "day never moves consumers back (roll back explicitly for that)",
                        cfg.alias, previous, newer, name, ds)
            return {"alias": cfg.alias, "collection": previous, "previous": previous,
                    "kept": [], "dropped": [], "ds": ds, "moved": False, "built": name}
        ensure_loaded(client, name)  # consumers never find the new version unloaded
        if previous is None:
            client.create_alias(name, cfg.alias)
        elif previous != name:
            client.alter_alias(name, cfg.alias)
        set_properties(client, name, status="published", published_at=_now_ms())
        log.info("alias %s -> %s (was %s)", cfg.alias, name, previous)
        made = int(properties(client, name).get("mspa.created_at", 0) or 0)
        kept, dropped = retention_plan(collection_versions(client, cfg.alias), cfg.keep_versions,
                                       now_ms=_now_ms(),
                                       grace_ms=int(cfg.inflight_grace_hours * 3_600_000),
                                       published_ds=ds, published_at=made)
        for old in dropped:
            log.info("retention: dropping %s", old)
            client.drop_collection(old)
    return {"alias": cfg.alias, "collection": name, "previous": previous, "kept": kept,
            "dropped": dropped, "ds": ds, "moved": True, "built": name}


def rollback(target: MilvusTarget, settings: Settings, to: str | None = None,
             reason: str = "manual rollback") -> dict[str, Any]:
    """Point the alias back at ``to`` or at the newest other published version; the version
    rolled away from is marked ``rolled_back`` (retention drops it at the next publish)."""
    cfg = settings.vectors
    with milvus_client(target) as client:
        versions = collection_versions(client, cfg.alias)
        current = next((v for v in versions if v.serving), None)
        if current is None:
            raise PublishRefused(f"alias {cfg.alias!r} does not exist yet: nothing to roll back")
        candidates = [v for v in versions if not v.serving and v.status in SERVABLE]
        if to:
            candidates = [v for v in candidates if v.collection == to]
        if not candidates:
            known = ", ".join(f"{v.collection} ({v.status})" for v in versions)
            wanted = f"named {to}" if to else f"other than {current.collection}"
            raise PublishRefused(f"no published version {wanted} to roll back to; "
                                 f"versions: {known}")
        chosen = candidates[0]
        ensure_loaded(client, chosen.collection)
        client.alter_alias(chosen.collection, cfg.alias)
        set_properties(client, current.collection, status="rolled_back", reason=reason[:500])
        log.warning("alias %s rolled back: %s -> %s (%s)", cfg.alias, current.collection,
                    chosen.collection, reason)
    return {"alias": cfg.alias, "from": current.collection, "to": chosen.collection,
            "ds": chosen.ds, "reason": reason}
