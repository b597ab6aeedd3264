"""Telemetry: named events with numeric measurements and low-cardinality metadata.

Event names are dotted strings (``rindle.asset.state_change``). Every event reaches the
handlers attached with :meth:`Telemetry.attach` and the ``rindle_event`` plugin hook.
A failing handler is logged and detached from nothing: it never breaks the caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Handler", "Telemetry", "redact_id", "redact_url"]

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any], dict[str, Any]], None]


def redact_id(value: object) -> str | None:
    """Return a provider or object id reduced to ``"..."`` plus its last four characters.

    ``None`` stays ``None``; ids shorter than four characters become ``"...redacted"``.
    """
    if value is None:
        return None
    text = str(value)
    if len(text) < 4:
        return "...redacted"
    return "..." + text[-4:]


def redact_url(url: str) -> str:
    """Return a database or service URL fit to print: the password and secret query
    parameters shown as ``***``; a URL that cannot be parsed is never echoed.

    The same as :func:`rindle.database.redact_url`, kept here for existing importers.
    """
    from rindle.database import redact_url as _redact_url

    return _redact_url(url)


class Telemetry:
    """Dispatches events to attached handlers and to the plugin hook."""

    def __init__(self, hook_caller: Callable[..., Any] | None = None) -> None:
        self._handlers: list[Handler] = []
        self._lock = threading.Lock()
        self._hook_caller = hook_caller

    def attach(self, handler: Handler) -> Callable[[], None]:
        """Attach ``handler(event, measurements, metadata)``; the returned callable detaches it."""
        with self._lock:
            self._handlers = [*self._handlers, handler]

        def detach() -> None:
            with self._lock:
                self._handlers = [h for h in self._handlers if h is not handler]

        return detach

    @property
    def listening(self) -> bool:
        """Whether any handler or ``rindle_event`` implementation would receive an event.

        Hot paths check it once per batch to skip building events nobody reads.
        """
        if self._handlers:
            return True
        impls = getattr(self._hook_caller, "get_hookimpls", None)
        return self._hook_caller is not None and (impls is None or bool(impls()))

    def emit(
        self,
        event: str,
        measurements: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Deliver one event to every handler and to ``rindle_event`` implementations."""
        meas = dict(measurements or {})
        meta = dict(metadata or {})
        for handler in self._handlers:
            try:
                handler(event, dict(meas), dict(meta))
            except Exception:
                log.exception("telemetry handler %r failed on %s", handler, event)
        if self._hook_caller is not None:
            try:
                self._hook_caller(event=event, measurements=dict(meas), metadata=dict(meta))
            except Exception:
                log.exception("rindle_event hook failed on %s", event)
