"""Encoding with the packaged all-MiniLM-L6-v2 (a real model, offline) into vector partitions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mspa_tasks.datasets import (
    AUTHOR_TEXTS,
    AUTHOR_VECTORS,
    PREFERENCE_TEXTS,
    USER_VECTORS,
    InputsMissing,
    read_vectors,
)
from mspa_tasks.publish import publish_partition, read_manifest
from mspa_tasks.run import DayRun
from mspa_tasks.vectors.encode import Encoder, encode_day

DS, NEXT = "2026-11-20", "2026-11-21"
AUTHORS = [(1, "Mia", "Chengdu", "singing"), (2, "Kai", "Shanghai", "gaming"),
           (3, "Lu", "Harbin", "outdoor"), (4, "Bo", "Xi'an", "cooking")]
FEATURES = {1: "Author type: singing ballads\nScene: bedroom studio\nStyle: calm, cozy",
            2: "Author type: competitive shooter gaming\nScene: gaming desk with RGB lights",
            3: "Author type: outdoor hiking\nScene: snowy mountain trail at dawn"}


@pytest.fixture(scope="module")
def encoder():
    from mspa_tasks.config import VectorsConfig

    return Encoder(VectorsConfig())


def publish_inputs(store, ds, features=FEATURES, users=None):
    users = users or {7: ("Favoured author types: singing, ballads", "ok"),
                      8: ("Favoured author types: gaming, shooters", "ok"),
                      9: ("", "failed")}
    authors = pa.table({"author_id": [a[0] for a in AUTHORS], "nickname": [a[1] for a in AUTHORS],
                        "location": [a[2] for a in AUTHORS], "category": [a[3] for a in AUTHORS]})
    publish_partition(store, "sessions", ds, {"authors": authors}, {})
    author_texts = AUTHOR_TEXTS.build("texts", {
        "author_id": [a[0] for a in AUTHORS],
        "text": [features.get(a[0], "") for a in AUTHORS],
        "status": ["ok" if a[0] in features else "failed" for a in AUTHORS],
        "model_version": ["smollm2"] * 4, "prompt_version": ["author_v1+abc"] * 4})
    publish_partition(store, "author_texts", ds, {"texts": author_texts}, {})
    pref = PREFERENCE_TEXTS.build("texts", {
        "user_id": list(users), "text": [t for t, _ in users.values()],
        "status": [s for _, s in users.values()], "model_version": ["smollm2"] * len(users),
        "prompt_version": ["preference_v1+def"] * len(users)})
    publish_partition(store, "preference_texts", ds, {"texts": pref}, {})


def test_every_kept_author_gets_one_unit_vector(store, settings, encoder):
    publish_inputs(store, DS)
    result = encode_day(DayRun(DS, settings, store), encoder=encoder)
    assert result.counts["authors"] == {"total": 4, "feature_text": 3, "profile_fallback": 1,
                                        "reused": 0, "encoded": 4}
    assert result.counts["users"] == {"total": 2, "reused": 0, "encoded": 2,
                                      "skipped_failed_text": 1}
    authors, vectors = read_vectors(store, AUTHOR_VECTORS, DS)
    assert authors.column("author_id").to_pylist() == [1, 2, 3, 4]
    assert authors.column("text_source").to_pylist() == ["feature_text"] * 3 + ["profile"]
    assert authors.column("composer_version").to_pylist()[:1] == ["smollm2|author_v1+abc"]
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    users, u = read_vectors(store, USER_VECTORS, DS)
    assert users.column("user_id").to_pylist() == [7, 8]
    # The real encoder puts the singing fan nearest the singer, the gamer nearest the gamer.
    assert int(np.argmax(u[0] @ vectors.T)) == 0 and int(np.argmax(u[1] @ vectors.T)) == 1
    assert read_manifest(store, AUTHOR_VECTORS.name, DS)["encoder_version"].startswith(
        "all-minilm-l6-v2-")


def test_unchanged_texts_reuse_their_vectors(store, settings, encoder):
    publish_inputs(store, DS)
    encode_day(DayRun(DS, settings, store), encoder=encoder)
    _, before = read_vectors(store, AUTHOR_VECTORS, DS)
    rerun = encode_day(DayRun(DS, settings, store), encoder=encoder)
    assert rerun.counts["authors"]["reused"] == 4 and rerun.counts["users"]["reused"] == 2
    changed = {**FEATURES, 2: "Author type: chess commentary\nScene: quiet study"}
    publish_inputs(store, NEXT, features=changed)
    nxt = encode_day(DayRun(NEXT, settings, store), encoder=encoder)
    assert (nxt.counts["authors"]["encoded"], nxt.counts["authors"]["reused"]) == (1, 3)
    _, after = read_vectors(store, AUTHOR_VECTORS, NEXT)
    np.testing.assert_array_equal(after[[0, 2, 3]], before[[0, 2, 3]])
    assert float(after[1] @ before[1]) < 0.9


def test_a_new_encoder_version_reencodes_everything(store, settings, encoder):
    publish_inputs(store, DS)
    encode_day(DayRun(DS, settings, store), encoder=encoder)
    encoder.version, original = "another-encoder", encoder.version  # same weights, new name
    try:
        result = encode_day(DayRun(DS, settings, store), encoder=encoder)
    finally:
        encoder.version = original
    assert result.counts["authors"]["reused"] == 0


def test_missing_inputs_name_the_step_to_rerun(store, settings, encoder):
    with pytest.raises(InputsMissing, match="sessions/ds=2026-11-20 is not published; run the "
                                            "ingest group"):
        encode_day(DayRun(DS, settings, store), encoder=encoder)
