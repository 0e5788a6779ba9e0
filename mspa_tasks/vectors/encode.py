"""Encode the day's texts into unit vectors: ``author_vectors`` and ``user_vectors`` per ``ds``.

Inputs are the published partitions of ``ds``: ``author_texts`` and ``preference_texts``
(the composer) and ``sessions`` (the kept author set with its scalar fields).

* **Authors**: every kept author gets exactly one vector, so that every kept author can be
  recommended. Its text is the composer's feature text when that text is ``ok``; when the
  composer stored it as ``failed``, the author's own profile (category, nickname, location)
  is encoded instead and the row says so (``text_source = "profile"``, counted in the
  manifest) — a visible, degraded vector rather than a missing author.
* **Users**: one vector per ``ok`` preference text; users whose text failed get none and are
  counted (the replay cannot score them and says so).

A vector is reused from the latest published partition at or before ``ds`` when the encoder
version and the hash of the exact text match (a rerun encodes nothing; a normal day encodes
only changed texts).

Columns: ``author_id``/``user_id``, ``vector`` (float32, L2-normalised), ``text_hash``,
``text_source``, ``composer_version`` (model + prompt that wrote the text, empty for profile
texts), ``reused``; authors also carry ``category`` and ``location`` (Milvus filter fields).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.config import Settings, VectorsConfig
from mspa_tasks.datasets import (
    AUTHOR_TEXTS,
    AUTHOR_VECTORS,
    PREFERENCE_TEXTS,
    SESSIONS,
    USER_VECTORS,
    Dataset,
    read_vectors,
    vector_schema,
)
from mspa_tasks.days import code_version
from mspa_tasks.model_store import download_folder
from mspa_tasks.models import packaged_model
from mspa_tasks.progress import Progress
from mspa_tasks.publish import EmptyInput, require_rows
from mspa_tasks.registry import ENCODER_REGISTRY, list_models
from mspa_tasks.run import DayRun
from mspa_tasks.text import profile_text

log = logging.getLogger(__name__)

PACKAGED_ENCODER = "packaged:all-minilm-l6-v2"
READER = "vectors.encode"


def text_hash(text: str) -> str:
    """Hash of the exact text encoded (the vector cache key, with the encoder version)."""
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_encoder(cfg: VectorsConfig) -> tuple[str, str]:
    """``(path or hub id, encoder version)``. The packaged MiniLM is versioned by the hash of
    its weights, a folder by its name and weights, a hub id by itself."""

    path = packaged_model(cfg.encoder, Path(), "encoder")
    if path is not None:
        return str(path), f"all-minilm-l6-v2-{_weights_digest(path)}"
    if Path(cfg.encoder).is_dir():
        return cfg.encoder, f"{Path(cfg.encoder).name}-{_weights_digest(Path(cfg.encoder))}"
    return cfg.encoder, cfg.encoder  # a hub id (production; never fetched in tests)


def _weights_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(p.name for p in folder.glob("*.safetensors")) or ["config.json"]:
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:12]


def serving_encoder(settings: Settings, store: ArtifactStore | None = None,
                    warehouse_url: str | None = None, ds: str | None = None
                    ) -> tuple[str, str]:
    """``(local path or hub id, version)`` of the encoder that encodes day ``ds``: the
    champion of ``encoder_registry`` (an aligned encoder, copied from the artifact store
    once) when ``vectors.encoder_from_registry`` and the registry has one, else
    ``vectors.encoder``. For a past day (a backfill) the champion must have been aligned on
    interactions up to ``ds``: otherwise the newest once-promoted encoder that was, or
    ``vectors.encoder`` (day ``ds``'s vectors serve, and are replayed on, ``ds + 1``: an
    encoder that saw ``ds + 1`` would leak it)."""
    cfg = settings.vectors
    if cfg.encoder_from_registry and warehouse_url and store is not None:

        models = list_models(warehouse_url, ENCODER_REGISTRY)
        usable = [m for m in models if m.model_ref.startswith("artifact:") and m.ds
                  and (ds is None or m.ds <= ds) and m.status in ("champion", "retired")]
        usable.sort(key=lambda m: (m.status == "champion", m.ds), reverse=True)
        if any(m.status == "champion" and not m.model_ref.startswith("artifact:")
               for m in models):
            usable = []  # the configured encoder is the champion (initial, or rolled back)
        if usable:
            pick = usable[0]
            key = pick.model_ref.removeprefix("artifact:")
            path = download_folder(store, key, settings.models_dir / f"encoder-{pick.version}")
            log.info("serving encoder: %s (%s, aligned on %s)", pick.version,
                     "the encoder registry's champion" if pick.status == "champion"
                     else f"the newest once-promoted encoder aligned by {ds}", pick.ds)
            return str(path), pick.version
    return resolve_encoder(cfg)


class Encoder:
    """A sentence-transformers model that returns float32, L2-normalised rows."""

    def __init__(self, cfg: VectorsConfig, model: tuple[str, str] | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        path, self.version = model or resolve_encoder(cfg)
        self.batch_size = cfg.encode_batch_size
        self.model = SentenceTransformer(path)
        self.dim = int(self.model.get_embedding_dimension()
                       if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str], label: str = "texts") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        progress = Progress(f"encode {label}", len(texts), log, unit="texts")
        chunk = self.batch_size * 8
        for start in range(0, len(texts), chunk):
            part = texts[start:start + chunk]
            out[start:start + len(part)] = self.model.encode(
                part, batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False)
            progress.update(len(part))
        return out


@dataclass(frozen=True)
class EncodeResult:
    authors_manifest: str
    users_manifest: str
    counts: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {"authors": self.authors_manifest, "users": self.users_manifest,
                "counts": self.counts}


def _previous_vectors(store: ArtifactStore, dataset: Dataset, ds: str,
                      encoder_version: str) -> dict[str, np.ndarray]:
    """text_hash -> vector from the latest published partition at or before ``ds``."""
    day = dataset.latest(store, ds)
    if day is None or dataset.manifest(store, day).get("encoder_version") \
            != encoder_version:
        return {}
    table, vectors = read_vectors(store, dataset, day)
    return dict(zip(table.column("text_hash").to_pylist(), vectors, strict=True))


def _vectors_for(texts: list[str], cache: dict[str, np.ndarray], encoder: Encoder,
                 label: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    hashes = [text_hash(t) for t in texts]
    reused = np.array([h in cache for h in hashes], dtype=bool)
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    todo = [i for i, hit in enumerate(reused) if not hit]
    log.info("%s: %d texts, %d reused, %d to encode", label, len(texts), int(reused.sum()),
             len(todo))
    if todo:
        out[todo] = encoder.encode([texts[i] for i in todo], label)
    for i in np.flatnonzero(reused):
        out[i] = cache[hashes[i]]
    return out, hashes, reused


def _vector_column(vectors: np.ndarray) -> pa.Array:
    dim = vectors.shape[1]
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), dim)


@dataclass(frozen=True)
class AuthorTexts:
    """What every kept author of a day is encoded from, in ``author_id`` order."""

    rows: list[dict[str, Any]]   # sessions/authors rows
    texts: list[str]
    sources: list[str]           # feature_text | profile
    composers: list[str]         # model|prompt of the feature text, "" for a profile

    @property
    def author_ids(self) -> list[int]:
        return [r["author_id"] for r in self.rows]


def author_texts(store: ArtifactStore, ds: str, reader: str = READER) -> AuthorTexts:
    """Every kept author of ``ds`` with its feature text, or its profile when that failed."""
    authors = require_rows(SESSIONS.read(store, ds, "authors", reader), "sessions/authors", ds,
                           "encode")
    composed_by_id = {r["author_id"]: r for r in
                      AUTHOR_TEXTS.read(store, ds, "texts", reader).to_pylist()}
    rows = authors.sort_by("author_id").to_pylist()
    texts, sources, composers = [], [], []
    for row in rows:
        composed = composed_by_id.get(row["author_id"])
        if composed and composed["status"] == "ok":
            texts.append(composed["text"])
            sources.append("feature_text")
            composers.append(f"{composed['model_version']}|{composed['prompt_version']}")
        else:
            texts.append(profile_text(row))
            sources.append("profile")
            composers.append("")
    return AuthorTexts(rows, texts, sources, composers)


def preference_texts(store: ArtifactStore, ds: str, reader: str = READER
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(ok rows in user_id order, every row)`` of ``ds``'s preference texts."""
    every = PREFERENCE_TEXTS.read(store, ds, "texts", reader).to_pylist()
    return sorted((r for r in every if r["status"] == "ok"), key=lambda r: r["user_id"]), every


