"""The Milvus refresh on a real milvus-lite file: build, gate, alias swap, retention, rollback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mspa_tasks import vector_store
from mspa_tasks.run import DayRun
from mspa_tasks.vector_store import PublishRefused, milvus_client
from mspa_tasks.vectors.build import build_collection
from mspa_tasks.vectors.gate import VectorGateError, validate_collection
from mspa_tasks.vectors.lifecycle import list_versions, publish_collection, rollback

from .conftest import publish_vectors

D1, D2, D3 = "2026-11-18", "2026-11-19", "2026-11-20"


def refresh(ds, target, store, settings) -> str:
    name = build_collection(DayRun(ds, settings, store, milvus=target)).collection
    validate_collection(DayRun(ds, settings, store, milvus=target), name)
    publish_collection(DayRun(ds, settings, milvus=target), name)
    return name


def consumer_search(target, vector, limit=5, **kw):
    """What a recommender team does: search the alias, never a versioned name."""
    with milvus_client(target) as client:
        client.load_collection("mspa_authors")  # lite starts released; a server: no-op
        return client.search("mspa_authors", data=[vector.tolist()], limit=limit,
                             output_fields=["category", "encoder_version"], **kw)[0]


def test_first_refresh_serves_the_new_collection_through_the_alias(milvus_settings, local_store):
    settings, target = milvus_settings
    vectors = publish_vectors(local_store, D1)
    name = refresh(D1, target, local_store, settings)
    hits = consumer_search(target, vectors[7])
    assert hits[0]["author_id"] == 80 and hits[0]["distance"] == pytest.approx(1.0, abs=1e-5)
    assert hits[0]["entity"]["encoder_version"] == "test-encoder-v1"
    only_gaming = consumer_search(target, vectors[7], filter='category == "gaming"')
    assert {h["entity"]["category"] for h in only_gaming} == {"gaming"}
    with milvus_client(target) as client:
        assert client.describe_alias("mspa_authors")["collection_name"] == name
        props = client.describe_collection(name)["properties"]
        assert props["mspa.status"] == "published" and props["mspa.ds"] == D1
    gate = json.loads(local_store.get_text(f"reports/vectors/ds={D1}/gate.json"))
    assert gate["passed"] and {c["name"] for c in gate["checks"]} >= {
        "row_count", "ids_match", "stored_vectors_match", "recall_at_75", "self_is_nearest"}


def test_rerun_of_a_day_replaces_its_collection_without_duplicates(milvus_settings, local_store):
    settings, target = milvus_settings
    publish_vectors(local_store, D1)
    first = refresh(D1, target, local_store, settings)
    second = refresh(D1, target, local_store, settings)
    assert first != second
    with milvus_client(target) as client:
        assert client.list_collections() == [second]
        count = client.query("mspa_authors", filter="", output_fields=["count(*)"])[0]["count(*)"]
    assert count == 300


def test_retention_keeps_the_last_versions_one_per_day(milvus_settings, local_store):
    settings, target = milvus_settings
    settings = settings.replaced(vectors={"keep_versions": 2})
    names = {}
    for i, ds in enumerate((D1, D2, D3)):
        publish_vectors(local_store, ds, seed=i)
        names[ds] = refresh(ds, target, local_store, settings)
    versions = list_versions(target, settings)
    assert [v["collection"] for v in versions] == [names[D3], names[D2]]
    assert [v["serving"] for v in versions] == [True, False]


def test_a_past_day_rerun_never_moves_the_alias_back(milvus_settings, local_store):
    settings, target = milvus_settings
    for i, ds in enumerate((D1, D2)):
        publish_vectors(local_store, ds, seed=i)
    refresh(D1, target, local_store, settings)
    newest = refresh(D2, target, local_store, settings)
    rerun = build_collection(DayRun(D1, settings, local_store, milvus=target)).collection
    validate_collection(DayRun(D1, settings, local_store, milvus=target), rerun)
    result = publish_collection(DayRun(D1, settings, milvus=target), rerun)
    assert result["moved"] is False and result["collection"] == newest
    with milvus_client(target) as client:
        assert client.describe_alias("mspa_authors")["collection_name"] == newest
        assert vector_store.collection_of_day(client, "mspa_authors", D1) == rerun  # its replay
        assert vector_store.collection_of_day(client, "mspa_authors", D2) == newest
        assert vector_store.collection_of_day(client, "mspa_authors", D3) is None


def test_failed_gate_leaves_the_alias_on_the_previous_version(milvus_settings, local_store):
    settings, target = milvus_settings
    before = publish_vectors(local_store, D1)
    good = refresh(D1, target, local_store, settings)
    publish_vectors(local_store, D2, seed=5)
    bad = build_collection(DayRun(D2, settings, local_store, milvus=target)).collection
    # The day's vectors change under the built collection (a concurrent re-encode): what
    # Milvus would serve is no longer what was encoded, and fewer authors are kept.
    publish_vectors(local_store, D2, n_authors=250, seed=6)
    with pytest.raises(VectorGateError) as caught:
        validate_collection(DayRun(D2, settings, local_store, milvus=target), bad)
    message = str(caught.value)
    assert "the alias was not moved" in message
    for check in ("row_count FAILED: value 300, bound [250, 250]",
                  "ids_match FAILED: value 50", "stored_vectors_match FAILED",
                  "self_is_nearest FAILED"):
        assert check in message
    with pytest.raises(PublishRefused, match="'failed'"):
        publish_collection(DayRun(D2, settings, milvus=target), bad)
    assert consumer_search(target, before[3])[0]["author_id"] == 40
    with milvus_client(target) as client:
        assert client.describe_alias("mspa_authors")["collection_name"] == good
        assert "row_count" in client.describe_collection(bad)["properties"]["mspa.reason"]
    gate = json.loads(local_store.get_text(f"reports/vectors/ds={D2}/gate.json"))
    assert not gate["passed"]
    # The next good run publishes, and retention drops the failed build.
    final = refresh(D2, target, local_store, settings)
    with milvus_client(target) as client:
        assert sorted(client.list_collections()) == sorted([good, final])


def test_zero_vectors_are_refused_before_anything_is_created(milvus_settings, local_store):
    settings, target = milvus_settings
    vectors = publish_vectors(local_store, D1)
    vectors[4] = 0.0
    publish_vectors(local_store, D1, vectors=vectors)
    with pytest.raises(VectorGateError, match="zero_or_invalid_vectors FAILED: value 1"):
        build_collection(DayRun(D1, settings, local_store, milvus=target))
    with milvus_client(target) as client:
        assert client.list_collections() == []


def test_unvalidated_collection_is_never_published(milvus_settings, local_store):
    settings, target = milvus_settings
    publish_vectors(local_store, D1)
    built = build_collection(DayRun(D1, settings, local_store, milvus=target)).collection
    with pytest.raises(PublishRefused, match="only ever points to a validated collection"):
        publish_collection(DayRun(D1, settings, milvus=target), built)


def test_rollback_goes_to_the_previous_version_and_says_why(milvus_settings, local_store):
    settings, target = milvus_settings
    v1 = publish_vectors(local_store, D1, seed=1)
    first = refresh(D1, target, local_store, settings)
    publish_vectors(local_store, D2, seed=2)
    second = refresh(D2, target, local_store, settings)
    result = rollback(target, settings, reason="bad texts on 11-19")
    assert (result["from"], result["to"]) == (second, first)
    assert consumer_search(target, v1[0])[0]["distance"] == pytest.approx(1.0, abs=1e-5)
    versions = {v["collection"]: v for v in list_versions(target, settings)}
    assert versions[second]["status"] == "rolled_back"
    assert versions[second]["reason"] == "bad texts on 11-19"
    with pytest.raises(PublishRefused, match="no published version"):
        rollback(target, settings)  # nothing older than `first` is left


def test_rollback_before_any_publish_is_refused(milvus_settings):
    settings, target = milvus_settings
    with pytest.raises(PublishRefused, match="does not exist yet"):
        rollback(target, settings)


def test_recall_is_tie_aware_and_exact_on_flat():
    scores = np.array([[0.5, 0.5, 0.5, 0.1], [0.9, 0.2, 0.3, 0.4]])
    assert vector_store.recall_at_k(scores, [[2, 1], [0, 3]], 2) == 1.0
    assert vector_store.recall_at_k(scores, [[3, 1], [1, 2]], 2) == pytest.approx((0.5 + 0) / 2)


ORDERS = {  # two day refreshes interleaved step by step, as an unbounded backfill runs them
    "newer_publishes_first": [("build", D3), ("build", D2), ("validate", D3), ("publish", D3),
                              ("validate", D2), ("publish", D2)],
    "older_publishes_first": [("build", D2), ("build", D3), ("validate", D2), ("publish", D2),
                              ("validate", D3), ("publish", D3)],
    "publish_between_build_and_validate": [("build", D2), ("build", D3), ("validate", D3),
                                           ("publish", D3), ("validate", D2), ("publish", D2)],
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_interleaved_refreshes_never_drop_each_others_builds(order, milvus_settings,
                                                            local_store):
    settings, target = milvus_settings
    publish_vectors(local_store, D1, seed=0)
    first = refresh(D1, target, local_store, settings)
    for i, ds in enumerate((D2, D3)):
        publish_vectors(local_store, ds, seed=i + 1)
    names, results = {}, {}
    for step, ds in ORDERS[order]:
        if step == "build":
            names[ds] = build_collection(DayRun(ds, settings, local_store, milvus=target)).collection
        elif step == "validate":
            validate_collection(DayRun(ds, settings, local_store, milvus=target), names[ds])
        else:
            results[ds] = publish_collection(DayRun(ds, settings, milvus=target), names[ds])
    with milvus_client(target) as client:
        assert vector_store.serving_collection(client, "mspa_authors") == names[D3]  # newest day
        left = set(client.list_collections())
        # the replay of each day still finds that day's validated collection
        assert vector_store.collection_of_day(client, "mspa_authors", D2) == names[D2]
        assert vector_store.collection_of_day(client, "mspa_authors", D3) == names[D3]
    assert {first, names[D2], names[D3]} <= left
    assert results[D3]["moved"] and results[D3]["collection"] == names[D3]


def test_retention_drops_an_abandoned_build_after_the_grace_period(milvus_settings,
                                                                   local_store):
    """A build whose run died (never validated) is kept while another run might still need
    it, and dropped by the first publish after ``inflight_grace_hours``."""
    settings, target = milvus_settings
    for i, ds in enumerate((D1, D2)):
        publish_vectors(local_store, ds, seed=i)
    abandoned = build_collection(DayRun(D1, settings, local_store, milvus=target)).collection
    kept = refresh(D2, target, local_store, settings)
    with milvus_client(target) as client:
        assert abandoned in client.list_collections()  # younger than 24 h: still protected
    short = settings.replaced(vectors={"inflight_grace_hours": 1e-7})  # 0.36 ms
    again = refresh(D2, target, local_store, short)
    with milvus_client(target) as client:
        assert abandoned not in client.list_collections()
        assert {again} <= set(client.list_collections()) and kept not in client.list_collections()


def test_validating_a_dropped_collection_says_so(milvus_settings, local_store):
    settings, target = milvus_settings
    publish_vectors(local_store, D1)
    name = build_collection(DayRun(D1, settings, local_store, milvus=target)).collection
    with milvus_client(target) as client:
        client.drop_collection(name)
    with pytest.raises(PublishRefused, match=f"collection {name} does not exist"):
        validate_collection(DayRun(D1, settings, local_store, milvus=target), name)
    with pytest.raises(PublishRefused, match="does not exist"):
        publish_collection(DayRun(D1, settings, milvus=target), name)


def test_publishing_under_another_day_is_refused_and_a_move_back_is_a_recorded_rollback(
        milvus_settings, local_store):
    """`vectors publish --ds 2026-12-31` with 11-19's collection would otherwise move the
    alias back from 11-20 with no rollback recorded."""
    settings, target = milvus_settings
    for i, ds in enumerate((D1, D2)):
        publish_vectors(local_store, ds, seed=i)
    older = refresh(D1, target, local_store, settings)
    newest = refresh(D2, target, local_store, settings)
    with pytest.raises(PublishRefused, match=f"holds the vectors of ds={D1}, not "
                                             "ds=2026-12-31"):
        publish_collection(DayRun("2026-12-31", settings, milvus=target), older)
    with milvus_client(target) as client:
        assert client.describe_alias("mspa_authors")["collection_name"] == newest
    result = rollback(target, settings, to=older, reason="11-20 texts were bad")
    assert (result["from"], result["to"]) == (newest, older)
    versions = {v["collection"]: v for v in list_versions(target, settings)}
    assert versions[newest]["status"] == "rolled_back"
