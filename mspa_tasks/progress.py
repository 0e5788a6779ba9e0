"""Progress lines for long loops: done/total, rate and ETA, at most every ``every_s`` seconds."""

from __future__ import annotations

import logging
import time


class Progress:
    def __init__(self, label: str, total: int, logger: logging.Logger, unit: str = "items",
                 every_s: float = 10.0) -> None:
        self.label, self.total, self.log, self.unit, self.every_s = label, total, logger, unit, every_s
        self.done = 0
        self.started = self._last = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            elapsed = max(now - self.started, 1e-9)
            rate = self.done / elapsed
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            self.log.info("%s: %d/%d %s (%.0f%%), %.2f/s, ETA %.0fs", self.label, self.done,
                          self.total, self.unit, 100 * self.done / max(self.total, 1), rate, eta)
