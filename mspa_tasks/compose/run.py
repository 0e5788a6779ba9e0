"""Daily composer runs: sharded, cached by content, published per ``ds``.

Steps (the DAG's ``compose`` group):

1. :func:`plan_shards` — the shard list (user shards and author shards), from config only.
2. :func:`compose_shard` — one shard: read the published ``sessions`` partition and author
   content (profiles, frame captions or images, ASR, comments, all before the window's end),
   render fenced inputs (the model is the champion of ``model_registry`` once a retrained
   one is promoted, see ``mspa_tasks.align``), reuse every text whose cache key (model
   version, prompt version, hash of the exact input) matches a text (``ok`` or ``failed``) in the latest published
   partition at or before ``ds``, generate the rest in batches with validation and retries,
   and stage the shard under ``_staging/<dataset>/ds=<ds>/``.
3. :func:`publish_texts` — merge the shards of both datasets, publish
   ``preference_texts/ds=<ds>/`` and ``author_texts/ds=<ds>/`` (Parquet ``texts`` + manifest)
   and the same rows into the warehouse tables of the same names, with a human-readable
   sample of 20 preference texts next to each user's tipped authors.

Output columns (both datasets; the id is ``user_id`` or ``author_id``): ``text`` (one
``Section: answer`` line per prompt section), ``status`` (``ok``/``failed``), ``reason``
(which sections failed which check), ``model_version``, ``prompt_version``, ``input_hash``,
``tokens_in``, ``tokens_out``, ``attempts``, ``reused``, ``authors_truncated``,
``authors_omitted`` (what the context budget cut).
"""

from __future__ import annotations

import io
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mspa_tasks.align.champion import serving_settings
from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.compose.backends import Backend, KeywordBackend, Request, load_backend
from mspa_tasks.compose.content import load_author_content
from mspa_tasks.compose.prompting import (
    AuthorContent,
    PromptSpec,
    RenderedInput,
    load_prompt,
    render_author,
    render_user,
)
from mspa_tasks.compose.validate import assemble, section_problem
from mspa_tasks.config import ComposeConfig, Settings
from mspa_tasks.datasets import CATALOG, SESSIONS, text_schema
from mspa_tasks.ingest import code_version, window_for
from mspa_tasks.publish import (
    parquet_bytes,
    partition_prefix,
    require_rows,
)
from mspa_tasks.report import markdown_env
from mspa_tasks.sampling import stable_digest, stable_int
from mspa_tasks.warehouse import bulk_insert, make_engine, run_sql

log = logging.getLogger(__name__)

PREFERENCE = "preference_texts"
AUTHOR = "author_texts"
KINDS = {"users": (PREFERENCE, "user_id"), "authors": (AUTHOR, "author_id")}
READER = "compose.compose_shard"
TEMPLATES = Path(__file__).parent / "templates"
MAX_USER_IMAGES, MAX_AUTHOR_IMAGES = 4, 2


class ShardsMissing(RuntimeError):
    """publish_texts found fewer staged shards than planned."""


def shard_of(entity_id: int, n_shards: int) -> int:
    """A stable shard for an id (the same across days, machines and Python versions).

    >>> [shard_of(i, 4) for i in (1, 2, 3)] == [shard_of(i, 4) for i in (1, 2, 3)]
    True
    """
    return stable_int(None, int(entity_id)) % n_shards


def plan_shards(cfg: ComposeConfig) -> list[dict[str, Any]]:
    """Every shard the day needs: ``{"kind", "shard", "of"}`` for users then authors.

    >>> len(plan_shards(ComposeConfig(n_shards=3)))
    6
    """
    return [{"kind": kind, "shard": i, "of": cfg.n_shards}
            for kind in ("users", "authors") for i in range(cfg.n_shards)]


def model_version(cfg: ComposeConfig, settings: Settings) -> str:
    """What names the weights: the content-keyed packaged folder, a folder name or a hub id
    (``keywords-v1`` for the model-free backend)."""
    if cfg.backend == "keywords":
        return KeywordBackend.model_version
    return Path(resolve_model_path(cfg, settings, prepare=False)).name \
        if cfg.model.startswith("packaged:") or Path(cfg.model).exists() else cfg.model


