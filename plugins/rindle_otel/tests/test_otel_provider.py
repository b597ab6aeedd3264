"""Provider calls end to end: real server-push ingests by rindle-mux against the loopback
Mux of rindle-mux's own suite (its kit, ``muxkit``, with real Basic auth and a real signed
source URL), exported through the OpenTelemetry SDK's in-memory pipeline, on SQLite and
on PostgreSQL (whose URL carries a password here).

One scripted scenario: an upload refused by the profile, two ingests of which the first
meets four HTTP 500s (retried by the client, then by the job), and an idempotent re-run.
It pins the span names, the parent/child tree, every attribute, the status of each span
and every metric the issue lists, with exact values; and that no secret reaches any of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from otelkit import Pipeline, depth, exporting
from plugins.rindle_mux.tests.muxkit import (  # rindle-mux's loopback Mux kit, shared
    OLD_SECRET,
    TOKEN_ID,
    TOKEN_SECRET,
    WEBHOOK_SECRET,
    FakeMux,
    KeyPair,
    keypair,
    make_mux_app,
    mux,
    mux_server,
    ready_clip,
)
from sqlalchemy.engine import make_url

from rindle import UploadRejected
from rindle.streaming.ingest import enqueue_server_push
from rindle.testing.lifecycle import jpeg

# the kit's fixtures, used by this module's tests (imported, not copied)
__all__ = ["keypair", "make_mux_app", "mux", "mux_server"]

DB_PASSWORD = "db-pw-Zq8Rt5Yu1Io3"
INGEST = "rindle.provider.ingest"


@pytest.fixture
def mux_pipeline(make_mux_app: Any, db_url: str) -> Iterator[Pipeline]:
    """An app with rindle-mux and profile ``clip`` exporting to an in-memory pipeline; on
    PostgreSQL its database URL carries :data:`DB_PASSWORD` (the throwaway server trusts
    loopback, so any password connects)."""
    options: dict[str, Any] = {}
    if db_url.startswith("postgresql"):
        options["database_url"] = make_url(db_url).set(password=DB_PASSWORD).render_as_string(
            hide_password=False)
    with exporting(make_mux_app(app_options=options)) as pipeline:
        yield pipeline


def _tree(p: Pipeline) -> list[tuple[ReadableSpan, ReadableSpan]]:
    """Each ingest span with its parent job span, in the order the jobs ended; asserts that
    nothing else was exported as a span and that each job span is a root."""
    spans = p.spans()
    assert [s.name for s in spans][:2] == ["rindle.upload", "rindle.upload.rejected"]
    assert {s.name for s in spans[2:]} == {INGEST, "rindle.job"}
    by_id = {s.context.span_id: s for s in spans}
    pairs = []
    for job in (s for s in spans if s.name == "rindle.job"):
        assert job.parent is None
        [ingest] = [s for s in spans if s.parent is not None
                    and s.parent.span_id == job.context.span_id]
        assert ingest.name == INGEST and ingest.context.trace_id == job.context.trace_id
        assert by_id[ingest.context.span_id] is ingest
        pairs.append((ingest, job))
    return pairs


def _timed(span: ReadableSpan, measurement: str) -> dict[str, Any]:
    """The span's attributes without the measured duration, which must be positive and
    within the span's own start and end."""
    attrs = dict(span.attributes or {})
    took = attrs.pop(f"rindle.measurement.{measurement}")
    assert isinstance(took, float) and took > 0
    assert span.start_time is not None and span.end_time is not None
    assert span.end_time > span.start_time
    return attrs


def _events(span: ReadableSpan) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, dict(e.attributes or {})) for e in span.events]


