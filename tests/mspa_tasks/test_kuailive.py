"""The KuaiLive importer on a fixture in the exact published schema (tests/kuailive_fixture.py),
into SQLite and a real PostgreSQL, then the ingest of a day with the source's settings."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import subprocess
import sys
import tomllib

import pytest
import sqlalchemy as sa

from mspa_tasks import ingest
from mspa_tasks.config import CONF_DIR, load_settings
from mspa_tasks.kuailive import KuaiLiveFormatError, import_kuailive, reject_counts
from mspa_tasks.run import DayRun
from mspa_tasks.world.generate import PRESETS, generate_world
from tests.conftest import REPO, scalar
from tests.kuailive_fixture import LAST_DS, write_fixture

SOURCE_CONF = CONF_DIR / "sources" / "kuailive.toml"


@pytest.fixture
def archive(tmp_path):
    folder = tmp_path / "KuaiLive"
    return folder, write_fixture(folder)


def _count(url: str, table: str) -> int:
    return scalar(url, f"SELECT COUNT(*) FROM {table}")


def test_every_table_gets_its_exact_rows_and_every_bad_line_its_reason(archive, warehouse_url):
    folder, expected = archive
    summary = import_kuailive(folder, warehouse_url)
    assert summary.loaded == expected.loaded
    assert summary.read == expected.read
    assert summary.rejected == expected.rejected
    assert summary.counted_only == expected.counted_only
    assert summary.days == ("2025-05-05", LAST_DS)
    for table, n in expected.loaded.items():
        assert _count(warehouse_url, table) == n, table
    assert _count(warehouse_url, "live_comments") == 0  # KuaiLive comments carry no text
    assert reject_counts(warehouse_url) == expected.rejected


def test_a_rejected_row_keeps_its_file_line_and_raw_text(archive, warehouse_url):
    folder, _ = archive
    import_kuailive(folder, warehouse_url)
    engine = sa.create_engine(warehouse_url)
    with engine.connect() as conn:
        rejects = conn.execute(sa.text(
            "SELECT file, line, reason, raw FROM import_rejects ORDER BY file, line")).all()
    engine.dispose()
    assert rejects
    for file, line, _, raw in rejects:
        with open(folder / file, newline="") as f:
            original = list(csv.reader(f))[line - 1]
        assert raw == ",".join(original)


def test_the_streamer_column_may_be_author_id_or_streamer_id(archive, tmp_path):
    folder, expected = archive
    assert "author_id" in (folder / "click.csv").read_text().splitlines()[0]
    assert "streamer_id" in (folder / "room.csv").read_text().splitlines()[0]
    renamed = tmp_path / "renamed"
    shutil.copytree(folder, renamed)
    for name in ("click.csv", "gift.csv"):
        path = renamed / name
        head, rest = path.read_text().split("\n", 1)
        path.write_text(head.replace("author_id", "streamer_id") + "\n" + rest)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert import_kuailive(renamed, url).loaded == expected.loaded


def test_reimporting_replaces_and_a_bad_archive_writes_nothing(archive, tmp_path):
    folder, expected = archive
    url = f"sqlite:///{tmp_path / 'w.db'}"
    import_kuailive(folder, url)
    import_kuailive(folder, url)  # the same rows, not twice as many
    assert _count(url, "tip_events") == expected.loaded["tip_events"]
    assert _count(url, "import_rejects") == sum(sum(r.values()) for r in expected.rejected.values())

    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    path = broken / "gift.csv"
    head, rest = path.read_text().split("\n", 1)
    path.write_text(head.replace("timestamp", "time") + "\n" + rest)
    with pytest.raises(KuaiLiveFormatError, match="gift.csv: column.*timestamp missing"):
        import_kuailive(broken, url)
    (broken / "room.csv").unlink()
    with pytest.raises(KuaiLiveFormatError, match="room.csv missing"):
        import_kuailive(broken, url)
    assert _count(url, "tip_events") == expected.loaded["tip_events"]  # the previous import


def test_a_failure_midway_leaves_the_previous_tables(archive, tmp_path, monkeypatch):
    """One transaction: a crash while writing (here in negative.csv) rolls everything back."""
    from mspa_tasks import kuailive

    folder, _ = archive
    url = f"sqlite:///{tmp_path / 'w.db'}"
    store_root = tmp_path / "art"
    from mspa_tasks.artifacts import open_store

    world = generate_world(dataclasses.replace(PRESETS["tiny"], end_ds="2026-11-20"), url,
                           open_store(f"file://{store_root}"))
    before = _count(url, "tip_events")
    real = kuailive._Importer.write

    def crash(self, name, df, values):
        if name == "negative.csv":
            raise OSError("disk full")
        return real(self, name, df, values)

    monkeypatch.setattr(kuailive._Importer, "write", crash)
    with pytest.raises(OSError, match="disk full"):
        import_kuailive(folder, url)
    assert _count(url, "tip_events") == before == world.rows["tip_events"]


def test_the_ingest_of_a_kuailive_day_keeps_streamers_without_frames(archive, tmp_path,
                                                                      monkeypatch, store):
    """With the source's settings the no-image filter is off (KuaiLive has no frames); the
    no-text filter still drops the streamer with no structured field."""
    folder, expected = archive
    url = f"sqlite:///{tmp_path / 'w.db'}"
    import_kuailive(folder, url)
    assert tomllib.loads(SOURCE_CONF.read_text())["ingest"] == {"require_author_image": False}
    monkeypatch.setenv("MSPA_CONFIG", str(SOURCE_CONF))
    settings = load_settings("local", home=tmp_path / "home")
    counts = ingest.run_ingest(DayRun(LAST_DS, settings, store, url)).manifest["counts"]
    assert counts["authors"]["dropped"] == {"no_text": expected.no_text_authors}
    assert counts["authors"]["kept"] == expected.loaded["authors"] - expected.no_text_authors
    assert counts["users"]["kept"] > 20
    assert counts["events"]["quarantined"] == {}  # the importer rejected the bad lines

    monkeypatch.delenv("MSPA_CONFIG")  # the environment's defaults: every streamer no_image
    with pytest.raises(Exception, match="kept_authors"):
        ingest.run_ingest(DayRun(LAST_DS, load_settings("local", home=tmp_path / "h2"), store, url))


def test_the_command_line_reports_a_bad_folder_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mspa_tasks", "import-kuailive",
                             str(tmp_path / "nowhere")], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "MSPA_HOME": str(tmp_path)})
    assert result.returncode != 0
    assert "is not a folder" in result.stderr and "Traceback" not in result.stderr
