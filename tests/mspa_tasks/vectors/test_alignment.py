"""The encoder alignment on the tiny world, two days published by the real stages: what it
trains on (train users, the day's interactions, the day before's texts), the gate, the
registry, which encoder serves which day, and the replay's refusal of a leaky encoder."""

from __future__ import annotations

import numpy as np
import pytest

from mspa_tasks import registry as R
from mspa_tasks.datasets import ENCODER_ALIGNMENT, SESSIONS
from mspa_tasks.days import window_for
from mspa_tasks.forward_day import StaleForwardDay, publish_forward_day
from mspa_tasks.run import DayRun
from mspa_tasks.vectors.alignment import (
    CANDIDATE,
    CHAMPION,
    EncoderLeak,
    align_encoder,
    fusion_weight,
    training_pairs,
)
from mspa_tasks.vectors.encode import (
    Encoder,
    encode_day,
    preference_texts,
    resolve_encoder,
    serving_encoder,
)
from tests.mspa_tasks.align.conftest import D0, DS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def days(tmp_path_factory, published):
    """The tiny world with D0 and DS published (one copy for this module: the first test
    only reads; the second aligns, encodes and replays on top)."""
    return published((D0, DS), tmp_path_factory.mktemp("alignment"))


def _splits(store, ds) -> dict[int, str]:
    table = SESSIONS.read(store, ds, "user_split")
    return dict(zip(table.column("user_id").to_pylist(), table.column("split").to_pylist(),
                    strict=True))


def test_pairs_hold_train_users_with_texts_of_the_day_before_and_the_days_interactions_only(
        days):
    url, store, settings = days
    pairs = training_pairs(DS, D0, url, store, settings.vectors.align)
    users = pairs.table.column("user_id").to_pylist()
    assert len(pairs) > 50 and set(pairs.table.column("source").to_pylist()) == {"tip", "click"}
    splits = _splits(store, D0)
    assert {splits[u] for u in users} == {"train"}  # never a validation or test user
    day = window_for(DS, 1)
    ts = np.array(pairs.table.column("ts").to_pylist())
    assert (ts >= day.start_ms).all() and (ts < day.end_ms).all()  # day DS's interactions only
    texts_d0 = {r["user_id"]: r["text"] for r in preference_texts(store, D0)[0]}
    assert pairs.anchors == [texts_d0[u] for u in users]  # the texts written before DS
    per_user = np.unique(users, return_counts=True)[1]
    assert per_user.max() <= settings.vectors.align.max_pairs_per_user
    with pytest.raises(ValueError, match="older than the interactions"):
        training_pairs(DS, DS, url, store, settings.vectors.align)

    # skipped, with the reason, and nothing published: the first day, a disabled stage
    assert "the first day" in align_encoder(DayRun(D0, settings, store, url))["skipped"]
    off = settings.replaced(vectors={"align": {"enabled": False}})
    assert "enabled is false" in align_encoder(DayRun(DS, off, store, url))["skipped"]
    assert not ENCODER_ALIGNMENT.is_published(store, DS)


def test_an_aligned_encoder_is_gated_registered_and_serves_from_its_day_on(
        days):
    from mspa_tasks.replay.offline import replay_offline

    url, store, settings = days
    # tolerance 1: promoted whatever the figures, so that serving can be checked
    settings = settings.replaced(vectors={"align": {"epochs": 1, "batch_size": 16,
                                                    "min_pairs": 8, "tolerance": 1.0}},
                                 replay={"bootstrap": 200})
    base_version = resolve_encoder(settings.vectors)[1]
    result = align_encoder(DayRun(DS, settings, store, url))
    version = result["version"]
    assert result["promoted"] and version.startswith("all-minilm-l6-v2-aligned-20261120-")

    # on record: the pairs (train users only), the gate's figures with intervals
    manifest = ENCODER_ALIGNMENT.manifest(store, DS)
    assert manifest["model_day"] == D0 and manifest["serving"] == version
    pairs = ENCODER_ALIGNMENT.read(store, DS, "pairs")
    assert {_splits(store, D0)[u] for u in pairs.column("user_id").to_pylist()} == {"train"}
    gate = ENCODER_ALIGNMENT.read(store, DS, "gate").to_pylist()
    models = {r["model"] for r in gate}
    assert models == {CANDIDATE, CHAMPION, f"fused_{CANDIDATE}", f"fused_{CHAMPION}", "als",
                      "popularity"}
    assert {r["metric"] for r in gate} == {"uauc_click", "hr@100"}
    for r in gate:
        assert r["users"] > 0 and r["low"] <= r["value"] <= r["high"], r
    assert manifest["training"]["pairs"] == pairs.num_rows

    # the registry: the configured encoder was the first champion, the aligned one replaced it
    by_version = {m.version: m for m in R.list_models(url, R.ENCODER_REGISTRY)}
    assert by_version[base_version].status == "retired"
    assert by_version[version].status == "champion" and by_version[version].ds == DS
    assert by_version[version].reason.startswith("promoted: uauc_click")

    # serves DS and later; a backfill of an earlier day gets the encoder of that time
    assert serving_encoder(settings, store, url, DS)[1] == version
    assert serving_encoder(settings, store, url, "2026-11-21")[1] == version
    assert serving_encoder(settings, store, url, D0)[1] == base_version
    weight, note = fusion_weight(store, DS, version)
    assert 0.0 <= weight <= 1.0 and "validation users" in note
    encode_day(DayRun(DS, settings, store, url))
    from mspa_tasks.datasets import AUTHOR_VECTORS

    assert AUTHOR_VECTORS.manifest(store, DS)["encoder_version"] == version

    # the replay of DS refuses vectors of D0 encoded by the encoder that learnt from DS
    path, _ = serving_encoder(settings, store, url, DS)
    encode_day(DayRun(D0, settings, store), Encoder(settings.vectors, (path, version)))
    # the forward day built before D0 was re-encoded is stale: refused, naming the task
    with pytest.raises(StaleForwardDay, match="clear encoder.forward_day for 2026-11-20"):
        replay_offline(DayRun(DS, settings, store, url))
    publish_forward_day(DayRun(DS, settings, store, url))  # the rerun the message asks for
    with pytest.raises(EncoderLeak, match="aligned on the interactions of 2026-11-20"):
        replay_offline(DayRun(DS, settings, store, url))