def encode_day(run: DayRun, encoder: Encoder | None = None) -> EncodeResult:
    """Encode ``ds``'s author and preference texts and publish both vector datasets, with
    the serving encoder (:func:`serving_encoder`: the encoder registry's champion when
    ``warehouse_url`` is given and one is promoted, else ``vectors.encoder``)."""
    ds, store, settings, warehouse_url = run.ds, run.artifacts, run.settings, run.warehouse_url
    authored = author_texts(store, ds)
    ok_users, user_texts = preference_texts(store, ds)
    encoder = encoder or Encoder(settings.vectors,
                                 serving_encoder(settings, store, warehouse_url, ds))
    rows, texts, sources, composers = (authored.rows, authored.texts, authored.sources,
                                       authored.composers)
    cache = _previous_vectors(store, AUTHOR_VECTORS, ds, encoder.version)
    vectors, hashes, reused = _vectors_for(texts, cache, encoder, "author texts")
    author_table = pa.Table.from_arrays(
        [pa.array([r["author_id"] for r in rows], pa.int64()), _vector_column(vectors),
         pa.array(hashes), pa.array(sources), pa.array(composers), pa.array(reused),
         pa.array([r.get("category") for r in rows], pa.string()),
         pa.array([r.get("location") for r in rows], pa.string())],
        schema=vector_schema("author_id", encoder.dim, with_fields=True))

    if not ok_users:
        raise EmptyInput(f"preference_texts of ds={ds} has no ok text ({len(user_texts)} rows, "
                         "all failed or none): encode refuses to publish vectors without users; "
                         "see the compose manifest's failed_sections_by_check")
    cache = _previous_vectors(store, USER_VECTORS, ds, encoder.version)
    u_vectors, u_hashes, u_reused = _vectors_for([r["text"] for r in ok_users], cache,
                                                 encoder, "preference texts")
    user_table = pa.Table.from_arrays(
        [pa.array([r["user_id"] for r in ok_users], pa.int64()),
         _vector_column(u_vectors), pa.array(u_hashes, pa.string()),
         pa.array(["preference_text"] * len(ok_users), pa.string()),
         pa.array([f"{r['model_version']}|{r['prompt_version']}" for r in ok_users], pa.string()),
         pa.array(u_reused, pa.bool_())],
        schema=vector_schema("user_id", encoder.dim, with_fields=False))

    common = {"encoder_version": encoder.version, "dim": encoder.dim,
              "code_version": code_version(), "config_version": settings.fingerprint()}
    a_counts = {"total": author_table.num_rows,
                "feature_text": sources.count("feature_text"),
                "profile_fallback": sources.count("profile"),
                "reused": int(reused.sum()), "encoded": int((~reused).sum())}
    u_counts = {"total": user_table.num_rows, "reused": int(u_reused.sum()),
                "encoded": int((~u_reused).sum()),
                "skipped_failed_text": len(user_texts) - len(ok_users)}
    a_pub = AUTHOR_VECTORS.publish(store, ds, {"vectors": author_table},
                                            {**common, "counts": a_counts})
    u_pub = USER_VECTORS.publish(store, ds, {"vectors": user_table},
                                          {**common, "counts": u_counts})
    if a_counts["profile_fallback"]:
        log.warning("%d authors have no ok feature text; their profile was encoded instead",
                    a_counts["profile_fallback"])
    log.info("published %s %s and %s %s", a_pub.manifest_uri, a_counts, u_pub.manifest_uri,
             u_counts)
    return EncodeResult(a_pub.manifest_uri, u_pub.manifest_uri,
                        {"authors": a_counts, "users": u_counts})
