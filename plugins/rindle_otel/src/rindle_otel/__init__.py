"""rindle-otel: rindle's telemetry events as OpenTelemetry spans and metrics."""

from rindle_otel import _rindle_core  # noqa: F401  (first: is this the rindle media library?)
from rindle_otel.bridge import (
    METRICS,
    REDACTED,
    Instrumentation,
    OtelBridge,
    instrument,
    redact_attribute,
)

__all__ = ["METRICS", "REDACTED", "Instrumentation", "OtelBridge", "instrument",
           "redact_attribute"]
__version__ = "0.1.0"
