"""Who is live when (mspa_tasks.live), read from the warehouse's live_rooms."""

from __future__ import annotations

import sqlalchemy as sa

from mspa_tasks.live import live_rooms
from mspa_tasks.warehouse import make_engine, run_sql

H = 3_600_000


def _warehouse(tmp_path, rooms):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        run_sql(conn, "ddl/warehouse.sql")
        for row in rooms:
            conn.execute(sa.text("INSERT INTO live_rooms VALUES (:l, :a, :s, :e)"),
                         dict(zip("lase", row, strict=True)))
    engine.dispose()
    return url


def test_an_author_is_live_while_one_of_its_rooms_is_open(tmp_path):
    url = _warehouse(tmp_path, [(1, 10, 0, 2 * H), (2, 11, H, 30 * H),  # crosses midnight
                                (3, 10, 5 * H, 6 * H), (4, 12, 40 * H, 41 * H)])
    rooms = live_rooms(url, 0, 24 * H)
    assert rooms.live_at(90 * 60_000).tolist() == [10, 11]
    assert rooms.live_at(3 * H).tolist() == [11]
    assert rooms.live_at(int(5.5 * H)).tolist() == [10, 11]
    assert rooms.live_at(23 * H).tolist() == [11]
    assert 12 not in rooms.author  # outside the window: not read


def test_a_warehouse_that_does_not_say_who_is_live_gives_none(tmp_path):
    assert live_rooms(_warehouse(tmp_path, []), 0, 24 * H) is None  # empty table
    other = f"sqlite:///{tmp_path / 'other.db'}"
    engine = make_engine(other)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE tip_events (x INTEGER)"))
    engine.dispose()
    assert live_rooms(other, 0, 24 * H) is None  # no live_rooms table at all