def resolve_model_path(cfg: ComposeConfig, settings: Settings, prepare: bool = True) -> str:
    """The composer model's folder (a packaged one converted on first use), or the hub id /
    folder as configured (production; never fetched in tests)."""
    from mspa_tasks.models import packaged_model

    path = packaged_model(cfg.model, settings.models_dir, "llm", prepare)
    return cfg.model if path is None else str(path)


# ---------------------------------------------------------------------------------------
# inputs


def tipped_authors(sessions: pa.Table) -> dict[int, list[tuple[int, int]]]:
    """Per user, distinct tipped authors most recent first, with how often each was tipped.

    >>> t = pa.table({"user_id": [1, 1, 1], "author_id": [5, 6, 5], "ts": [1, 2, 3]})
    >>> tipped_authors(t)
    {1: [(5, 2), (6, 1)]}
    """
    out: dict[int, list[tuple[int, int]]] = {}
    rows = sorted(zip(sessions.column("user_id").to_pylist(),
                      sessions.column("ts").to_pylist(),
                      sessions.column("author_id").to_pylist(), strict=True),
                  key=lambda r: (r[0], -r[1]))
    for user, _, author in rows:
        out.setdefault(user, []).append(author)
    result = {}
    for user, authors in out.items():
        counts: dict[int, int] = {}
        for a in authors:
            counts[a] = counts.get(a, 0) + 1
        result[user] = [(a, counts[a]) for a in dict.fromkeys(authors)]
    return result


# ---------------------------------------------------------------------------------------
# generation with validation and retries


@dataclass
class Composed:
    text: str
    status: str
    reason: str | None
    tokens_in: int
    tokens_out: int
    attempts: int


def compose_texts(inputs: list[RenderedInput], spec: PromptSpec, backend: Backend,
                  retries: int, images: dict[int, tuple] | None = None,
                  extractive: bool = False) -> dict[int, Composed]:
    """Generate every section of every input; re-try failing sections (sampled, fixed seed)
    up to ``retries`` times; what still fails is returned with status ``failed``."""
    n_sections = len(spec.sections)
    answers: dict[tuple[int, int], str] = {}
    problems: dict[tuple[int, int], str | None] = {}
    tokens_in: dict[int, int] = defaultdict(int)
    tokens_out: dict[int, int] = defaultdict(int)
    attempts: dict[int, int] = defaultdict(int)
    pending = [(i, s) for i in range(len(inputs)) for s in range(n_sections)]
    for attempt in range(retries + 1):
        if not pending:
            break
        requests = [Request(spec.messages(inputs[i].data, spec.sections[s]),
                            prefill=f"{spec.sections[s].name}:",
                            images=(images or {}).get(inputs[i].entity_id, ()),
                            vocabulary=inputs[i].data if extractive else None)
                    for i, s in pending]
        seed = None if attempt == 0 else 1000 + attempt
        if attempt == 0 and hasattr(backend, "generate_groups"):
            # First pass: every section of every input; share each input's prompt prefix.
            grouped = backend.generate_groups(
                [requests[i * n_sections:(i + 1) * n_sections] for i in range(len(inputs))])
            gens = [g for group in grouped for g in group]
        else:
            gens = backend.generate(requests, seed=seed)
        for (i, s), gen in zip(pending, gens, strict=True):
            answers[i, s] = gen.text
            problems[i, s] = section_problem(gen.text, inputs[i].data)
            tokens_in[i] += gen.tokens_in
            tokens_out[i] += gen.tokens_out
        for i in {i for i, _ in pending}:
            attempts[i] = attempt + 1
        pending = [(i, s) for i, s in pending if problems[i, s]]
        if pending:
            log.info("attempt %d: %d section answers failed validation; %s", attempt + 1,
                     len(pending), "retrying" if attempt < retries else "storing as failed")
    out = {}
    for i, item in enumerate(inputs):
        sections = [(spec.sections[s].name, answers[i, s]) for s in range(n_sections)]
        failed = [f"{spec.sections[s].name}: {problems[i, s]}" for s in range(n_sections)
                  if problems[i, s]]
        out[item.entity_id] = Composed(
            text=assemble(sections), status="failed" if failed else "ok",
            reason="; ".join(failed) or None, tokens_in=tokens_in[i],
            tokens_out=tokens_out[i], attempts=attempts[i])
    return out


