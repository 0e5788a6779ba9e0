"""Nothing bad gets published: an empty or near-empty day, a dropped source table, a profile
picked differently by two stages or read from the future, and an empty partition handed to a
later stage. Each case on a real tiny world, on SQLite and PostgreSQL where the warehouse is
involved; the day before stays published and the alias keeps serving it."""

from __future__ import annotations

import dataclasses
import re

import pyarrow as pa
import pytest
import sqlalchemy as sa

from mspa_tasks import compose, days, ingest, vector_store
from mspa_tasks.compose.shards import shard_key
from mspa_tasks.datasets import text_schema
from mspa_tasks.llm.keywords import KeywordBackend
from mspa_tasks.publish import (
    EmptyInput,
    parquet_bytes,
    publish_partition,
    published_days,
    read_table,
)
from mspa_tasks.quality import DataQualityError
from mspa_tasks.run import DayRun
from mspa_tasks.vector_store import PublishRefused
from mspa_tasks.vectors.build import build_collection
from mspa_tasks.vectors.encode import encode_day
from mspa_tasks.vectors.gate import validate_collection
from mspa_tasks.vectors.lifecycle import publish_collection
from mspa_tasks.warehouse import MissingSourceTable, make_engine
from mspa_tasks.world.generate import PRESETS, generate_world

D1, D2 = "2026-11-19", "2026-11-20"
DATASETS = ("sessions", "preference_texts", "author_texts", "author_vectors", "user_vectors")
SOURCES = ("tip_events", "authors", "author_media", "live_comments", "impressions")


def _sql(url: str, *statements: str, **params) -> list:
    engine = make_engine(url)
    out = []
    with engine.begin() as conn:
        for s in statements:
            result = conn.execute(sa.text(s), params)
            out.append(result.all() if result.returns_rows else None)
    engine.dispose()
    return out


def _day(ds, url, store, settings, target) -> str:
    """The whole daily refresh of ``ds`` (keyword composer); returns the collection."""
    ingest.run_ingest(DayRun(ds, settings, store, url))
    for shard in compose.plan_shards(settings.compose):
        compose.compose_shard(DayRun(ds, settings, store, url),
                              shard["kind"], shard["shard"], shard["of"], backend=KeywordBackend())
    compose.publish_texts(DayRun(ds, settings, store, url))
    encode_day(DayRun(ds, settings, store))
    name = build_collection(DayRun(ds, settings, store, milvus=target)).collection
    validate_collection(DayRun(ds, settings, store, milvus=target), name)
    publish_collection(DayRun(ds, settings, milvus=target), name)
    return name


@pytest.fixture
def day_settings(settings, tmp_path):
    settings = settings.replaced(vectors={"milvus_uri": str(tmp_path / "milvus.db"),
                                          "spot_checks": 5, "recall_sample": 10},
                                 compose={"backend": "keywords"})
    return settings, vector_store.MilvusTarget(settings.vectors.milvus_uri)


EMPTY = {"kept_users", "kept_authors", "kept_event_share", "kept_users_vs_previous_day",
         "kept_authors_vs_previous_day", "kept_event_share_vs_previous_day"}
WRECKS = {  # how a warehouse produces an empty or near-empty day: (SQL, checks that fail)
    "author_media_empty": ("DELETE FROM author_media", EMPTY),
    "every_intro_blank": ("UPDATE authors SET intro = '  '", EMPTY),
    # four authors in five lose their frames: above every floor, far below yesterday
    "most_media_gone": ("DELETE FROM author_media WHERE author_id % 5 <> 0",
                        {"kept_authors_vs_previous_day"}),
}


