"""Helpers for the rindle-otel tests: a small profile, an in-memory SDK pipeline for an app,
and its reader."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rindle import Delivery, Profile, Rindle, variants
from rindle_otel import Instrumentation, instrument


class Photo(Profile):
    name = "photo"
    allow_mime = ("image/jpeg",)
    max_bytes = 64 * 1024
    variants = {"thumb": variants.Image(mode="fill", width=16, height=16, format="webp")}
    delivery = Delivery(public=False, signed_url_ttl=600)


#: The queues a job can be on in these apps (rindle's five; no test kind adds one).
QUEUES = ("maintenance", "process", "promote", "provider", "purge")


def depth(**waiting: int) -> dict[tuple[tuple[str, Any], ...], Any]:
    """The ``rindle.queue.depth`` points expected when ``waiting`` jobs (by queue) wait and
    none executes: every queue reports both states, 0 when idle."""
    out: dict[tuple[tuple[str, Any], ...], Any] = {}
    for queue in QUEUES:
        out[(("queue", queue), ("state", "executing"))] = 0
        out[(("queue", queue), ("state", "waiting"))] = waiting.get(queue, 0)
    return out


@dataclass
class Pipeline:
    """The app, its instrumentation and what the SDK recorded."""

    app: Rindle
    otel: Instrumentation
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans (named ``name``), in the order they ended."""
        return [s for s in self.exporter.get_finished_spans() if name in (None, s.name)]

    def points(self, metric: str) -> dict[tuple[tuple[str, Any], ...], Any]:
        """Attributes (sorted items) -> value (sum, gauge value, or histogram count) now."""
        out: dict[tuple[tuple[str, Any], ...], Any] = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name != metric:
                        continue
                    for p in m.data.data_points:
                        key = tuple(sorted((p.attributes or {}).items()))
                        out[key] = getattr(p, "value", None) if hasattr(p, "value") else p.count
        return out


@contextmanager
def exporting(app: Rindle) -> Iterator[Pipeline]:
    """``app`` instrumented on a fresh in-memory SDK pipeline (span exporter, metric reader);
    uninstrumented and the providers shut down on exit."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    otel = instrument(app, tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Pipeline(app, otel, exporter, reader)
    finally:
        otel.uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()
