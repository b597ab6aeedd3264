"""Progress lines on stderr for long passes, only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Counts work and redraws one status line at most a few times a second."""

    def __init__(self, label: str, *, total: int | None = None, stream: TextIO | None = None,
                 enabled: bool | None = None, interval: float = 0.2) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._interval = interval
        self._last = 0.0
        self._start = time.monotonic()

    def advance(self, n: int = 1, **counters: int) -> None:
        """Record ``n`` more items; ``counters`` are shown beside the count."""
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last >= self._interval:
            self._last = now
            self._draw(counters)

    def _draw(self, counters: dict[str, int]) -> None:
        total = f"/{self.total}" if self.total is not None else ""
        rate = self.done / max(time.monotonic() - self._start, 1e-6)
        extra = " ".join(f"{k}={v}" for k, v in counters.items())
        self.stream.write(f"\r{self.label}: {self.done}{total} ({rate:,.0f}/s) {extra}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        """Finish the line (terminal only)."""
        if self.enabled:
            self._draw({})
            self.stream.write("\n")
            self.stream.flush()