@pytest.mark.parametrize("store", ["file"], indirect=True)
@pytest.mark.parametrize("wreck", sorted(WRECKS))
def test_an_empty_day_stops_at_the_gate_and_yesterday_keeps_serving(
        wreck, warehouse_url, store, day_settings):
    settings, target = day_settings
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=D2), warehouse_url, store)
    served = _day(D1, warehouse_url, store, settings, target)
    before = {d: store.get_text(f"{d}/ds={D1}/manifest.json") for d in DATASETS}

    statement, must_fail = WRECKS[wreck]
    _sql(warehouse_url, statement)
    run = DayRun(D2, settings, store, warehouse_url)
    ingest.prepare_tables(run)
    ingest.extract_window(run)
    with pytest.raises(DataQualityError) as caught:
        ingest.quality_gate(run)
    failed = {f.name: f for f in caught.value.failures}
    assert must_fail <= set(failed)
    message = str(caught.value)
    yesterday = read_table(store, "sessions", D1, "authors").num_rows
    today = failed["kept_authors_vs_previous_day"].value * yesterday
    assert re.search(r"kept_authors_vs_previous_day FAILED: value [\d.e-]+, bound \[0.5, 2\] "
                     rf"\(kept authors {round(today)} on ds vs {yesterday} on {D1}\)", message), \
        message
    if must_fail == EMPTY:
        assert "kept_users FAILED: value 0, bound >= 10" in message
        assert "kept_authors FAILED: value 0, bound >= 20" in message
    else:
        assert 0 < today < 0.5 * yesterday
    rows = _sql(warehouse_url, "SELECT name, passed FROM dq_results WHERE ds = :ds", ds=D2)[0]
    assert {n for n, passed in rows if not passed} == set(failed)

    with pytest.raises(ingest.NotStaged, match="quality gate has not passed"):
        ingest.publish_sessions(run)
    for dataset in DATASETS:  # nothing of D2 anywhere, D1 byte for byte
        assert published_days(store, dataset) == [D1], dataset
        assert store.get_text(f"{dataset}/ds={D1}/manifest.json") == before[dataset]
    with vector_store.milvus_client(target) as client:
        assert vector_store.serving_collection(client, settings.vectors.alias) == served
        client.load_collection(settings.vectors.alias)
        count = client.query(settings.vectors.alias, filter="", output_fields=["count(*)"])
    assert count[0]["count(*)"] == read_table(store, "sessions", D1, "authors").num_rows


@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_every_stage_refuses_an_empty_partition(store, day_settings):
    """Should an empty partition ever be published (the gate's floors lowered by hand), no
    stage makes an empty output of it, and no collection is left ``built``."""
    settings, target = day_settings
    empty = {"sessions": ingest.SESSIONS_SCHEMA.empty_table(),
             "authors": ingest.AUTHORS_SCHEMA.empty_table(),
             "user_split": pa.schema([("user_id", pa.int64()),
                                      ("split", pa.string())]).empty_table(),
             "dropped_users": ingest.DROPPED_USERS_SCHEMA.empty_table()}
    publish_partition(store, "sessions", D2, empty, {"counts": {}})
    for kind in ("users", "authors"):
        with pytest.raises(EmptyInput, match=f"sessions/{'sessions' if kind == 'users' else 'authors'}"
                                             f" of ds={D2} has 0 rows: compose_shard refuses"):
            compose.compose_shard(DayRun(D2, settings, store, "sqlite://"),
                                  kind, 0, 1, backend=KeywordBackend())
    for dataset, id_col in compose.KINDS.values():
        store.put_bytes(shard_key(dataset, D2, 0, 1),
                        parquet_bytes(text_schema(id_col).empty_table()))
    with pytest.raises(EmptyInput, match="publish_texts refuses"):
        compose.publish_texts(DayRun(D2, settings.with_compose(n_shards=1), store, "sqlite://"))
    for dataset, id_col in (("preference_texts", "user_id"), ("author_texts", "author_id")):
        publish_partition(store, dataset, D2, {"texts": text_schema(id_col).empty_table()},
                          {})
    with pytest.raises(EmptyInput, match="sessions/authors of ds=.* encode refuses"):
        encode_day(DayRun(D2, settings, store), encoder=object())

    from tests.mspa_tasks.vectors.conftest import publish_vectors

    publish_vectors(store, D2)
    name = build_collection(DayRun(D2, settings, store, milvus=target)).collection
    table = read_table(store, "author_vectors", D2, "vectors")
    publish_partition(store, "author_vectors", D2, {"vectors": table.slice(0, 0)},
                      {"encoder_version": "test-encoder-v1", "dim": 32})
    with pytest.raises(EmptyInput, match="build_collection refuses"):
        build_collection(DayRun(D2, settings, store, milvus=target))
    with pytest.raises(EmptyInput, match="validate_collection refuses"):
        validate_collection(DayRun(D2, settings, store, milvus=target), name)
    with vector_store.milvus_client(target) as client:
        assert client.list_collections() == [name]  # the refused build created nothing
        assert vector_store.properties(client, name)[vector_store.STATUS] == "failed"
    with pytest.raises(PublishRefused, match="status 'failed'"):
        publish_collection(DayRun(D2, settings, milvus=target), name)