# ---------------------------------------------------------------------------------------
# the daily steps


def _staging_prefix(dataset: str, ds: str) -> str:
    return f"_staging/{partition_prefix(dataset, ds)}"


def _shard_key(dataset: str, ds: str, shard: int, of: int) -> str:
    return f"{_staging_prefix(dataset, ds)}/shard-{shard:03d}-of-{of:03d}.parquet"


def load_cache(store: ArtifactStore, dataset: str, ds: str) -> dict[str, dict[str, Any]]:
    """``input_hash -> row`` of the texts in the latest published partition at or before
    ``ds`` (the same day included, so a rerun regenerates nothing).

    ``failed`` texts are reused too: their retry budget was spent on this exact input with
    fixed seeds, so trying again would repeat the same answers at the same cost. A new input,
    prompt or model (a new key) gets a fresh try."""
    day = CATALOG[dataset].latest(store, ds)
    if day is None:
        return {}
    table = CATALOG[dataset].read(store, day, "texts")
    return {r["input_hash"]: r for r in table.to_pylist()}


def compose_shard(ds: str, kind: str, shard: int, of: int, warehouse_url: str,
                  store: ArtifactStore, settings: Settings,
                  backend: Backend | None = None) -> dict[str, Any]:
    """Compose one shard (see module doc); returns its counts."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: use 'users' or 'authors'")
    if not 0 <= shard < of:
        raise ValueError(f"shard={shard} is outside 0..{of - 1}")
    settings = serving_settings(settings, warehouse_url, store)
    cfg = settings.compose
    dataset, id_col = KINDS[kind]
    spec = load_prompt(cfg.preference_prompt if kind == "users" else cfg.author_prompt)
    version = model_version(cfg, settings)
    window = window_for(ds, settings.ingest.window_days)
    started = time.perf_counter()

    if kind == "users":
        sessions = require_rows(SESSIONS.read(store, ds, "sessions", READER),
                                "sessions/sessions", ds, "compose_shard")
        tipped = tipped_authors(sessions)
        ids = sorted(u for u in tipped if shard_of(u, of) == shard)
        needed = {a for u in ids for a, _ in tipped[u]}
    else:
        kept = require_rows(SESSIONS.read(store, ds, "authors", READER), "sessions/authors",
                            ds, "compose_shard").column("author_id").to_pylist()
        ids = sorted(a for a in kept if shard_of(a, of) == shard)
        needed = set(ids)
    content, frames = load_author_content(warehouse_url, needed, window.end_ms)
    if kind == "users":
        inputs = [render_user(u, tipped[u], content, cfg.max_input_chars, cfg.min_author_chars,
                              version, spec.version) for u in ids]
    else:
        inputs = [render_author(content.get(a) or AuthorContent(a, None, None, None, None),
                                cfg.author_max_chars, version, spec.version) for a in ids]
    log.info("%s shard %d/%d: %d %s; frames reach the prompt as %s (backend %s, model %s)",
             kind, shard + 1, of, len(ids), kind, cfg.frames_as, cfg.backend, version)

    cache = load_cache(store, dataset, ds)
    misses = [x for x in inputs if x.input_hash not in cache]
    composed: dict[int, Composed] = {}
    if misses:
        if backend is None:
            path = None if cfg.backend == "keywords" else resolve_model_path(cfg, settings)
            backend = load_backend(cfg.backend, path,
                                   batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
                                   model_version=version)
        images = _images(store, misses, frames, kind) if cfg.frames_as == "images" else None
        composed = compose_texts(misses, spec, backend, cfg.retries, images, cfg.extractive)

    rows = []
    for x in inputs:
        hit = cache.get(x.input_hash)
        if hit is not None:
            row = {**hit, id_col: x.entity_id, "reused": True}
        else:
            c = composed[x.entity_id]
            row = {id_col: x.entity_id, "text": c.text, "status": c.status, "reason": c.reason,
                   "model_version": version, "prompt_version": spec.version,
                   "input_hash": x.input_hash, "tokens_in": c.tokens_in,
                   "tokens_out": c.tokens_out, "attempts": c.attempts, "reused": False}
        row["authors_truncated"] = len(x.authors_truncated)
        row["authors_omitted"] = len(x.authors_omitted)
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=text_schema(id_col))
    store.put_bytes(_shard_key(dataset, ds, shard, of), parquet_bytes(table))
    summary = {"kind": kind, "shard": shard, "of": of, "rows": len(rows),
               "reused": len(inputs) - len(misses), "generated": len(misses),
               "failed": sum(1 for r in rows if r["status"] == "failed"),
               "seconds": round(time.perf_counter() - started, 1)}
    log.info("%s shard %d/%d done: %s", kind, shard + 1, of, summary)
    return summary


def _images(store: ArtifactStore, inputs: list[RenderedInput], frames: dict[int, list[str]],
            kind: str) -> dict[int, tuple]:
    from PIL import Image

    limit = MAX_USER_IMAGES if kind == "users" else MAX_AUTHOR_IMAGES
    out = {}
    for x in inputs:
        uris = [u for a in x.authors_in for u in frames.get(a, [])[:1 if kind == "users" else 2]]
        images = []
        for uri in uris[:limit]:
            key = uri.removeprefix(store.root_uri + "/")
            try:
                images.append(Image.open(io.BytesIO(store.get_bytes(key))).convert("RGB"))
            except Exception as exc:  # a broken frame is skipped, and said
                log.warning("frame %s unreadable (%s); composing without it", uri, exc)
        out[x.entity_id] = tuple(images)
    return out


def publish_texts(ds: str, warehouse_url: str, store: ArtifactStore,
                  settings: Settings) -> dict[str, Any]:
    """Merge staged shards, publish both datasets and warehouse tables (see module doc)."""
    cfg = settings.compose
    tables = {}
    for kind, (dataset, id_col) in KINDS.items():
        keys = [_shard_key(dataset, ds, s, cfg.n_shards) for s in range(cfg.n_shards)]
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

    sample = _sample(store, ds, tables["users"], cfg.sample_size)
    report_uri = store.put_text(f"reports/compose/ds={ds}/sample.md", _sample_markdown(ds, sample))
    results = {}
    for kind, (dataset, _) in KINDS.items():
        table = tables[kind]
        manifest = {
            "model_version": sorted(set(table.column("model_version").to_pylist())),
            "prompt_version": sorted(set(table.column("prompt_version").to_pylist())),
            "backend": cfg.backend, "frames_as": cfg.frames_as,
            "code_version": code_version(), "config_version": settings.fingerprint(),
            "counts": _counts(table),
        }
        if kind == "users":
            manifest["sample_report"] = report_uri
        published = CATALOG[dataset].publish(store, ds, {"texts": table}, manifest)
        results[dataset] = {"manifest": published.manifest_uri, "counts": manifest["counts"]}
        log.info("published %s: %s", published.manifest_uri, manifest["counts"])
    for dataset, _ in KINDS.values():
        for key in store.list(_staging_prefix(dataset, ds) + "/"):
            store.delete(key)
    results["sample_report"] = report_uri
    return results


def _counts(table: pa.Table) -> dict[str, Any]:
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


def _sample(store: ArtifactStore, ds: str, texts: pa.Table, size: int) -> list[dict[str, Any]]:
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


def _sample_markdown(ds: str, sample: list[dict[str, Any]]) -> str:
    """The sample for a human, from ``templates/sample.md.j2``. Author fields and texts are
    untrusted (a profile can carry HTML or a ``javascript:`` link): every value the template
    prints is escaped for Markdown by default (:func:`~mspa_tasks.report.markdown_env`),
    texts go into a code block that they cannot close."""
    return markdown_env(TEMPLATES).get_template("sample.md.j2").render(ds=ds, sample=sample)
