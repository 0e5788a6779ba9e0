"""Step 2 of the nightly refresh, the gate: row count equals the kept author set, the same
ids, stored vectors equal the encoded ones, ANN recall@K against exact search on a sample of
users' preference vectors at or above ``min_recall``, and every spot-checked author finds
itself first when searched by its own vector. Any failure marks the collection ``failed``
with the reason and raises :class:`VectorGateError`; the alias is not touched.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from mspa_tasks.config import VectorsConfig
from mspa_tasks.datasets import AUTHOR_VECTORS, USER_VECTORS, read_vectors
from mspa_tasks.publish import require_rows
from mspa_tasks.quality import CheckResult, GateError
from mspa_tasks.run import DayRun
from mspa_tasks.sampling import stable_positions
from mspa_tasks.vector_store import (
    STATUS,
    PublishRefused,
    clamp_k,
    ensure_loaded,
    milvus_client,
    now_ms,
    properties,
    recall_at_k,
    require_collection,
    search_positions,
    set_properties,
)

log = logging.getLogger(__name__)

class VectorGateError(GateError):
    """The new collection failed validation; the alias still serves the previous version."""

    def __init__(self, collection: str, failures: list[CheckResult]) -> None:
        self.collection = collection
        super().__init__(f"vector gate stopped {collection}", failures,
                         "; the alias was not moved")


def check_vectors(vectors: np.ndarray) -> CheckResult:
    norms = np.linalg.norm(vectors, axis=1) if len(vectors) else np.zeros(0)
    bad = int((~np.isfinite(vectors).all(axis=1)).sum() + (norms < 1e-6).sum()) \
        if len(vectors) else 0
    return CheckResult("zero_or_invalid_vectors", bad, None, 0, bad == 0,
                       "vectors that are all-zero, NaN or infinite")


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


def validate_collection(run: DayRun, name: str) -> list[CheckResult]:
    """The gate (module doc, step 2). Returns the checks; raises :class:`VectorGateError`."""
    ds, target, store, settings = run.ds, run.target, run.artifacts, run.settings
    cfg = settings.vectors
    table, vectors = read_vectors(store, AUTHOR_VECTORS, ds)
    ids = table.column("author_id").to_numpy()
    index_of = {int(a): i for i, a in enumerate(ids)}
    _, user_vectors = read_vectors(store, USER_VECTORS, ds)
    checks = [check_vectors(vectors)]
    with milvus_client(target) as client:
        require_collection(client, name)
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
                            validated_at=now_ms())
    report = {"ds": ds, "collection": name, "checks": [c.as_dict() for c in checks],
              "passed": not failures}
    store.put_text(f"reports/vectors/ds={ds}/gate.json",
                   json.dumps(report, indent=2, default=str) + "\n")
    for c in checks:
        log.info("gate %s", c.message)
    if failures:
        raise VectorGateError(name, failures)
    return checks


