"""Reports every operation returns, and the repair telemetry envelope."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rindle.telemetry import Telemetry

__all__ = ["Report", "repair_span"]


@dataclasses.dataclass
class Report:
    """Base of every operation report: counters as fields, ``to_dict()`` for JSON."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (nested dataclasses become dicts)."""
        return dataclasses.asdict(self)

    @property
    def exit_code(self) -> int:
        """0 when the pass was clean, 1 when infrastructure errors happened."""
        return 1 if getattr(self, "errors", 0) else 0


@contextmanager
def repair_span(telemetry: Telemetry, operation: str, *, scope: str, dry_run: bool
                ) -> Iterator[dict[str, Any]]:
    """Emit ``rindle.repair.start`` / ``stop`` / ``exception`` around an operation.

    Metadata is exactly ``operation``, ``scope``, ``result``, ``dry_run`` (low cardinality).
    The caller sets ``span["result"]`` (``ok``, ``partial``, ``noop``...) and may add
    numeric ``span["measurements"]``.
    """
    span: dict[str, Any] = {"result": "ok", "measurements": {}}
    meta = {"operation": operation, "scope": scope, "dry_run": dry_run}
    start = time.monotonic()
    telemetry.emit("rindle.repair.start", {"system_time": time.time_ns()},
                   {**meta, "result": "started"})
    try:
        yield span
    except Exception:
        telemetry.emit("rindle.repair.exception",
                       {"duration_us": _us(start), "system_time": time.time_ns()},
                       {**meta, "result": "exception"})
        raise
    measurements = {"duration_us": _us(start), **span["measurements"]}
    telemetry.emit("rindle.repair.stop", measurements, {**meta, "result": span["result"]})


def _us(start: float) -> int:
    return max(1, int((time.monotonic() - start) * 1_000_000))
