"""Attack-style tests: no token, secret, password or full id reaches an exported span,
span event or metric point, whatever metadata an event carries (rindle's own events and a
plugin's). Also the span pairing rules that keep one thread's spans honest."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from opentelemetry.trace import StatusCode
from otelkit import Pipeline

from rindle_otel import REDACTED, redact_attribute

TOKEN = "tok-7Qz9Xw2LmN4pR8sV"
PASSWORD = "pw-Hj3kL9mN2bV5cX"
PROVIDER_ID = "mux-asset-0123456789abcdef"


def _exported(p: Pipeline) -> str:
    """Everything the pipeline exported, as one string to search."""
    parts: list[Any] = []
    for span in p.spans():
        parts.append(span.to_json())
    data = p.reader.get_metrics_data()
    if data is not None:
        parts.append(data.to_json())
    return "\n".join(str(x) for x in parts)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("token", TOKEN, REDACTED),
    ("access_token", TOKEN, REDACTED),
    ("Password", PASSWORD, REDACTED),
    ("secret_key", TOKEN, REDACTED),
    ("session_uri", "https://storage.example/upload?upload_id=abc", REDACTED),
    ("signature", TOKEN, REDACTED),
    ("private_key_pem", "-----BEGIN PRIVATE KEY-----", REDACTED),
    ("asset_id", PROVIDER_ID, "...cdef"),
    ("id", "abc", "...redacted"),
    ("asset_id", "...cdef", "...cdef"),  # already redacted by the core: kept as it is
    ("source", f"postgresql://u:{PASSWORD}@db/x", "postgresql://u:***@db/x"),
    ("source", f"https://x.example/a.jpg?token={TOKEN}", "https://x.example/a.jpg?token=***"),
    ("profile", "photo", "photo"),
    ("count", 3, 3),
    ("dry_run", False, False),
    ("reason", "x" * 257, "x" * 256),
    ("reason", None, None),
])
def test_redact_attribute(key: str, value: object, expected: object) -> None:
    assert redact_attribute(key, value) == expected


def test_secrets_in_event_metadata_never_reach_spans_events_or_metrics(
        pipeline: Pipeline) -> None:
    p = pipeline
    hostile = {"token": TOKEN, "password": PASSWORD, "provider_asset_id": PROVIDER_ID,
               "url": f"https://cdn.example/x.jpg?X-Amz-Signature={TOKEN}&token={TOKEN}",
               "database_url": f"postgresql://rindle:{PASSWORD}@127.0.0.1/db",
               "profile": "photo", "code": "mime_not_allowed", "adapter": "proxied"}
    tel = p.app.telemetry
    tel.emit("rindle.repair.start", {"system_time": 1}, hostile)  # an open span ...
    tel.emit("rindle.asset.quarantined", {"count": 1}, {**hostile, "reason": TOKEN})  # ... event
    tel.emit("rindle.repair.stop", {"duration_us": 5}, hostile)
    tel.emit("rindle.upload.rejected", {"count": 1}, hostile)  # a span and a metric point
    tel.emit("rindle.job.stop", {"duration_ms": 2}, {**hostile, "queue": TOKEN})
    out = _exported(p)
    assert TOKEN not in out.replace("...", "")
    assert PASSWORD not in out
    assert PROVIDER_ID not in out and "...cdef" in out
    assert "postgresql://rindle:***@127.0.0.1/db" in out
    [repair] = p.spans("rindle.repair")
    assert repair.attributes is not None and repair.attributes["rindle.token"] == REDACTED


def test_a_real_signed_url_token_is_not_exported(pipeline: Pipeline) -> None:
    from rindle.testing.lifecycle import jpeg

    p = pipeline
    asset = p.app.upload("photo", jpeg((20, 20)), filename="a.jpg")
    p.app.worker(cron=False).run_until_empty(timeout=60)
    url = p.app.url(asset.id)
    query = url.partition("?")[2]
    assert query, url
    out = _exported(p)
    for part in query.split("&"):
        assert part.partition("=")[2] not in out
    assert str(asset.id) not in out
    assert "test-secret" not in out  # the app's secret_key


def test_stop_without_start_lasts_its_measured_duration(pipeline: Pipeline) -> None:
    p = pipeline
    p.app.telemetry.emit("rindle.media.sweep_orphans.stop", {"duration_ms": 1.5}, {})
    p.app.telemetry.emit("rindle.repair.stop", {"duration_us": 250}, {"result": "ok"})
    p.app.telemetry.emit("rindle.provider.ingest.stop", {"duration": 0.75}, {})
    # a job whose worker died: discarded at claim time, no start on this thread
    p.app.telemetry.emit("rindle.job.stop", {"duration_ms": 0},
                         {"queue": "q", "kind": "k", "outcome": "discarded"})
    sweep, repair, ingest, lost = p.spans()
    assert (lost.status.status_code, lost.status.description) == (StatusCode.ERROR,
                                                                  "discarded")
    assert lost.start_time == lost.end_time
    assert sweep.name == "rindle.media.sweep_orphans"
    assert (sweep.end_time or 0) - (sweep.start_time or 0) == 1_500_000
    assert (repair.end_time or 0) - (repair.start_time or 0) == 250_000
    assert (ingest.end_time or 0) - (ingest.start_time or 0) == 750_000_000


def test_exception_ends_the_span_and_unfinished_inner_spans_are_closed(
        pipeline: Pipeline) -> None:
    p = pipeline
    tel = p.app.telemetry
    tel.emit("rindle.job.start", {"system_time": 1_000}, {"queue": "q", "kind": "k"})
    tel.emit("rindle.provider.ingest.start", {"system_time": 2_000}, {"provider": "mux"})
    tel.emit("rindle.repair.start", {"system_time": 3_000}, {"operation": "o"})
    tel.emit("rindle.repair.exception", {"duration_us": 1}, {"result": "exception"})
    # the ingest never reports its end; the job's stop closes it
    tel.emit("rindle.job.stop", {"duration_ms": 3}, {"queue": "q", "kind": "k",
                                                     "outcome": "completed"})
    repair, ingest, job = p.spans()
    assert (repair.name, repair.status.status_code) == ("rindle.repair", StatusCode.ERROR)
    assert repair.status.description == "exception"
    assert ingest.attributes is not None and ingest.attributes["rindle.unfinished"] is True
    assert job.status.status_code is StatusCode.UNSET
    assert job.start_time == 1_000 and ingest.start_time == 2_000 and repair.start_time == 3_000
    assert repair.parent is not None and repair.parent.span_id == ingest.context.span_id
    assert ingest.parent is not None and ingest.parent.span_id == job.context.span_id


def test_spans_pair_per_thread(pipeline: Pipeline) -> None:
    p = pipeline
    tel = p.app.telemetry
    started = threading.Barrier(2)

    def run(name: str) -> None:
        tel.emit("rindle.job.start", {"system_time": 10}, {"kind": name, "queue": "q"})
        started.wait(timeout=30)  # both jobs are open at once, on two threads
        tel.emit("rindle.job.stop", {"duration_ms": 1}, {"kind": name, "queue": "q",
                                                         "outcome": "completed"})

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    spans = p.spans("rindle.job")
    assert sorted(json.loads(s.to_json())["attributes"]["rindle.kind"] for s in spans) == [
        "a", "b"]
    assert all(s.parent is None for s in spans)


def test_uninstrument_stops_export(pipeline: Pipeline) -> None:
    p = pipeline
    p.otel.uninstrument()
    p.app.telemetry.emit("rindle.delivery.signed", {}, {"profile": "photo"})
    assert p.spans() == []
    assert p.points("rindle.variants") == {}
