"""The KuaiLive importer against broken files, as an operator would hand them over: a bad
line is a reject row with its file, its physical line and a reason, never a traceback; a
whole-file defect, or an import that would wipe good data, fails before anything changes.
On SQLite and on a real PostgreSQL."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa

from mspa_tasks.kuailive import ImportRefused, KuaiLiveFormatError, import_kuailive
from tests.conftest import scalar
from tests.kuailive_fixture import write_fixture


@pytest.fixture(scope="module")
def clean_archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kuailive") / "KuaiLive"
    return folder, write_fixture(folder)


@pytest.fixture
def archive(clean_archive, tmp_path):
    folder, expected = clean_archive
    copy = tmp_path / "KuaiLive"
    shutil.copytree(folder, copy)
    return copy, expected


def _lines(path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _insert(path, at: int, *new: bytes) -> None:
    """Put ``new`` lines before physical line ``at`` (1 = the header)."""
    lines = _lines(path)
    path.write_bytes(b"".join(lines[:at - 1] + list(new) + lines[at - 1:]))


def _rejects(url: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT file, line, reason FROM import_rejects "
                                    "ORDER BY file, line")).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def _first(path) -> list[str]:
    return _lines(path)[1].decode().rstrip("\r\n").split(",")


def test_each_bad_line_is_a_reject_with_its_physical_line_and_the_rest_loads(archive,
                                                                              warehouse_url):
    folder, expected = archive
    click = _first(folder / "click.csv")
    user, room, streamer, ts = click[0], click[1], click[2], click[3]
    big_user = "123456789012345678"  # a valid 64-bit id; user_id * 100000 is not
    _insert(folder / "user.csv", 2, (big_user + "," + ",".join(_first(folder / "user.csv")[1:])
                                     + "\r\n").encode())
    other_room = next(r.split(b",")[1].decode() for r in _lines(folder / "room.csv")[1:]
                      if r.split(b",")[2].decode() != streamer)
    _insert(folder / "click.csv", 2,
            b"\r\n", b"\r\n",                                            # lines 2-3: blank
            f'{user},{room},{streamer},{int(ts) + 7},"12\r\n34"\r\n'.encode(),  # 4-5: quoted NL
            f"{user},{room},{streamer},{int(ts) + 8},1\xff0\r\n".encode("latin-1"),  # 6
            f'{user},"{room},{streamer},{int(ts) + 9},10\r\n'.encode(),  # 7: never closed
            f"{user},{room},{streamer},{int(ts) + 10},10,99\r\n".encode(),  # 8: a field too many
            f"{big_user},{room},{streamer},{int(ts) + 11},10\r\n".encode(),  # 9
            f"{user},{other_room},{streamer},{int(ts) + 12},10\r\n".encode())  # 10
    streamer_row = _first(folder / "streamer.csv")
    _insert(folder / "streamer.csv", 3, (",".join([str(10**9), *streamer_row[1:3], "Chi\x00na",
                                                   *streamer_row[4:]]) + "\r\n").encode())

    summary = import_kuailive(folder, warehouse_url)

    planted = {("click.csv", 6, "not_utf8"), ("click.csv", 7, "unbalanced_quote"),
               ("click.csv", 8, "wrong_field_count"), ("click.csv", 9, "id_out_of_range"),
               ("click.csv", 10, "room_of_another_streamer"), ("streamer.csv", 3, "nul_byte")}
    assert planted <= set(_rejects(warehouse_url))
    # the clean lines around them load: one more click (the quoted newline), one more user
    assert summary.loaded["impressions"] == expected.loaded["impressions"] + 1
    assert summary.read["user.csv"] == expected.read["user.csv"] + 1
    assert summary.rejected["click.csv"] == {**expected.rejected["click.csv"],
                                             "not_utf8": 1, "unbalanced_quote": 1,
                                             "wrong_field_count": 1, "id_out_of_range": 1,
                                             "room_of_another_streamer": 1}


def test_reported_lines_are_the_files_own_lines(archive, warehouse_url):
    """Blank lines and quoted newlines before a rejected line do not shift its number."""
    folder, _ = archive
    click = _first(folder / "click.csv")
    _insert(folder / "click.csv", 2, b"\r\n", f'{",".join(click[:4])},"1\r\n2"\r\n'.encode())
    import_kuailive(folder, warehouse_url)
    lines = _lines(folder / "click.csv")
    for file, line, reason in _rejects(warehouse_url):
        if file == "click.csv" and reason == "unknown_user":
            assert lines[line - 1].startswith(b"5000,"), (line, reason)


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.write_text("user_id,live_id,author_id,timestamp\n1,2,3,4\n"),
     "gift.csv: column.s. gift_price missing"),
    (lambda f: f.write_bytes(b""), "gift.csv is empty"),
    (lambda f: f.write_text("user_id,live_id,author_id,streamer_id,timestamp,gift_price\n"),
     "names the streamer column twice"),
])
def test_a_whole_file_defect_fails_before_anything_is_written(archive, tmp_path, change,
                                                               message):
    folder, expected = archive
    url = f"sqlite:///{tmp_path / 'w.db'}"
    import_kuailive(folder, url)
    change(folder / "gift.csv")
    with pytest.raises(KuaiLiveFormatError, match=message):
        import_kuailive(folder, url)
    assert scalar(url, "SELECT COUNT(*) FROM tip_events") == expected.loaded["tip_events"]


def test_an_import_that_would_wipe_a_table_or_reject_most_lines_needs_force(archive,
                                                                            warehouse_url):
    folder, expected = archive
    import_kuailive(folder, warehouse_url)
    gift = folder / "gift.csv"
    original = gift.read_bytes()
    gift.write_bytes(_lines(gift)[0])  # header only
    with pytest.raises(ImportRefused, match=r"would empty tip_events \(\d[\d,]* rows -> 0\)"):
        import_kuailive(folder, warehouse_url)
    assert scalar(warehouse_url, "SELECT COUNT(*) FROM tip_events") == \
        expected.loaded["tip_events"]

    lines = original.splitlines(keepends=True)  # every other gift has no price
    gift.write_bytes(b"".join([lines[0]] + [
        line if i % 2 else line.rsplit(b",", 1)[0] + b",\r\n" for i, line in enumerate(lines[1:])]))
    with pytest.raises(ImportRefused, match=r"gift.csv: \d+ of \d+ lines rejected \(5\d%"):
        import_kuailive(folder, warehouse_url)
    assert scalar(warehouse_url, "SELECT COUNT(*) FROM tip_events") == \
        expected.loaded["tip_events"]
    forced = import_kuailive(folder, warehouse_url, force=True)
    assert 0 < forced.loaded["tip_events"] < expected.loaded["tip_events"]
    assert forced.rejected["gift.csv"]["missing_field"] > expected.loaded["tip_events"] // 3
