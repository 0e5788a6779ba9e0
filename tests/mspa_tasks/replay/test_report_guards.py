"""What a replay report must say before any figure, and what it must not count twice: a day
that scored no impression is flagged on the page, in the JSON and in the CLI text; an
impression row written again (same request, same author) is one impression. SQLite and
PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from mspa_tasks import replay
from mspa_tasks.artifacts import open_store
from mspa_tasks.config import load_settings
from mspa_tasks.forward_day import IMPRESSIONS_SCHEMA
from mspa_tasks.replay.results import REPORT_HTML, report_prefix
from mspa_tasks.run import DayRun
from mspa_tasks.warehouse import fetch_arrow, make_engine, run_sql

DS = "2026-11-20"
T0 = 1_763_596_800_000 + 3_600_000  # 2026-11-20 01:00 UTC


def test_a_day_that_scored_no_impression_says_so_first(tmp_path):
    settings = load_settings("local", home=tmp_path)
    store = open_store(settings.artifacts_uri)
    replay.write_part(store, settings, DS, "offline", {
        "metrics": [], "n_authors": 64, "model_day": "2026-11-19",
        "coverage": {"impressions": 120, "impressions_scored": 0}})
    replay.write_part(store, settings, DS, "u2a", {"metrics": [], "champion": "r1"})
    replay.write_part(store, settings, DS, "ann", {"metrics": []})
    report = replay.publish_report(DayRun(DS, settings, store, settings.warehouse_url)).report
    assert report["warnings"] and "0 of 120" in report["warnings"][0]
    page = store.get_text(f"{report_prefix(settings, DS)}/{REPORT_HTML}")
    assert "Read first:" in page and "0 of 120" in page
    assert replay.summary_text(report).startswith("WARNING: no impression of this day")


def test_an_impression_written_again_counts_once(warehouse_url):
    engine = make_engine(warehouse_url)
    with engine.begin() as conn:
        run_sql(conn, "ddl/warehouse.sql")
        conn.execute(sa.text("DELETE FROM impressions"))
        rows = [(1, 7, 100, T0, 0, 0)] * 3 + [(1, 7, 101, T0, 0, 0), (1, 7, 101, T0 + 5, 1, 0)]
        conn.execute(sa.text("INSERT INTO impressions (request_id, user_id, author_id, ts, "
                             "clicked, gifted) VALUES (:r, :u, :a, :t, :c, :g)"),
                     [dict(zip("ruatcg", r, strict=True)) for r in rows])
    with engine.connect() as conn:
        got = fetch_arrow(conn, "replay/select_impressions.sql",
                          {"start_ms": T0 - 3_600_000, "end_ms": T0 + 82_800_000},
                          schema=IMPRESSIONS_SCHEMA).to_pylist()
    engine.dispose()
    assert [(r["author_id"], r["ts"], r["clicked"]) for r in got] == [(100, T0, 0), (101, T0, 1)]
