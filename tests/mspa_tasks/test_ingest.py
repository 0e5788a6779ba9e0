from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from mspa_tasks import days, ingest
from mspa_tasks.publish import read_manifest, read_table
from mspa_tasks.quality import DataQualityError
from mspa_tasks.run import DayRun
from mspa_tasks.world.generate import PRESETS, generate_world
from tests.conftest import scalar

from .reference import reference_ingest

DS = "2026-11-20"


@pytest.fixture
def world(warehouse_url, store):
    summary = generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=DS), warehouse_url, store)
    return summary


def test_every_dirty_row_is_quarantined_with_its_reason(world, warehouse_url, store, settings):
    published = ingest.run_ingest(DayRun(DS, settings, store, warehouse_url))
    counts = published.manifest["counts"]
    assert counts["events"]["quarantined"] == world.expected_quarantine["tip_events"]
    assert counts["authors"]["dropped"] == world.expected_quarantine["authors"]
    for table, source in (("quarantine_tip_events", "tip_events"), ("quarantine_authors", "authors")):
        for reason, n in world.expected_quarantine[source].items():
            assert scalar(warehouse_url, f"SELECT COUNT(*) FROM {table} "
                          "WHERE ds = :ds AND reason = :r", ds=DS, r=reason) == n


def test_no_clean_row_is_lost_against_an_independent_implementation(
        world, warehouse_url, store, settings):
    published = ingest.run_ingest(DayRun(DS, settings, store, warehouse_url))
    ref = reference_ingest(warehouse_url, DS, settings.ingest)
    sessions = read_table(store, "sessions", DS, "sessions")
    assert set(sessions.column("event_id").to_pylist()) == ref["kept_event_ids"]
    assert sessions.num_rows == len(ref["kept_event_ids"])  # and no duplicates
    assert set(read_table(store, "sessions", DS, "user_split").column("user_id").to_pylist()) \
        == ref["kept_users"]
    assert set(read_table(store, "sessions", DS, "authors").column("author_id").to_pylist()) \
        == ref["kept_authors"]
    assert ref["quarantined_tips"] == world.expected_quarantine["tip_events"]
    ev = published.manifest["counts"]["events"]
    assert ev["candidates"] == ref["candidates"]
    assert ev["candidates"] == (sum(ev["quarantined"].values()) + sum(ev["filtered"].values())
                                + ev["kept"])


def test_sessions_are_ordered_and_end_with_the_ground_truth(world, warehouse_url, store, settings):
    ingest.run_ingest(DayRun(DS, settings, store, warehouse_url))
    rows = read_table(store, "sessions", DS, "sessions").to_pylist()
    by_user: dict[int, list[dict]] = {}
    for r in rows:
        by_user.setdefault(r["user_id"], []).append(r)
    for events in by_user.values():
        assert [e["seq"] for e in events] == list(range(len(events)))
        assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
        assert [e["is_ground_truth"] for e in events] == [False] * (len(events) - 1) + [True]
        assert len({e["author_id"] for e in events}) >= 3


def test_rerun_is_byte_identical_and_never_duplicates(world, warehouse_url, store, settings):
    first = ingest.run_ingest(DayRun(DS, settings, store, warehouse_url))
    tables = ("quarantine_tip_events", "quarantine_authors", "dropped_users", "dq_results")
    before = {t: scalar(warehouse_url, f"SELECT COUNT(*) FROM {t}") for t in tables}
    manifest_bytes = store.get_bytes(f"sessions/ds={DS}/manifest.json")
    second = ingest.run_ingest(DayRun(DS, settings, store, warehouse_url))
    assert store.get_bytes(f"sessions/ds={DS}/manifest.json") == manifest_bytes
    assert {k: v["sha256"] for k, v in second.manifest["files"].items()} == \
        {k: v["sha256"] for k, v in first.manifest["files"].items()}
    assert {t: scalar(warehouse_url, f"SELECT COUNT(*) FROM {t}") for t in tables} == before
    assert len(store.list(f"sessions/ds={DS}/")) == 5  # four tables + manifest


def test_split_is_7_2_1_and_stable_across_days(world, warehouse_url, store, settings):
    ingest.run_ingest(DayRun(DS, settings, store, warehouse_url))
    ingest.run_ingest(DayRun("2026-11-19", settings, store, warehouse_url))
    today = {r["user_id"]: r["split"] for r in
             read_table(store, "sessions", DS, "user_split").to_pylist()}
    yesterday = {r["user_id"]: r["split"] for r in
                 read_table(store, "sessions", "2026-11-19", "user_split").to_pylist()}
    common = today.keys() & yesterday.keys()
    assert common and all(today[u] == yesterday[u] for u in common)
    # The hash split over many ids is close to 7:2:1.
    splits = [ingest.split_of(u, "mspa-split-v1") for u in range(20_000)]
    shares = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert abs(shares["train"] - 0.7) < 0.015 and abs(shares["val"] - 0.2) < 0.015


def test_quality_gate_stops_before_publishing_and_says_why(world, warehouse_url, store, settings):
    good = ingest.run_ingest(DayRun(DS, settings, store, warehouse_url))
    day_start = days.window_for(DS, 1).start_ms
    engine = sa.create_engine(warehouse_url)
    with engine.begin() as conn:  # the day's feed stops two-thirds of the way through
        conn.execute(sa.text("DELETE FROM tip_events WHERE ts >= :t"),
                     {"t": day_start + 16 * 3_600_000})
    engine.dispose()
    ingest.extract_window(DayRun(DS, settings, store, warehouse_url))
    with pytest.raises(DataQualityError) as info:
        ingest.quality_gate(DayRun(DS, settings, store, warehouse_url))
    message = str(info.value)
    assert "freshness_hours FAILED" in message and "bound <= 6" in message
    assert read_manifest(store, "sessions", DS) == good.manifest  # previous good state serves
    with pytest.raises(ingest.NotStaged, match="quality gate has not passed"):
        ingest.publish_sessions(DayRun(DS, settings, store, warehouse_url))
    assert read_manifest(store, "sessions", DS) == good.manifest
    assert scalar(warehouse_url, "SELECT COUNT(*) FROM dq_results WHERE ds = :ds AND passed = 0",
                  ds=DS) >= 1


def test_window_days_param_changes_the_window(world, warehouse_url, store, settings):
    narrow = settings.with_ingest(window_days=7, min_tip_days=2)
    published = ingest.run_ingest(DayRun(DS, narrow, store, warehouse_url))
    ref = reference_ingest(warehouse_url, DS, narrow.ingest)
    assert published.manifest["window"]["days"] == 7
    assert published.manifest["counts"]["events"]["kept"] == len(ref["kept_event_ids"])
    assert published.manifest["params"]["window_days"] == 7


@pytest.mark.parametrize("bad", ["2026-13-01", "20261120", "2026-11-20T00:00", "", None])
def test_bad_ds_is_refused_with_a_clear_error(bad):
    with pytest.raises(days.InvalidPartition, match="YYYY-MM-DD"):
        days.window_for(bad, 30)
