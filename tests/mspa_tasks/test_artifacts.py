from __future__ import annotations

import pyarrow as pa
import pytest

from mspa_tasks.artifacts import ArtifactNotFound, open_store
from mspa_tasks.publish import (
    ChecksumMismatch,
    partition_prefix,
    publish_partition,
    published_days,
    read_manifest,
    read_table,
)


def test_put_get_list_delete(store):
    uri = store.put_bytes("a/b/one.bin", b"\x00\x01")
    assert uri == store.uri("a/b/one.bin")
    store.put_text("a/two.txt", "héllo")
    assert store.get_bytes("a/b/one.bin") == b"\x00\x01"
    assert store.get_text("a/two.txt") == "héllo"
    assert store.list("a/") == ["a/b/one.bin", "a/two.txt"]
    assert store.exists("a/two.txt") and not store.exists("a/missing")
    store.delete("a/two.txt")
    assert store.list("a/") == ["a/b/one.bin"]
    with pytest.raises(ArtifactNotFound):
        store.get_bytes("a/two.txt")


def test_overwrite_replaces_content(store):
    store.put_bytes("k", b"old")
    store.put_bytes("k", b"new")
    assert store.get_bytes("k") == b"new"


def test_local_store_refuses_keys_outside_root(tmp_path):
    store = open_store(f"file://{tmp_path}/root")
    with pytest.raises(ValueError, match="escapes the store root"):
        store.put_bytes("../outside", b"x")


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="scheme 'gs'"):
        open_store("gs://bucket/x")


def _table(n: int) -> pa.Table:
    return pa.table({"id": list(range(n)), "v": [i * 0.5 for i in range(n)]})


def test_publish_is_byte_identical_on_rerun_and_removes_stale_files(store):
    first = publish_partition(store, "ds_test", "2026-11-20", {"t": _table(5)}, {"note": 1})
    manifest_bytes = store.get_bytes(f"{partition_prefix('ds_test', '2026-11-20')}/manifest.json")
    again = publish_partition(store, "ds_test", "2026-11-20", {"t": _table(5)}, {"note": 1})
    assert again.manifest == first.manifest
    assert store.get_bytes(f"{partition_prefix('ds_test', '2026-11-20')}/manifest.json") \
        == manifest_bytes
    changed = publish_partition(store, "ds_test", "2026-11-20", {"t": _table(7)}, {"note": 2})
    files = store.list("ds_test/ds=2026-11-20/")
    assert len(files) == 2, files  # the new file and the manifest; the old file is gone
    assert read_table(store, "ds_test", "2026-11-20", "t").num_rows == 7
    assert changed.manifest["files"]["t"]["rows"] == 7
    assert published_days(store, "ds_test") == ["2026-11-20"]


def test_read_table_detects_tampering(store):
    publish_partition(store, "ds_test", "2026-11-21", {"t": _table(3)}, {})
    entry = read_manifest(store, "ds_test", "2026-11-21")["files"]["t"]
    store.put_bytes(f"ds_test/ds=2026-11-21/{entry['file']}", b"garbage")
    with pytest.raises(ChecksumMismatch):
        read_table(store, "ds_test", "2026-11-21", "t")


@pytest.mark.parametrize(("uri", "message"), [
    ("file://var/artifacts", "names the host 'var', so its files would land in '/artifacts'"),
    ("file://../../tmp/X", "names the host '..'"),
    ("file:X", "relative path"),
    ("file:///a/../b", "steps out"),
])
def test_a_local_store_refuses_a_uri_that_names_another_place(uri, message):
    from mspa_tasks.artifacts import StoreURIError

    with pytest.raises(StoreURIError, match=message):
        open_store(uri)


def test_a_local_store_keeps_url_characters_in_its_folder(tmp_path):
    from mspa_tasks.artifacts import file_uri

    root = tmp_path / "x#y?z%41"
    store = open_store(file_uri(root))
    uri = store.put_text("a b/c#d.txt", "ok")
    assert (root / "a b" / "c#d.txt").read_text() == "ok"
    assert uri == f"{file_uri(root)}/a%20b/c%23d.txt"  # the printed URI names that file
    assert store.list() == ["a b/c#d.txt"]
    # what a partition key holds stays readable: ds=..., no escape
    assert store.uri("sessions/ds=2026-11-20/manifest.json").endswith(
        "/sessions/ds=2026-11-20/manifest.json")


def test_published_text_carries_no_nul_bytes(store):
    """A NUL in a source text (SQLite stores it) never reaches a published file, and so
    neither Milvus nor a consumer reading the Parquet."""
    table = pa.table({"author_id": [1, 2], "nickname": ["Mei\x00Mei", None]})
    publish_partition(store, "ds_test", "2026-11-20", {"t": table}, {})
    got = read_table(store, "ds_test", "2026-11-20", "t")
    assert got.column("nickname").to_pylist() == ["MeiMei", None]
