"""An OpenTelemetry SDK pipeline read back in memory, and a rindle app instrumented on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otelkit import Photo, Pipeline
from tests.apps import MakeApp

from rindle_otel import instrument


@pytest.fixture
def pipeline(make_app: MakeApp) -> Iterator[Pipeline]:
    """A :class:`Rindle` (both dialects) exporting to an in-memory SDK pipeline."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    app = make_app(profiles=[Photo])
    otel = instrument(app, tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield Pipeline(app, otel, exporter, reader)
    otel.uninstrument()
    meter_provider.shutdown()
    tracer_provider.shutdown()
