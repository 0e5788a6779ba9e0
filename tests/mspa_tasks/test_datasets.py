"""The dataset catalog: the contract between stages is checked on both sides."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mspa_tasks.datasets import (
    AUTHOR_TEXTS,
    AUTHOR_VECTORS,
    CATALOG,
    SESSIONS,
    InputsMissing,
    SchemaMismatch,
    vector_schema,
)
from mspa_tasks.publish import publish_partition, published_days

DS = "2026-11-20"


def _authors(**overrides) -> pa.Table:
    columns = {"author_id": pa.array([1, 2], pa.int64()), "nickname": ["a", "b"],
               "location": ["x", "y"], "category": ["singing", "gaming"], **overrides}
    return pa.table(columns)


@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_publishing_a_wrong_schema_names_dataset_table_column_and_type(store):
    tables = {name: schema.empty_table() for name, schema in SESSIONS.tables.items()}
    tables["authors"] = _authors(author_id=pa.array(["1", "2"]))
    with pytest.raises(SchemaMismatch) as caught:
        SESSIONS.publish(store, DS, tables, {})
    assert str(caught.value).startswith(
        f"sessions/ds={DS} table 'authors': column 'author_id' is string, expected int64")
    assert store.list("sessions/") == []  # nothing written
    tables["authors"] = _authors().drop_columns(["category"])
    with pytest.raises(SchemaMismatch, match="column 'category' is missing \\(expected string\\)"):
        SESSIONS.publish(store, DS, tables, {})
    with pytest.raises(SchemaMismatch, match=r"tables \['authors'\] given, the catalog declares"):
        SESSIONS.publish(store, DS, {"authors": _authors()}, {})


@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_reading_checks_the_schema_a_producer_wrote(store):
    """A producer that bypassed the catalog (an old version, a hand-made fix) is caught by
    the reader, which names what differs."""
    publish_partition(store, "sessions", DS, {"authors": _authors(extra=[0, 0])}, {})
    with pytest.raises(SchemaMismatch, match=r"table 'authors': unexpected column\(s\) \['extra'\]"):
        SESSIONS.read(store, DS, "authors")
    good = {name: schema.empty_table() for name, schema in SESSIONS.tables.items()}
    good["authors"] = _authors()
    SESSIONS.publish(store, DS, good, {})
    assert SESSIONS.read(store, DS, "authors").column("author_id").to_pylist() == [1, 2]
    assert published_days(store, "sessions") == [DS]


@pytest.mark.parametrize("store", ["file"], indirect=True)
def test_an_unpublished_input_names_the_task_to_run(store):
    with pytest.raises(InputsMissing) as caught:
        AUTHOR_TEXTS.read(store, DS, "texts", reader="vectors.encode")
    assert str(caught.value) == (
        f"author_texts/ds={DS} is not published; run the compose group for {DS} first (run "
        f"mspa_daily for {DS}, or clear compose.publish_texts; vectors.encode reads it)")


def test_vectors_of_any_dimension_meet_the_contract():
    for dim in (32, 384):
        AUTHOR_VECTORS.check(DS, {"vectors": vector_schema("author_id", dim, True).empty_table()})
    wrong = pa.schema([f if f.name != "vector" else pa.field("vector", pa.list_(pa.float64(), 8))
                       for f in vector_schema("author_id", 8, True)])
    with pytest.raises(SchemaMismatch, match="column 'vector' is fixed_size_list"):
        AUTHOR_VECTORS.check(DS, {"vectors": wrong.empty_table()})


def test_every_dataset_names_its_producer_and_asset():
    for name, ds in CATALOG.items():
        assert ds.name == name and ds.asset_name.startswith("mspa_")
        assert ds.producer.dag in ("mspa_daily", "mspa_retrain") and ds.producer.task
        assert ds.tables  # schemas build


def test_asset_names_are_unique_and_leave_the_milvus_alias_its_own():
    names = [d.asset_name for d in CATALOG.values()]
    assert len(set(names)) == len(names) and "mspa_author_vectors" not in names


def test_the_architecture_doc_shows_the_catalog_as_it_is():
    from mspa_tasks.datasets import catalog_markdown
    from tests.conftest import REPO

    doc = (REPO / "docs" / "architecture.md").read_text()
    block = doc.split("<!-- catalog:begin -->\n", 1)[1].split("\n<!-- catalog:end -->", 1)[0]
    assert block == catalog_markdown(), "regenerate the table: mspa_tasks.datasets.catalog_markdown()"
