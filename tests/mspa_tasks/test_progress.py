"""Progress lines for long loops (mspa_tasks.progress)."""

from __future__ import annotations

import logging

from mspa_tasks import progress
from mspa_tasks.progress import Progress


def test_progress_logs_at_most_every_interval_and_always_at_the_end(monkeypatch, caplog):
    clock = iter([0.0, 1.0, 2.0, 12.0, 13.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        bar = Progress("compose users", 40, log, unit="texts", every_s=10)  # t=0
        bar.update(10)  # t=1: too soon
        bar.update(10)  # t=2: too soon
        bar.update(10)  # t=12: due
        bar.update(10)  # t=13: the end, logged although only 1 s later
    assert [r.getMessage() for r in caplog.records] == [
        "compose users: 30/40 texts (75%), 2.50/s, ETA 4s",
        "compose users: 40/40 texts (100%), 3.08/s, ETA 0s"]
