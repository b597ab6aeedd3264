"""rindle telemetry events as OpenTelemetry spans and metrics.

:class:`OtelBridge` receives every event through the ``rindle_event`` hook (see
``guides/plugins.md``) and turns it into telemetry an OpenTelemetry pipeline understands:

* ``<prefix>.start`` opens a span named ``<prefix>`` (``rindle.job``, ``rindle.upload``,
  ``rindle.repair``, ``rindle.provider.ingest``); the matching ``<prefix>.stop`` on the
  same thread ends it, so the span lasts exactly as long as the work. ``<prefix>.exception``
  marks it failed (and ends it, except for a job, whose ``stop`` always follows). A job's
  end also ends what was opened inside it and never ended (``rindle.unfinished``). A
  ``stop`` without an open ``start`` becomes a span of its own, as long as its
  ``duration_ms``/``duration_us``/``duration`` (seconds) measurement says.
* Every other event becomes an event on the innermost open span of the thread (a state
  change during a job lands on that job's span), or, with no open span, a zero-length span.
* Metrics: see :data:`METRICS`. The two gauges read the database through
  ``app.ops.runtime_status()`` when a metric reader collects.

Attributes are the event's metadata as ``rindle.<key>`` and its measurements as
``rindle.measurement.<key>``, after :func:`redact_attribute`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Observation
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from rindle import hookimpl
from rindle.database import is_secret_parameter
from rindle.telemetry import redact_id, redact_url

if TYPE_CHECKING:
    from rindle import Rindle

__all__ = ["METRICS", "REDACTED", "Instrumentation", "OtelBridge", "instrument",
           "redact_attribute"]

log = logging.getLogger(__name__)

SCOPE = "rindle_otel"
REDACTED = "***"
#: Metadata keys whose values are never exported, besides every name
#: :func:`rindle.database.is_secret_parameter` calls secret (password, token, secret, ...).
SECRET_KEYS = frozenset({"signature", "sig", "authorization", "cookie", "session_uri",
                         "private_key", "private_key_pem", "api_key", "key_pair_id"})
#: Secret values at least this long are also scrubbed from the event's other values.
MIN_SECRET_CHARS = 6
#: The longest string attribute value exported (longer ones are cut).
MAX_VALUE_CHARS = 256
#: Open spans kept per thread; a deeper stack ends its oldest span (marked unfinished).
MAX_OPEN_SPANS = 32

#: Every instrument, its unit and what it counts (the guide's table).
METRICS: dict[str, tuple[str, str]] = {
    "rindle.job.duration": ("ms", "wall time of one job run, by queue, kind and outcome"),
    "rindle.job.outcomes": ("1", "job runs by queue, kind and outcome (completed, "
                                 "retryable, discarded, cancelled)"),
    "rindle.uploads": ("1", "uploads stored, by profile and adapter"),
    "rindle.upload.bytes": ("By", "bytes of stored uploads, by profile and adapter"),
    "rindle.upload.rejections": ("1", "uploads refused by policy, by profile, adapter and code"),
    "rindle.asset.quarantined": ("1", "assets quarantined, by profile and reason"),
    "rindle.state_changes": ("1", "persisted state transitions, by entity, from and to"),
    "rindle.variant.duration": ("ms", "time to render one variant, by profile, variant "
                                      "and outcome"),
    # the gauges count in annotation units ("{job}"): a gauge in "1" is a ratio to the
    # OpenTelemetry collector's Prometheus naming, which would call it ..._ratio
    "rindle.queue.depth": ("{job}", "jobs waiting or executing now, by queue and state "
                                    "(every queue a job can be on; 0 when idle)"),
    "rindle.variants": ("{variant}", "variants now in each state, by state"),
}

#: Span prefixes whose ``.exception`` does not end the span (a ``.stop`` always follows).
_STOP_FOLLOWS_EXCEPTION = frozenset({"rindle.job"})
#: Span prefixes whose end also ends the spans opened inside them on the thread and still
#: open (marked ``rindle.unfinished``): a job run is bounded by its thread's run. Any other
#: span ends alone, as an upload's or an operation's may end after later work began
#: (inside ``app.bind`` its stop waits for the host's commit or rollback).
_ENDS_INNER = frozenset({"rindle.job"})
#: Job outcomes that mark the job's span failed.
_FAILED_OUTCOMES = frozenset({"retryable", "discarded"})
_DURATIONS = (("duration_ms", 1_000_000), ("duration_us", 1_000), ("duration", 1_000_000_000))


def redact_attribute(key: str, value: object) -> AttributeValue | None:
    """The exportable form of one metadata or measurement value, or ``None`` to drop it.

    Promises: a secret-named key (see :data:`SECRET_KEYS` and
    :func:`rindle.database.is_secret_parameter`) exports ``"***"``; an id (``id`` or a
    key ending in ``_id``) exports at most its last four characters (:func:`redact_id`);
    a string holding a URL exports :func:`redact_url`'s form (password and secret query
    values as ``***``); other strings are cut at :data:`MAX_VALUE_CHARS`. (The bridge also
    replaces, in every value of an event, the secrets that event carries elsewhere.) Numbers and
    booleans pass as they are; ``None`` is dropped; anything else exports as ``str``.
    """
    if value is None:
        return None
    lowered = key.lower()
    if lowered in SECRET_KEYS or is_secret_parameter(lowered):
        return REDACTED
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    if lowered == "id" or lowered.endswith("_id"):
        return text if text.startswith("...") and len(text) <= 11 else redact_id(text)
    if "://" in text:
        text = redact_url(text)
    return text[:MAX_VALUE_CHARS]


def _secret_values(metadata: Mapping[str, Any]) -> list[str]:
    """The secrets one event carries (secret-named values, secret URL query values), at
    least :data:`MIN_SECRET_CHARS` long, longest first: scrubbed from its other values."""
    found: set[str] = set()
    for key, value in metadata.items():
        if not isinstance(value, str):
            continue
        if key.lower() in SECRET_KEYS or is_secret_parameter(key):
            found.add(value)
        elif "://" in value:
            for name, param in parse_qsl(urlsplit(value).query, keep_blank_values=True):
                if name.lower() in SECRET_KEYS or is_secret_parameter(name):
                    found.add(param)
    return sorted((s for s in found if len(s) >= MIN_SECRET_CHARS), key=len, reverse=True)


def _scrubbed(value: AttributeValue, secrets: list[str]) -> AttributeValue:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
    return value


def _attributes(measurements: Mapping[str, Any], metadata: Mapping[str, Any]
                ) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    secrets = _secret_values(metadata)
    for key, value in measurements.items():
        if key != "system_time":
            redacted = redact_attribute(key, value)
            if redacted is not None:
                out[f"rindle.measurement.{key}"] = _scrubbed(redacted, secrets)
    for key, value in metadata.items():
        redacted = redact_attribute(key, value)
        if redacted is not None:
            out[f"rindle.{key}"] = _scrubbed(redacted, secrets)
    return out


def _pick(metadata: Mapping[str, Any], *keys: str) -> dict[str, AttributeValue]:
    """Low-cardinality metric attributes (redacted like span attributes)."""
    out: dict[str, AttributeValue] = {}
    secrets = _secret_values(metadata)
    for key in keys:
        value = redact_attribute(key, metadata.get(key))
        if value is not None:
            out[key] = _scrubbed(value, secrets)
    return out


def _duration_ns(measurements: Mapping[str, Any]) -> int | None:
    for key, scale in _DURATIONS:
        value = measurements.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return max(int(value * scale), 0)
    return None


@dataclass
class _Open:
    prefix: str
    span: Span
    failed: bool = False


@dataclass
class _Stack(threading.local):
    spans: list[_Open] = field(default_factory=list)


class OtelBridge:
    """Turns rindle events into spans and metric points; a pluggy plugin (its
    :meth:`rindle_event` is a ``rindle_event`` hook implementation).

    ``tracer_provider``/``meter_provider`` default to OpenTelemetry's global ones. Never
    raises out of :meth:`rindle_event` (rindle logs a failing hook and carries on anyway).
    """

    def __init__(self, *, tracer_provider: trace.TracerProvider | None = None,
                 meter_provider: metrics.MeterProvider | None = None) -> None:
        from rindle_otel import __version__

        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        self.meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self._stack = _Stack()
        def counter(name: str) -> Counter:
            return self.meter.create_counter(name, METRICS[name][0], METRICS[name][1])

        def histogram(name: str) -> Histogram:
            return self.meter.create_histogram(name, METRICS[name][0], METRICS[name][1])

        self.job_duration = histogram("rindle.job.duration")
        self.job_outcomes = counter("rindle.job.outcomes")
        self.uploads = counter("rindle.uploads")
        self.upload_bytes = counter("rindle.upload.bytes")
        self.rejections = counter("rindle.upload.rejections")
        self.quarantined = counter("rindle.asset.quarantined")
        self.state_changes = counter("rindle.state_changes")
        self.variant_duration = histogram("rindle.variant.duration")

    # --- the hook ---------------------------------------------------------------------------

    @hookimpl
    def rindle_event(self, event: str, measurements: dict[str, Any],
                     metadata: dict[str, Any]) -> None:
        """Record one rindle event as span work and metric points."""
        try:
            self._spans(event, measurements, metadata)
            self._metrics(event, measurements, metadata)
        except Exception:  # telemetry must never break the work it watches
            log.exception("rindle_otel could not record %s", event)

    # --- spans ------------------------------------------------------------------------------

    def _spans(self, event: str, measurements: Mapping[str, Any],
               metadata: Mapping[str, Any]) -> None:
        prefix, _, phase = event.rpartition(".")
        now = time.time_ns()
        at = measurements.get("system_time")
        stamp = at if isinstance(at, int) and not isinstance(at, bool) else now
        attrs = _attributes(measurements, metadata)
        if phase == "start" and prefix and not self._unpaired(prefix, metadata):
            self._open(prefix, stamp, attrs)
        elif phase in ("stop", "exception") and prefix:
            self._close(prefix, phase, now, measurements, metadata, attrs)
        elif self._stack.spans:
            self._stack.spans[-1].span.add_event(event, attrs, timestamp=stamp)
        else:
            span = self.tracer.start_span(event, start_time=stamp, attributes=attrs)
            span.end(end_time=stamp)

    @staticmethod
    def _unpaired(prefix: str, metadata: Mapping[str, Any]) -> bool:
        # a direct upload starts in one request (initiate) and stops in another (verify):
        # nothing joins the two on one thread, so the start stays a point in time
        return prefix == "rindle.upload" and "strategy" in metadata

    def _parent(self) -> otel_context.Context | None:
        if self._stack.spans:
            return trace.set_span_in_context(self._stack.spans[-1].span)
        return None  # the caller's current context (a host's request span, say)

    def _open(self, prefix: str, stamp: int, attrs: dict[str, AttributeValue]) -> None:
        stack = self._stack.spans
        if len(stack) >= MAX_OPEN_SPANS:
            stale = stack.pop(0)
            stale.span.set_attribute("rindle.unfinished", True)
            stale.span.end()
        span = self.tracer.start_span(prefix, context=self._parent(), start_time=stamp,
                                      attributes=attrs)
        stack.append(_Open(prefix, span))

    def _close(self, prefix: str, phase: str, now: int, measurements: Mapping[str, Any],
               metadata: Mapping[str, Any], attrs: dict[str, AttributeValue]) -> None:
        stack = self._stack.spans
        index = next((i for i in range(len(stack) - 1, -1, -1) if stack[i].prefix == prefix),
                     None)
        if index is None:  # no start seen on this thread: a span from the duration alone
            took = _duration_ns(measurements) or 0
            span = self.tracer.start_span(prefix, context=self._parent(),
                                          start_time=now - took, attributes=attrs)
            if phase == "exception":
                span.set_status(Status(StatusCode.ERROR, self._why(metadata)))
            elif metadata.get("outcome") in _FAILED_OUTCOMES:
                span.set_status(Status(StatusCode.ERROR, str(metadata["outcome"])))
            span.end(end_time=now)
            return
        while prefix in _ENDS_INNER and len(stack) > index + 1:  # never reported its end
            inner = stack.pop()
            inner.span.set_attribute("rindle.unfinished", True)
            inner.span.end(end_time=now)
        entry = stack[index]
        span = entry.span
        span.set_attributes(attrs)
        if phase == "exception":
            entry.failed = True
            span.set_status(Status(StatusCode.ERROR, self._why(metadata)))
            span.add_event(f"{prefix}.exception", attrs, timestamp=now)
            if prefix in _STOP_FOLLOWS_EXCEPTION:
                return
        elif not entry.failed and metadata.get("outcome") in _FAILED_OUTCOMES:
            span.set_status(Status(StatusCode.ERROR, str(metadata["outcome"])))
        stack.pop(index)
        span.end(end_time=now)

    @staticmethod
    def _why(metadata: Mapping[str, Any]) -> str:
        for key in ("error", "reason", "kind", "result"):
            value = redact_attribute(key, metadata.get(key))
            if value is not None:
                return str(value)
        return "exception"

    # --- metrics ----------------------------------------------------------------------------

    def _metrics(self, event: str, measurements: Mapping[str, Any],
                 metadata: Mapping[str, Any]) -> None:
        if event == "rindle.job.stop":
            attrs = _pick(metadata, "queue", "kind", "outcome")
            self.job_outcomes.add(1, attrs)
            took = measurements.get("duration_ms")
            if isinstance(took, int | float):
                self.job_duration.record(float(took), attrs)
        elif event == "rindle.upload.stop":
            attrs = _pick(metadata, "profile", "adapter")
            self.uploads.add(1, attrs)
            size = measurements.get("bytes")
            if isinstance(size, int) and size >= 0:
                self.upload_bytes.add(size, attrs)
        elif event == "rindle.upload.rejected":
            self.rejections.add(1, _pick(metadata, "profile", "adapter", "code"))
        elif event == "rindle.asset.quarantined":
            self.quarantined.add(1, _pick(metadata, "profile", "reason"))
        elif event == "rindle.variant.processed":
            took = measurements.get("duration_ms")
            if isinstance(took, int | float):
                self.variant_duration.record(float(took),
                                             _pick(metadata, "profile", "variant", "outcome"))
        elif event.endswith(".state_change"):
            entity = event.split(".")[1]
            self.state_changes.add(1, {"entity": entity, **_pick(metadata, "from", "to",
                                                                 "profile")})


class Instrumentation:
    """An :class:`OtelBridge` wired to one app: registered for the ``rindle_event`` hook,
    plus the two gauges that read that app's database (one bounded ``runtime_status`` report
    per gauge per collection). :meth:`uninstrument` undoes it."""

    def __init__(self, app: Rindle, bridge: OtelBridge) -> None:
        self.app = app
        self.bridge = bridge
        self._active = True
        app.pm.register(bridge, name=f"rindle_otel-{id(bridge)}")
        for name, callback in (("rindle.queue.depth", self._queue_depth),
                               ("rindle.variants", self._variants)):
            bridge.meter.create_observable_gauge(name, callbacks=[callback],
                                                 unit=METRICS[name][0],
                                                 description=METRICS[name][1])

    def uninstrument(self) -> None:
        """Stop receiving events; the gauges report nothing from now on."""
        if self._active:
            self._active = False
            self.app.pm.unregister(self.bridge)

    def _observe(self, read: Callable[[Any], Iterable[Observation]]) -> list[Observation]:
        if not self._active:
            return []
        try:
            # each gauge reads a fresh report: never a figure older than its collection
            return list(read(self.app.ops.runtime_status(limit=1)))
        except Exception as exc:  # a gauge that cannot read the database reports nothing
            log.warning("rindle_otel: could not read runtime status: %s", type(exc).__name__)
            return []

    def _queue_depth(self, options: CallbackOptions) -> Iterable[Observation]:
        def read(status: Any) -> Iterable[Observation]:
            # every queue a job can be on, idle ones as 0: a series never vanishes
            idle = {"waiting": 0, "executing": 0}
            for queue in sorted({*self.app.jobs.queue_names(), *status.queues}):
                info = status.queues.get(queue, idle)
                yield Observation(info["waiting"], {"queue": queue, "state": "waiting"})
                yield Observation(info["executing"], {"queue": queue, "state": "executing"})

        return self._observe(read)

    def _variants(self, options: CallbackOptions) -> Iterable[Observation]:
        def read(status: Any) -> Iterable[Observation]:
            for state, count in sorted(status.variants_by_state.items()):
                yield Observation(count, {"state": state})

        return self._observe(read)


def instrument(app: Rindle, *, tracer_provider: trace.TracerProvider | None = None,
               meter_provider: metrics.MeterProvider | None = None) -> Instrumentation:
    """Export ``app``'s telemetry to OpenTelemetry; returns the :class:`Instrumentation`.

    Spans go to ``tracer_provider`` and metric points to ``meter_provider`` (OpenTelemetry's
    global providers when omitted). Call once per app.
    """
    bridge = OtelBridge(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return Instrumentation(app, bridge)
