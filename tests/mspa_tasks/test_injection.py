"""SQL and template injection strings in every text column of the sources travel through
ingest and the composer as data: nothing is executed, nothing is lost, every table stays."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from mspa_tasks import compose, ingest
from mspa_tasks.publish import read_table
from mspa_tasks.run import DayRun
from mspa_tasks.world.generate import PRESETS, generate_world
from tests.mspa_tasks.compose.conftest import WordsFromDataBackend

DS = "2026-11-20"
PAYLOADS = (
    "x'); DROP TABLE tip_events; --",
    "1 OR 1=1; DELETE FROM authors WHERE '1'='1",
    "{{ 7*7 }} {% for x in range(3) %}boom{% endfor %} :ds :start_ms",
    "Robert\"); UPDATE impressions SET clicked = 1; --",
)
TEXT_COLUMNS = {"authors": ("nickname", "location", "intro", "category"),
                "author_media": ("frame_caption", "asr_text", "frame_uri"),
                "live_comments": ("text",)}
TABLES = ("tip_events", "authors", "author_media", "live_comments", "impressions")


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in TABLES}


@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_injection_strings_in_every_text_column_are_only_data(warehouse_url, store, settings):
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=DS), warehouse_url, store)
    engine = sa.create_engine(warehouse_url)
    with engine.begin() as conn:  # the test plants them with bound values too
        author_ids = [r[0] for r in conn.execute(sa.text(
            "SELECT DISTINCT author_id FROM authors WHERE author_id IS NOT NULL "
            "ORDER BY author_id"))]
        planted = {a: PAYLOADS[i % len(PAYLOADS)] for i, a in enumerate(author_ids[:40])}
        for table, columns in TEXT_COLUMNS.items():
            for author, payload in planted.items():
                sets = ", ".join(f"{c} = :v" for c in columns
                                 if not (table == "authors" and c == "category"))
                conn.execute(sa.text(f"UPDATE {table} SET {sets} WHERE author_id = :a"),
                             {"v": payload, "a": author})
    before = _counts(engine)

    ingest.run_ingest(DayRun(DS, settings, store, warehouse_url))
    backend = WordsFromDataBackend()
    for shard in compose.plan_shards(settings.compose):
        compose.compose_shard(DayRun(DS, settings, store, warehouse_url),
                              shard["kind"], shard["shard"], shard["of"], backend=backend)
    compose.publish_texts(DayRun(DS, settings, store, warehouse_url))

    assert _counts(engine) == before  # nothing dropped, deleted or updated by a payload
    engine.dispose()
    kept = {r["author_id"]: r for r in read_table(store, "sessions", DS, "authors").to_pylist()}
    survivors = [a for a in planted if a in kept]
    assert survivors, "no planted author survived the filters: the test proves nothing"
    for author in survivors:  # stored byte for byte, as data
        assert kept[author]["nickname"] == planted[author]
        assert kept[author]["location"] == planted[author]
    texts = read_table(store, "author_texts", DS, "texts").to_pylist()
    assert {r["author_id"] for r in texts} == set(kept)  # every kept author got a row
