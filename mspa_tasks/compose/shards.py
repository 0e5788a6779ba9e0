"""One composer shard of a day (the DAG's ``compose.plan_shards`` and ``compose.compose_shard``).

:func:`plan_shards` lists the shards (user shards and author shards) from config alone;
:func:`compose_shard` reads the published ``sessions`` partition and the author content
known before the window's end, renders fenced inputs, reuses every text whose cache key
(model version, prompt version, hash of the exact input) matches a text (``ok`` or
``failed``) in the latest published partition at or before ``ds``, generates the rest
(the model is the champion of ``model_registry`` once a retrained one is promoted) and
stages the shard under ``_staging/<dataset>/ds=<ds>/``.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.compose.batch_io import results_backend
from mspa_tasks.compose.generate import Composed, compose_texts
from mspa_tasks.config import ComposeConfig
from mspa_tasks.datasets import CATALOG, SESSIONS, text_schema
from mspa_tasks.llm.content import load_author_content
from mspa_tasks.llm.engine import backend_for, model_version
from mspa_tasks.llm.prompting import (
    AuthorContent,
    PromptSpec,
    RenderedInput,
    load_prompt,
    render_author,
    render_user,
)
from mspa_tasks.llm.requests import Backend
from mspa_tasks.publish import parquet_bytes, partition_prefix, require_rows
from mspa_tasks.run import DayRun
from mspa_tasks.sampling import stable_int

log = logging.getLogger(__name__)

PREFERENCE = "preference_texts"
AUTHOR = "author_texts"
KINDS = {"users": (PREFERENCE, "user_id"), "authors": (AUTHOR, "author_id")}
READER = "compose.compose_shard"
MAX_USER_IMAGES, MAX_AUTHOR_IMAGES = 4, 2


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


def plan_day(run: DayRun) -> list[dict[str, Any]]:
    """The shards of the run's day (:func:`plan_shards` of its ``[compose]`` settings)."""
    return plan_shards(run.settings.compose)


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


def staging_prefix(dataset: str, ds: str) -> str:
    return f"_staging/{partition_prefix(dataset, ds)}"


def shard_key(dataset: str, ds: str, shard: int, of: int) -> str:
    return f"{staging_prefix(dataset, ds)}/shard-{shard:03d}-of-{of:03d}.parquet"


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


@dataclass
class ShardInputs:
    """What a shard composes: its rendered inputs, the cache, and those the cache misses."""

    compose: ComposeConfig      # with the serving model (the champion) resolved
    spec: PromptSpec
    version: str                # model version (part of every cache key)
    inputs: list[RenderedInput]
    cache: dict[str, dict[str, Any]]
    misses: list[RenderedInput]
    frames: dict[int, list[str]]


def shard_inputs(run: DayRun, kind: str, shard: int, of: int) -> ShardInputs:
    """Render one shard's inputs and split them into cache hits and misses."""
    ds, warehouse_url, store, settings = run.ds, run.url, run.artifacts, run.settings
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: use 'users' or 'authors'")
    if not 0 <= shard < of:
        raise ValueError(f"shard={shard} is outside 0..{of - 1}")
    cfg = run.serving.compose
    dataset, _ = KINDS[kind]
    spec = load_prompt(cfg.preference_prompt if kind == "users" else cfg.author_prompt)
    version = model_version(cfg, settings)
    window = run.window

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
    return ShardInputs(cfg, spec, version, inputs, cache, misses, frames)


def compose_shard(run: DayRun,
                  kind: str, shard: int, of: int, backend: Backend | None = None) -> dict[str, Any]:
    """Compose one shard (see module doc); returns its counts. With ``[compose] generation
    = "batch"`` the answers come from the day's batch results (:mod:`.batch`)."""
    ds, store, settings = run.ds, run.artifacts, run.settings
    started = time.perf_counter()
    planned = shard_inputs(run, kind, shard, of)
    cfg, spec, version = planned.compose, planned.spec, planned.version
    inputs, cache, misses, frames = planned.inputs, planned.cache, planned.misses, planned.frames
    dataset, id_col = KINDS[kind]
    composed: dict[int, Composed] = {}
    if misses:
        if backend is None and cfg.generation == "batch":

            backend = results_backend(ds, kind, store, version)
        if backend is None:
            backend = backend_for(cfg, settings, version)
        images = frame_images(store, misses, frames, kind) if cfg.frames_as == "images" else None
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
    store.put_bytes(shard_key(dataset, ds, shard, of), parquet_bytes(table))
    summary = {"kind": kind, "shard": shard, "of": of, "rows": len(rows),
               "reused": len(inputs) - len(misses), "generated": len(misses),
               "failed": sum(1 for r in rows if r["status"] == "failed"),
               "seconds": round(time.perf_counter() - started, 1)}
    log.info("%s shard %d/%d done: %s", kind, shard + 1, of, summary)
    return summary


def frame_images(store: ArtifactStore, inputs: list[RenderedInput], frames: dict[int, list[str]],
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
