"""Composer runs on a real demo world (SQLite or PostgreSQL, file or S3), with the
deterministic backend from conftest for the bookkeeping: shards, cache, counts, failures."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from mspa_tasks import compose as run
from mspa_tasks import days, ingest
from mspa_tasks.llm.validate import has_structure
from mspa_tasks.publish import read_manifest, read_table
from mspa_tasks.run import DayRun
from mspa_tasks.world.generate import PRESETS, generate_world
from tests.conftest import scalar

from .conftest import WordsFromDataBackend

DS = "2026-11-20"
PREF_SECTIONS = ["Favoured author types", "Environment and scene", "Atmosphere and style",
                 "Regional bias"]


@pytest.fixture
def world(warehouse_url, store, settings):
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=DS), warehouse_url, store)
    ingest.run_ingest(DayRun(DS, settings, store, warehouse_url))
    return settings.with_compose(n_shards=2)


def compose_day(ds, url, store, settings, backend) -> dict:
    for shard in run.plan_shards(settings.compose):
        run.compose_shard(DayRun(ds, settings, store, url),
                          shard["kind"], shard["shard"], shard["of"], backend=backend)
    return run.publish_texts(DayRun(ds, settings, store, url))


def test_every_kept_user_and_author_gets_a_structured_text(world, warehouse_url, store,
                                                           words_backend):
    result = compose_day(DS, warehouse_url, store, world, words_backend)
    users = read_table(store, "sessions", DS, "user_split").num_rows
    authors = read_table(store, "sessions", DS, "authors").num_rows
    prefs = read_table(store, "preference_texts", DS, "texts")
    assert prefs.num_rows == users and result["preference_texts"]["counts"]["ok"] == users
    assert read_table(store, "author_texts", DS, "texts").num_rows == authors
    assert all(has_structure(t, PREF_SECTIONS) for t in prefs.column("text").to_pylist())
    assert scalar(warehouse_url, "SELECT COUNT(*) FROM preference_texts WHERE ds = :ds",
                  ds=DS) == users
    assert scalar(warehouse_url, "SELECT COUNT(*) FROM author_texts WHERE ds = :ds",
                  ds=DS) == authors
    assert store.list(f"_staging/preference_texts/ds={DS}/") == []   # shards cleaned up
    sample = store.get_text(f"reports/compose/ds={DS}/sample.md")
    assert sample.count("## user ") == 20 and "Tipped: " in sample


def test_rerun_regenerates_nothing_and_replaces_the_day(world, warehouse_url, store,
                                                        words_backend):
    compose_day(DS, warehouse_url, store, world, words_backend)
    first = read_manifest(store, "preference_texts", DS)
    calls_before = len(words_backend.calls)
    result = compose_day(DS, warehouse_url, store, world, words_backend)
    assert len(words_backend.calls) == calls_before  # the model was not called at all
    for dataset in ("preference_texts", "author_texts"):
        counts = result[dataset]["counts"]
        assert counts["regenerated"] == 0 and counts["reused"] == counts["total"]
    assert read_manifest(store, "preference_texts", DS)["counts"]["total"] == \
        first["counts"]["total"]
    users = first["counts"]["total"]
    assert scalar(warehouse_url, "SELECT COUNT(*) FROM preference_texts WHERE ds = :ds",
                  ds=DS) == users


def test_changing_five_percent_of_sessions_regenerates_those_users(world, warehouse_url, store,
                                                                    words_backend):
    compose_day(DS, warehouse_url, store, world, words_backend)
    sessions = read_table(store, "sessions", DS, "sessions").to_pylist()
    users = sorted({r["user_id"] for r in sessions})
    changed = users[:: 20][: max(1, round(len(users) * 0.05))]
    first_author = {}
    for r in sessions:
        first_author.setdefault(r["user_id"], r)
    day_end = days.window_for(DS, 1).end_ms
    engine = sa.create_engine(warehouse_url)
    with engine.begin() as conn:  # each changed user tips a known author once more today
        top = conn.execute(sa.text("SELECT MAX(load_seq), MAX(event_id) FROM tip_events")).one()
        for k, user in enumerate(changed):
            r = first_author[user]
            conn.execute(sa.text(
                "INSERT INTO tip_events (load_seq, event_id, user_id, author_id, live_id, ts, "
                "amount, ingested_at) VALUES (:s, :e, :u, :a, :l, :t, 5.0, :t)"),
                {"s": top[0] + k + 1, "e": top[1] + k + 1, "u": user, "a": r["author_id"],
                 "l": r["live_id"], "t": day_end - 3_600_000 + k})
    engine.dispose()
    ingest.run_ingest(DayRun(DS, world, store, warehouse_url))
    result = compose_day(DS, warehouse_url, store, world, words_backend)
    counts = result["preference_texts"]["counts"]
    assert counts["regenerated"] == len(changed)
    assert abs(counts["regenerated"] / counts["total"] - 0.05) <= 0.01
    assert result["author_texts"]["counts"]["regenerated"] == 0
    regenerated = {r["user_id"] for r in read_table(store, "preference_texts", DS, "texts")
                   .to_pylist() if not r["reused"]}
    assert regenerated == set(changed)


def test_failures_are_retried_then_stored_with_their_reason(world, warehouse_url, store,
                                                            monkeypatch):
    backend = WordsFromDataBackend(fail_sections={"Regional bias"})
    settings = world.with_compose(retries=2)
    result = compose_day(DS, warehouse_url, store, settings, backend)
    counts = result["preference_texts"]["counts"]
    assert counts["failed"] == counts["total"] and counts["ok"] == 0
    assert counts["failed_sections_by_check"] == {"empty": counts["total"]}
    rows = read_table(store, "preference_texts", DS, "texts").to_pylist()
    assert all(r["reason"] == "Regional bias: empty" and r["attempts"] == 3 for r in rows)
    assert all(r["text"].startswith("Favoured author types: ") for r in rows)
    # The retry budget is spent once per exact input: a rerun reuses the failures (with
    # their reasons) instead of repeating the same seeded attempts...
    again = compose_day(DS, warehouse_url, store, settings, WordsFromDataBackend())
    assert again["preference_texts"]["counts"]["regenerated"] == 0
    assert again["preference_texts"]["counts"]["failed"] == counts["total"]
    # ...and a new model (a new cache key) tries them afresh.
    fixed = WordsFromDataBackend()
    fixed.model_version = "words-from-data-v2"
    monkeypatch.setattr("mspa_tasks.compose.shards.model_version",
                        lambda cfg, s: fixed.model_version)
    fresh = compose_day(DS, warehouse_url, store, settings, fixed)
    assert fresh["preference_texts"]["counts"]["regenerated"] == counts["total"]
    assert fresh["preference_texts"]["counts"]["ok"] == counts["total"]


def test_publish_refuses_missing_shards(world, warehouse_url, store, words_backend):
    run.compose_shard(DayRun(DS, world, store, warehouse_url),
                      "users", 0, 2, backend=words_backend)
    with pytest.raises(run.ShardsMissing, match="1 of 2 users shards are not staged"):
        run.publish_texts(DayRun(DS, world, store, warehouse_url))


@pytest.mark.parametrize(("kind", "shard", "of", "message"), [
    ("viewers", 0, 2, "use 'users' or 'authors'"), ("users", 2, 2, "outside 0..1"),
])
def test_bad_shard_arguments(kind, shard, of, message, settings, store):
    with pytest.raises(ValueError, match=message):
        run.compose_shard(DayRun(DS, settings, store, "sqlite://"), kind, shard, of)


PAYLOAD = "<img src=x onerror=alert(1)> [click](javascript:alert(1)) **loud** ```"


@pytest.mark.parametrize("warehouse_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_the_sample_report_shows_untrusted_fields_as_text(warehouse_url, store, settings,
                                                         words_backend):
    """Author fields carrying HTML, a javascript: link and Markdown, rendered by a real
    CommonMark renderer with raw HTML on: no tag, link or emphasis comes out, the text does."""
    from markdown_it import MarkdownIt

    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=DS), warehouse_url, store)
    engine = sa.create_engine(warehouse_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE authors SET location = :p, category = :p"), {"p": PAYLOAD})
    engine.dispose()
    ingest.run_ingest(DayRun(DS, settings, store, warehouse_url))
    compose_day(DS, warehouse_url, store, settings.with_compose(n_shards=1), words_backend)
    sample = store.get_text(f"reports/compose/ds={DS}/sample.md")
    rendered = MarkdownIt("commonmark").render(sample)
    assert "<img" not in rendered and "href=" not in rendered
    assert "<a " not in rendered and "<strong>" not in rendered
    assert "&lt;img src=x onerror=alert(1)&gt; [click](javascript:alert(1)) **loud** ```" \
        in rendered  # shown as written
    assert rendered.count("<h2>") == 20  # no field broke the document's structure