def test_ingests_are_job_child_spans_with_exact_attributes_and_metrics(
        mux_pipeline: Pipeline, mux: FakeMux, keypair: KeyPair) -> None:
    p = mux_pipeline
    app = p.app
    with pytest.raises(UploadRejected) as refused:
        app.upload("clip", jpeg((20, 20)), filename="not-a-video.jpg")
    assert refused.value.code == "mime_not_allowed"
    first, source = ready_clip(app)
    ready_clip(app)
    assert p.points("rindle.queue.depth") == depth(provider=2)
    assert p.points("rindle.variants") == {(("state", "ready"),): 2}
    for _ in range(4):  # the client's 4 attempts of the first create all fail
        mux.then("POST", "/video/v1/assets", 500, {"error": {"type": "internal"}})
    assert app.jobs.drain(["provider"]) == 2  # one fails (retry scheduled), one creates
    assert app.jobs.drain(["provider"], with_scheduled=True) == 1  # the retry creates
    with app.db.transaction() as s:  # pushed already: the re-run changes nothing
        enqueue_server_push(app, s, first, "web_720p", source.recipe_digest)
    assert app.jobs.drain(["provider"]) == 1
    assert len(mux.calls("POST")) == 6 and len(mux.assets) == 2

    (failed, failed_job), (made, made_job), (retried, retried_job), (again, again_job) = (
        _tree(p))
    base = {"rindle.profile": "clip", "rindle.provider": "mux",
            "rindle.variant_name": "web_720p"}
    tails = sorted("..." + asset_id[-4:] for asset_id in mux.assets)
    # 1. the failing create: the ingest span ends in error with the provider error's code
    assert _timed(failed, "duration") == {**base, "rindle.kind": "error",
                                          "rindle.reason": "provider_unavailable"}
    assert (failed.status.status_code, failed.status.description) == (
        StatusCode.ERROR, "provider_unavailable")
    signed = ("rindle.delivery.signed", {"rindle.profile": "clip", "rindle.adapter": "local",
                                         "rindle.mode": "private", "rindle.served": "variant"})
    to_uploading = ("rindle.provider_asset.state_change", {
        "rindle.profile": "clip", "rindle.provider": "mux", "rindle.from": "pending",
        "rindle.to": "uploading", "rindle.adapter": "unknown"})
    to_processing = ("rindle.provider_asset.state_change", {
        **to_uploading[1], "rindle.from": "uploading", "rindle.to": "processing"})
    assert _events(failed) == [to_uploading, signed, (f"{INGEST}.exception", {
        **base, "rindle.kind": "error", "rindle.reason": "provider_unavailable",
        "rindle.measurement.duration": (failed.attributes or {})["rindle.measurement.duration"]})]
    assert _timed(failed_job, "duration_ms") == {
        "rindle.queue": "provider", "rindle.kind": INGEST, "rindle.outcome": "retryable",
        "rindle.error": "ProviderUnavailable"}
    assert (failed_job.status.status_code, failed_job.status.description) == (
        StatusCode.ERROR, "ProviderUnavailable")
    assert [name for name, _ in _events(failed_job)] == ["rindle.job.exception"]
    # 2. and 3. the creates: the provider's asset id, redacted to its last four characters
    created = {**base, "rindle.result": "created", "rindle.state": "processing"}
    made_attrs, retried_attrs = _timed(made, "duration"), _timed(retried, "duration")
    assert sorted([made_attrs.pop("rindle.asset_id"), retried_attrs.pop("rindle.asset_id")]
                  ) == tails
    assert made_attrs == retried_attrs == created
    assert _events(made) == [to_uploading, signed, to_processing]
    assert _events(retried) == [signed, to_processing]  # the row was uploading already
    # 4. the idempotent re-run: a span of its own, ended by its stop, not by the job's
    again_attrs = _timed(again, "duration")
    assert again_attrs.pop("rindle.asset_id") in tails
    assert again_attrs == {**base, "rindle.result": "unchanged", "rindle.state": "processing"}
    assert "rindle.unfinished" not in again_attrs and _events(again) == []
    for span in (made, retried, again):
        assert span.status.status_code is StatusCode.UNSET
    for job in (made_job, retried_job, again_job):
        assert _timed(job, "duration_ms") == {"rindle.queue": "provider",
                                              "rindle.kind": INGEST,
                                              "rindle.outcome": "completed"}
        assert job.status.status_code is StatusCode.UNSET and job.events == ()

    # metrics, exact
    by_job = {(("kind", INGEST), ("outcome", "completed"), ("queue", "provider")): 3,
              (("kind", INGEST), ("outcome", "retryable"), ("queue", "provider")): 1}
    assert p.points("rindle.job.outcomes") == by_job
    assert p.points("rindle.job.duration") == by_job  # histogram counts
    assert p.points("rindle.upload.rejections") == {
        (("adapter", "proxied"), ("code", "mime_not_allowed"), ("profile", "clip")): 1}
    assert p.points("rindle.uploads") == {}
    assert p.points("rindle.state_changes") == {
        (("entity", "provider_asset"), ("from", "pending"), ("profile", "clip"),
         ("to", "uploading")): 2,
        (("entity", "provider_asset"), ("from", "uploading"), ("profile", "clip"),
         ("to", "processing")): 2}
    assert p.points("rindle.queue.depth") == depth()  # nothing waits: every queue at 0
    assert p.points("rindle.variants") == {(("state", "ready"),): 2}
    # the refused upload: its span ends when the check refuses it (not at some later stop)
    [upload] = p.spans("rindle.upload")
    assert dict(upload.attributes or {}) == {
        "rindle.profile": "clip", "rindle.adapter": "proxied", "rindle.kind": "rejected",
        "rindle.reason": "mime_not_allowed"}
    assert (upload.status.status_code, upload.status.description) == (
        StatusCode.ERROR, "mime_not_allowed")
    assert upload.parent is None and [e.name for e in upload.events] == [
        "rindle.upload.exception"]
    [rejected] = p.spans("rindle.upload.rejected")
    assert rejected.parent is None and rejected.start_time == rejected.end_time
    assert dict(rejected.attributes or {}) == {
        "rindle.measurement.count": 1, "rindle.profile": "clip", "rindle.adapter": "proxied",
        "rindle.code": "mime_not_allowed"}

    # no secret in any span, span event or metric point
    out = "\n".join([s.to_json() for s in p.spans()]
                    + [p.reader.get_metrics_data().to_json()])  # type: ignore[union-attr]
    secrets = [TOKEN_ID, TOKEN_SECRET, WEBHOOK_SECRET, OLD_SECRET, DB_PASSWORD, "test-secret",
               *mux.assets]
    secrets += [line for line in keypair.private_pem.splitlines() if "-----" not in line]
    for call in mux.calls("POST"):  # the signed source URL handed to Mux: its query values
        query = call.body["inputs"][0]["url"].partition("?")[2]
        assert query
        secrets += [value for _, _, value in (part.partition("=") for part in
                                               query.split("&")) if len(value) >= 6]
    leaked = [secret for secret in secrets if secret in out]
    assert leaked == []
    assert str(first.id) not in out

