"""Partitioned, content-addressed dataset publishing with a manifest as the commit point.

Layout: ``{dataset}/ds={ds}/{name}-{sha256[:16]}.parquet`` plus ``manifest.json``. Data files
are written first under names derived from their bytes, the manifest last (one atomic put),
then files of earlier attempts that the manifest does not name are deleted. So:

* a reader that goes through the manifest sees either the previous or the new partition;
* rerunning a day with the same inputs writes byte-identical files and manifest;
* a run killed before the manifest write leaves the previous manifest serving.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mspa_tasks.artifacts import ArtifactStore

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


class ChecksumMismatch(RuntimeError):
    """A published file's bytes no longer match the checksum in its manifest."""


class EmptyInput(RuntimeError):
    """A stage's input holds no rows: the stage refuses to produce (and publish) anything
    from it, so that an empty day never reaches consumers."""


def require_rows(table: pa.Table, what: str, ds: str, stage: str) -> pa.Table:
    """``table`` if it has rows, else :class:`EmptyInput` naming the input and the stage.

    >>> require_rows(pa.table({"a": [1]}), "sessions/authors", "2026-11-20", "encode").num_rows
    1
    """
    if table.num_rows == 0:
        raise EmptyInput(f"{what} of ds={ds} has 0 rows: {stage} refuses an empty input and "
                         "publishes nothing (the alias and earlier days keep serving); see the "
                         "day's dq_results and docs/runbook.md, 'An empty day'")
    return table


@dataclass(frozen=True)
class Published:
    dataset: str
    ds: str
    manifest_uri: str
    manifest: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """What a task reports: where the manifest is and the counts it holds."""
        return {"manifest": self.manifest_uri, "counts": self.manifest.get("counts")}


def partition_prefix(dataset: str, ds: str) -> str:
    return f"{dataset}/ds={ds}"


def without_nul(table: pa.Table) -> pa.Table:
    r"""``table`` with NUL characters removed from its text columns: PostgreSQL refuses them,
    Milvus VARCHAR fields and most readers of a published file choke on them, and no text
    means anything by them.

    >>> without_nul(pa.table({"t": ["a\x00b", None], "n": [1, 2]})).column("t").to_pylist()
    ['ab', None]
    """
    for i, column in enumerate(table.columns):
        if (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) \
                and pc.any(pc.match_substring(column, "\x00")).as_py():
            table = table.set_column(i, table.field(i),
                                     pc.replace_substring(column, "\x00", ""))
    return table


def parquet_bytes(table: pa.Table) -> bytes:
    """Deterministic Parquet bytes for ``table`` (same rows and schema -> same bytes), text
    without NUL characters (:func:`without_nul`)."""
    buffer = io.BytesIO()
    pq.write_table(without_nul(table), buffer, compression="zstd", write_statistics=True)
    return buffer.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stage_tables(store: ArtifactStore, dataset: str, ds: str,
                 tables: dict[str, pa.Table]) -> dict[str, dict[str, Any]]:
    """Write ``tables`` as content-addressed Parquet into the partition folder.

    Nothing reads them until a manifest names them (:func:`commit_manifest`). Returns the
    manifest's ``files`` section: ``{name: {file, rows, bytes, sha256}}``.
    """
    prefix = partition_prefix(dataset, ds)
    files: dict[str, dict[str, Any]] = {}
    for name, table in sorted(tables.items()):
        data = parquet_bytes(table)
        digest = sha256_hex(data)
        key = f"{prefix}/{name}-{digest[:16]}.parquet"
        if not store.exists(key):
            store.put_bytes(key, data)
        files[name] = {"file": key.rsplit("/", 1)[1], "rows": table.num_rows,
                       "bytes": len(data), "sha256": digest}
    return files


def commit_manifest(store: ArtifactStore, dataset: str, ds: str,
                    manifest: dict[str, Any]) -> Published:
    """Publish the partition: write ``manifest`` (its ``files`` must be staged), then delete
    what the manifest does not name (files of earlier attempts, drafts)."""
    prefix = partition_prefix(dataset, ds)
    for entry in manifest["files"].values():
        if not store.exists(f"{prefix}/{entry['file']}"):
            raise FileNotFoundError(f"{prefix}/{entry['file']} is named by the manifest but "
                                    "was not staged; rerun the step that stages it")
    body = {**manifest, "dataset": dataset, "ds": ds}
    text = json.dumps(body, indent=2, sort_keys=True, default=str) + "\n"
    manifest_uri = store.put_text(f"{prefix}/{MANIFEST}", text)
    keep = {f"{prefix}/{MANIFEST}"} | {f"{prefix}/{f['file']}" for f in body["files"].values()}
    for stale in set(store.list(prefix + "/")) - keep:
        log.info("removing %s (not named by the new manifest)", stale)
        store.delete(stale)
    return Published(dataset=dataset, ds=ds, manifest_uri=manifest_uri, manifest=body)


def publish_partition(
    store: ArtifactStore,
    dataset: str,
    ds: str,
    tables: dict[str, pa.Table],
    manifest: dict[str, Any],
) -> Published:
    """Stage ``tables`` and commit them with ``manifest`` in one call (see module doc)."""
    files = stage_tables(store, dataset, ds, tables)
    return commit_manifest(store, dataset, ds, {**manifest, "files": files})


def read_manifest(store: ArtifactStore, dataset: str, ds: str) -> dict[str, Any]:
    return json.loads(store.get_text(f"{partition_prefix(dataset, ds)}/{MANIFEST}"))


def read_table(store: ArtifactStore, dataset: str, ds: str, name: str) -> pa.Table:
    """Read one published table, verifying its checksum against the manifest."""
    manifest = read_manifest(store, dataset, ds)
    entry = manifest["files"][name]
    data = store.get_bytes(f"{partition_prefix(dataset, ds)}/{entry['file']}")
    if sha256_hex(data) != entry["sha256"]:
        raise ChecksumMismatch(f"{dataset}/ds={ds}/{entry['file']}: checksum differs from manifest")
    return pq.read_table(io.BytesIO(data))


def published_days(store: ArtifactStore, dataset: str) -> list[str]:
    """Partitions of ``dataset`` that have a manifest, oldest first."""
    days = set()
    for key in store.list(f"{dataset}/"):
        parts = key.split("/")
        if len(parts) == 3 and parts[1].startswith("ds=") and parts[2] == MANIFEST:
            days.add(parts[1][3:])
    return sorted(days)
