"""Published vector partitions of known content, so the Milvus tests need no model.

The vectors have planted structure (clusters), like author vectors of one category; the
encoder itself runs for real in ``test_encode.py`` and in the DAG's end-to-end test."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mspa_tasks.datasets import AUTHOR_VECTORS, USER_VECTORS
from mspa_tasks.publish import publish_partition
from mspa_tasks.vectors.encode import (
    _vector_column,
    text_hash,
    vector_schema,
)

ENCODER = "test-encoder-v1"


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(8, dim))
    x = centers[rng.integers(0, 8, n)] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def publish_vectors(store, ds: str, n_authors: int = 300, n_users: int = 60, dim: int = 32,
                    seed: int = 0, vectors: np.ndarray | None = None) -> np.ndarray:
    """Publish ``author_vectors`` and ``user_vectors`` for ``ds``; returns the author vectors."""
    authors = unit_rows(n_authors, dim, seed) if vectors is None else vectors
    users = unit_rows(n_users, dim, seed + 1000)
    ids = np.arange(1, len(authors) + 1, dtype=np.int64) * 10
    a = pa.Table.from_arrays(
        [pa.array(ids), _vector_column(authors),
         pa.array([text_hash(f"{ds}:{i}") for i in ids]), pa.array(["feature_text"] * len(ids)),
         pa.array(["composer|prompt"] * len(ids)), pa.array([False] * len(ids)),
         pa.array([["singing", "gaming", "outdoor"][i % 3] for i in range(len(ids))]),
         pa.array(["Chengdu"] * len(ids))],
        schema=vector_schema("author_id", dim, with_fields=True))
    u = pa.Table.from_arrays(
        [pa.array(np.arange(len(users), dtype=np.int64)), _vector_column(users),
         pa.array([text_hash(str(i)) for i in range(len(users))]),
         pa.array(["preference_text"] * len(users)), pa.array(["c|p"] * len(users)),
         pa.array([False] * len(users))],
        schema=vector_schema("user_id", dim, with_fields=False))
    manifest = {"encoder_version": ENCODER, "dim": dim}
    publish_partition(store, AUTHOR_VECTORS.name, ds, {"vectors": a}, manifest)
    publish_partition(store, USER_VECTORS.name, ds, {"vectors": u}, manifest)
    return authors


@pytest.fixture
def milvus_settings(settings, tmp_path):
    """Local settings with the milvus-lite file in this test's folder."""

    from mspa_tasks.vector_store import MilvusTarget

    settings = settings.replaced(vectors={"milvus_uri": str(tmp_path / "milvus.db"),
                                          "spot_checks": 10, "recall_sample": 20})
    return settings, MilvusTarget(str(tmp_path / "milvus.db"))


@pytest.fixture
def local_store(tmp_path):
    from mspa_tasks.artifacts import open_store

    return open_store(f"file://{tmp_path / 'artifacts'}")