@pytest.mark.parametrize("store", ["file"], indirect=True)
@pytest.mark.parametrize("table", ["live_comments", "author_media"])
def test_a_dropped_source_table_is_an_error_not_an_empty_table(table, warehouse_url, store,
                                                               settings):
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=D2), warehouse_url, store)
    _sql(warehouse_url, f"DROP TABLE {table}")
    with pytest.raises(MissingSourceTable, match=f"no source table {table}: the pipeline "
                                                 "never creates source tables"):
        ingest.prepare_tables(DayRun(D2, settings, store, warehouse_url))
    with pytest.raises(MissingSourceTable, match=table):
        ingest.run_ingest(DayRun(D2, settings, store, warehouse_url))
    engine = make_engine(warehouse_url)
    with engine.connect() as conn:
        assert table not in sa.inspect(conn).get_table_names()  # not recreated
    engine.dispose()
    with pytest.raises(MissingSourceTable, match=table):  # the composer checks for itself
        compose.load_author_content(warehouse_url, {1}, days.window_for(D2, 30).end_ms)


@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_the_pipeline_issues_no_ddl_on_source_tables(warehouse_url, store, settings):
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=D2), warehouse_url, store)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        ingest.run_ingest(DayRun(D2, settings, store, warehouse_url))
        for shard in compose.plan_shards(settings.compose):
            compose.compose_shard(DayRun(D2, settings, store, warehouse_url),
                                  shard["kind"], shard["shard"], shard["of"], backend=KeywordBackend())
        compose.publish_texts(DayRun(D2, settings, store, warehouse_url))
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    ddl = re.compile(r"^\s*(CREATE|ALTER|DROP|TRUNCATE)\b[^;]*?\b(" + "|".join(SOURCES) + r")\b",
                     re.IGNORECASE)
    assert any(s.lstrip().upper().startswith("CREATE TABLE") for s in statements)  # its own
    assert [s for s in statements if ddl.search(s)] == []


@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_ingest_and_the_composer_pick_the_same_profile_row_known_by_the_window_end(
        warehouse_url, store, settings):
    """Two profile rows tied on updated_at (differing only by case, which the database's
    collation orders one way and bytes another) and a profile updated after the window's
    end: every stage takes the same row, and never the later one."""
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=D2), warehouse_url, store)
    window = days.window_for(D1, 30)
    first = ingest.run_ingest(DayRun(D1, settings, store, warehouse_url))
    tied, later = read_table(store, "sessions", D1, "authors").column("author_id").to_pylist()[:2]
    insert = ("INSERT INTO authors (author_id, nickname, location, intro, category, updated_at) "
              "VALUES (:a, :n, :l, :i, :c, :u)")
    engine = make_engine(warehouse_url)
    with engine.begin() as conn:
        old = conn.execute(sa.text("SELECT location, category FROM authors WHERE author_id = :a"),
                           {"a": later}).one()
        for nick, place, cat in (("alice", "Xi'an, Shaanxi", "gaming"),
                                 ("Zed", "Harbin, Heilongjiang", "outdoor")):
            conn.execute(sa.text(insert), {"a": tied, "n": nick, "l": place,
                                           "i": f"intro of {nick}", "c": cat,
                                           "u": window.end_ms - 3_600_000})
        conn.execute(sa.text(insert), {"a": later, "n": "FromTheFuture", "l": "Lhasa, Tibet",
                                       "i": "written after the window", "c": "cooking",
                                       "u": window.end_ms + 3_600_000})
    engine.dispose()

    published = ingest.run_ingest(DayRun(D1, settings, store, warehouse_url))
    kept = {r["author_id"]: r for r in read_table(store, "sessions", D1, "authors").to_pylist()}
    content, _ = compose.load_author_content(warehouse_url, {tied, later}, window.end_ms)
    # byte order: "Zed" < "alice" (a linguistic collation says the opposite)
    assert (kept[tied]["nickname"], kept[tied]["category"]) == ("Zed", "outdoor")
    assert (content[tied].nickname, content[tied].location, content[tied].category) == (
        "Zed", "Harbin, Heilongjiang", "outdoor")
    assert (kept[later]["location"], kept[later]["category"]) == (old.location, old.category)
    assert (content[later].location, content[later].category) == (old.location, old.category)
    assert content[later].nickname == kept[later]["nickname"] != "FromTheFuture"
    # the tie's other row is quarantined as a duplicate, the future row is not considered
    quarantined = _sql(warehouse_url, "SELECT nickname, reason FROM quarantine_authors "
                       "WHERE ds = :ds AND author_id IN (:a, :b)", ds=D1, a=tied, b=later)[0]
    assert ("alice", "duplicate_author") in quarantined
    assert "FromTheFuture" not in {n for n, _ in quarantined}
    before = first.manifest["counts"]["authors"]["dropped"]
    after = published.manifest["counts"]["authors"]["dropped"]
    assert after["duplicate_author"] == before.get("duplicate_author", 0) + 2
