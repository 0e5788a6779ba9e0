"""Table-driven cases for the in-memory rules: duplicates and the paper's user filters."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mspa_tasks.config import IngestConfig
from mspa_tasks.days import DAY_MS
from mspa_tasks.ingest import CANDIDATES_SCHEMA, apply_filters, mark_duplicates


def _events(rows: list[tuple]) -> pa.Table:
    """rows: (load_seq, event_id, user_id, author_id, day, reason)."""
    cols = list(zip(*rows, strict=True))
    return pa.table({
        "load_seq": cols[0], "event_id": cols[1], "user_id": cols[2], "author_id": cols[3],
        "live_id": [0] * len(rows), "ts": [d * DAY_MS + s for s, d in zip(cols[0], cols[4],
                                                                         strict=True)],
        "amount": [1.0] * len(rows), "ingested_at": [0] * len(rows), "reason": cols[5],
    }, schema=CANDIDATES_SCHEMA)


@pytest.mark.parametrize(("rows", "expected"), [
    # the copy with the higher load_seq is the duplicate, whatever the row order
    ([(2, 10, 1, 1, 0, None), (1, 10, 1, 1, 0, None)], ["duplicate_event", None]),
    # an earlier rejected copy still makes the later one a duplicate
    ([(1, 10, 1, 1, 0, "invalid_amount"), (2, 10, 1, 1, 0, None)],
     ["invalid_amount", "duplicate_event"]),
    # a rejected later copy keeps its own reason
    ([(1, 10, 1, 1, 0, None), (2, 10, 1, 1, 0, "unknown_author")], [None, "unknown_author"]),
    # null event ids are never grouped together
    ([(1, None, 1, 1, 0, "null_key"), (2, None, 1, 1, 0, "null_key"), (3, 0, 1, 1, 0, None)],
     ["null_key", "null_key", None]),
    ([(1, 10, 1, 1, 0, None), (2, 11, 1, 1, 0, None), (3, 10, 1, 1, 0, None),
      (4, 10, 1, 1, 0, None)], [None, None, "duplicate_event", "duplicate_event"]),
])
def test_mark_duplicates(rows, expected):
    assert mark_duplicates(_events(rows)).column("reason").to_pylist() == expected


CFG = IngestConfig(min_authors=3, min_tip_days=2)


def test_user_filters_table():
    rows = [
        # user 1: 3 authors over 2 days -> kept (4 events)
        (1, 1, 1, 100, 0, None), (2, 2, 1, 101, 0, None), (3, 3, 1, 102, 1, None),
        (4, 4, 1, 100, 1, None),
        # user 2: 2 authors -> few_authors
        (5, 5, 2, 100, 0, None), (6, 6, 2, 101, 3, None),
        # user 3: 3 authors on one day -> low_frequency
        (7, 7, 3, 100, 5, None), (8, 8, 3, 101, 5, None), (9, 9, 3, 102, 5, None),
        # user 4: 3 authors over 2 days, but one is a dropped author -> few_authors (2 kept)
        (10, 10, 4, 100, 0, None), (11, 11, 4, 101, 1, None), (12, 12, 4, 999, 2, None),
        # user 5: only tips to a dropped author -> few_authors with zero counts
        (13, 13, 5, 999, 0, None),
        # invalid rows never count
        (14, 14, 2, 102, 4, "invalid_amount"),
    ]
    result = apply_filters(_events(rows), np.array([100, 101, 102]), CFG)
    assert result.kept.column("event_id").to_pylist() == [1, 2, 3, 4]
    assert result.dropped_users.to_pylist() == [
        {"user_id": 2, "reason": "few_authors", "n_authors": 2, "n_tip_days": 2, "n_tips": 2},
        {"user_id": 3, "reason": "low_frequency", "n_authors": 3, "n_tip_days": 1, "n_tips": 3},
        {"user_id": 4, "reason": "few_authors", "n_authors": 2, "n_tip_days": 2, "n_tips": 2},
        {"user_id": 5, "reason": "few_authors", "n_authors": 0, "n_tip_days": 0, "n_tips": 0},
    ]
    assert result.filtered == {"author_dropped": 2, "user_dropped": 7}


def test_kept_events_are_in_session_order():
    rows = [(3, 3, 1, 102, 2, None), (1, 1, 1, 100, 0, None), (2, 2, 1, 101, 1, None)]
    kept = apply_filters(_events(rows), np.array([100, 101, 102]), CFG).kept
    assert kept.column("event_id").to_pylist() == [1, 2, 3]


def test_empty_window():
    result = apply_filters(CANDIDATES_SCHEMA.empty_table(), np.array([1]), CFG)
    assert result.kept.num_rows == 0 and result.dropped_users.num_rows == 0
