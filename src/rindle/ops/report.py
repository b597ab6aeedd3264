"""Reports every operation returns, and the repair telemetry envelope."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rindle.errors import RindleError

if TYPE_CHECKING:
    from rindle.telemetry import Telemetry

__all__ = ["Report", "failure_code", "log_failure", "repair_span"]


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
def repair_span(telemetry: Telemetry, operation: str, *, scope: str, dry_run: bool,
                when_committed: Callable[[Callable[[], object]], None] | None = None,
                if_rolled_back: Callable[[Callable[[], object]], None] | None = None,
                ) -> Iterator[dict[str, Any]]:
    """Emit ``rindle.repair.start`` / ``stop`` / ``exception`` around an operation.

    Metadata is exactly ``operation``, ``scope``, ``result``, ``dry_run`` (low cardinality).
    The caller sets ``span["result"]`` (``ok``, ``partial``, ``noop``...) and may add
    numeric ``span["measurements"]``. ``stop`` reports work done, so it goes through
    ``when_committed`` (the app's ``db.when_committed``: inside ``app.bind`` it waits for
    the host's commit and is dropped on its rollback); without one it is emitted at once.
    ``if_rolled_back`` (the app's ``db.if_rolled_back``) ends the operation on the host's
    rollback instead: ``exception`` with ``result`` ``rolled_back``. So every ``start`` is
    followed by exactly one ``stop`` or ``exception``.
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
    stop = functools.partial(telemetry.emit, "rindle.repair.stop", measurements,
                             {**meta, "result": span["result"]})
    if when_committed is None:
        stop()
        return
    when_committed(stop)
    if if_rolled_back is not None:
        if_rolled_back(functools.partial(
            telemetry.emit, "rindle.repair.exception",
            {"duration_us": _us(start), "system_time": time.time_ns()},
            {**meta, "result": "rolled_back"}))


def failure_code(exc: BaseException) -> str:
    """The stable code naming a failure: ``exc.code`` for a rindle error, else the
    exception's type name (``PermissionError``, ``TimeoutError``...)."""
    return exc.code if isinstance(exc, RindleError) else type(exc).__name__


def log_failure(log: logging.Logger, operation: str, exc: BaseException, what: str,
                ident: object) -> None:
    """Log one counted failure of ``operation`` at WARNING: its stable code and the id of
    the row or key it hit (``what`` says which kind), never the exception's message, so
    no URL, token or credential a backend put in that message reaches the log."""
    code = failure_code(exc)
    log.warning("%s: %s %s failed [%s]", operation, what, ident, code,
                extra={"rindle_operation": operation, "rindle_code": code})


def _us(start: float) -> int:
    return max(1, int((time.monotonic() - start) * 1_000_000))
