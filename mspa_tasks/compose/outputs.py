"""The composer's published outputs (the DAG's ``compose.publish_texts``).

:func:`publish_texts` merges the staged shards of both datasets and publishes
``preference_texts/ds=<ds>/`` and ``author_texts/ds=<ds>/`` (Parquet ``texts`` + manifest)
through the catalog, the same rows into the warehouse tables of the same names, and a
human-readable sample of ``compose.sample_size`` preference texts next to each user's tipped
authors (``reports/compose/ds=<ds>/sample.md``).

Output columns (both datasets; the id is ``user_id`` or ``author_id``): ``text`` (one
``Section: answer`` line per prompt section), ``status`` (``ok``/``failed``), ``reason``
(which sections failed which check), ``model_version``, ``prompt_version``, ``input_hash``,
``tokens_in``, ``tokens_out``, ``attempts``, ``reused``, ``authors_truncated``,
``authors_omitted`` (what the context budget cut).
"""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.compose.shards import KINDS, shard_key, staging_prefix, tipped_authors
from mspa_tasks.datasets import CATALOG, SESSIONS
from mspa_tasks.days import code_version
from mspa_tasks.markdown import markdown_env
from mspa_tasks.publish import require_rows
from mspa_tasks.run import DayRun
from mspa_tasks.sampling import stable_digest
from mspa_tasks.warehouse import bulk_insert, make_engine, run_sql

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


class ShardsMissing(RuntimeError):
    """publish_texts found fewer staged shards than planned."""


def publish_texts(run: DayRun) -> dict[str, Any]:
    """Merge staged shards, publish both datasets and warehouse tables (see module doc)."""
    ds, warehouse_url, store, settings = run.ds, run.url, run.artifacts, run.settings
    cfg = settings.compose
    tables = {}
    for kind, (dataset, id_col) in KINDS.items():
        keys = [shard_key(dataset, ds, s, cfg.n_shards) for s in range(cfg.n_shards)]
        missing = [k for k in keys if not store.exists(k)]
        if missing:
            raise ShardsMissing(f"ds={ds}: {len(missing)} of {len(keys)} {kind} shards are not "
                                f"staged ({', '.join(missing[:3])}…); rerun compose_shard")
        table = pa.concat_tables([pq.read_table(io.BytesIO(store.get_bytes(k))) for k in keys])
        tables[kind] = require_rows(table.sort_by(id_col), f"the staged {dataset} shards", ds,
                                    "publish_texts")

    engine = make_engine(warehouse_url)
    with engine.begin() as conn:
        run_sql(conn, "ddl/compose.sql")
        for kind, (dataset, _) in KINDS.items():
            run_sql(conn, "compose/delete_texts.sql", {"ds": ds}, table=dataset)
            rows = tables[kind].to_pylist()
            columns = list(tables[kind].column_names)
            bulk_insert(conn, dataset, ["ds", *columns],
                        ([ds, *[int(v) if isinstance(v, bool) else v for v in r.values()]]
                         for r in rows))
    engine.dispose()

    sample = sample_texts(store, ds, tables["users"], cfg.sample_size)
    report_uri = store.put_text(f"reports/compose/ds={ds}/sample.md", sample_markdown(ds, sample))
    results = {}
    for kind, (dataset, _) in KINDS.items():
        table = tables[kind]
        manifest = {
            "model_version": sorted(set(table.column("model_version").to_pylist())),
            "prompt_version": sorted(set(table.column("prompt_version").to_pylist())),
            "backend": cfg.backend, "frames_as": cfg.frames_as,
            "code_version": code_version(), "config_version": settings.fingerprint(),
            "counts": texts_counts(table),
        }
        if kind == "users":
            manifest["sample_report"] = report_uri
        published = CATALOG[dataset].publish(store, ds, {"texts": table}, manifest)
        results[dataset] = {"manifest": published.manifest_uri, "counts": manifest["counts"]}
        log.info("published %s: %s", published.manifest_uri, manifest["counts"])
    for dataset, _ in KINDS.values():
        for key in store.list(staging_prefix(dataset, ds) + "/"):
            store.delete(key)
    results["sample_report"] = report_uri
    return results


def texts_counts(table: pa.Table) -> dict[str, Any]:
    rows = table.to_pylist()
    failed_reasons: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["status"] == "failed":
            for part in (r["reason"] or "").split("; "):
                failed_reasons[part.split(": ", 1)[-1]] += 1
    return {
        "total": len(rows),
        "ok": sum(r["status"] == "ok" for r in rows),
        "failed": sum(r["status"] == "failed" for r in rows),
        "failed_sections_by_check": dict(sorted(failed_reasons.items())),
        "reused": sum(bool(r["reused"]) for r in rows),
        "regenerated": sum(not r["reused"] for r in rows),
        "tokens_in": sum(r["tokens_in"] for r in rows if not r["reused"]),
        "tokens_out": sum(r["tokens_out"] for r in rows if not r["reused"]),
        "inputs_with_truncated_authors": sum(r["authors_truncated"] > 0 for r in rows),
        "inputs_with_omitted_authors": sum(r["authors_omitted"] > 0 for r in rows),
    }


def sample_texts(store: ArtifactStore, ds: str, texts: pa.Table, size: int) -> list[dict[str, Any]]:
    """``size`` preference texts (a stable pseudo-random pick) with each user's authors."""
    sessions = SESSIONS.read(store, ds, "sessions")
    authors = {r["author_id"]: r for r in SESSIONS.read(store, ds, "authors").to_pylist()}
    tipped = tipped_authors(sessions)
    rows = sorted(texts.to_pylist(),
                  key=lambda r: stable_digest(ds, r["user_id"]))
    return [{"user_id": r["user_id"], "status": r["status"], "text": r["text"],
             "tipped": [{"author_id": a, "times": n,
                         "category": authors.get(a, {}).get("category"),
                         "location": authors.get(a, {}).get("location")}
                        for a, n in tipped.get(r["user_id"], [])]}
            for r in rows[:size]]


def sample_markdown(ds: str, sample: list[dict[str, Any]]) -> str:
    """The sample for a human, from ``templates/sample.md.j2``. Author fields and texts are
    untrusted (a profile can carry HTML or a ``javascript:`` link): every value the template
    prints is escaped for Markdown by default (:func:`~mspa_tasks.markdown.markdown_env`),
    texts go into a code block that they cannot close."""
    return markdown_env(TEMPLATES).get_template("sample.md.j2").render(ds=ds, sample=sample)
