"""A real rindle lifecycle (upload, promote, render a variant, sign a URL) on SQLite and
PostgreSQL, read back from the OpenTelemetry SDK's in-memory exporter and metric reader."""

from __future__ import annotations

import io

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from otelkit import Pipeline, depth
from PIL import Image

from rindle import UploadRejected
from rindle.jobs import JobContext
from rindle.testing.lifecycle import jpeg


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buf, "PNG")
    return buf.getvalue()


def _drain(p: Pipeline) -> None:
    p.app.worker(cron=False).run_until_empty(timeout=60)


def test_upload_and_jobs_become_spans_with_real_durations(pipeline: Pipeline) -> None:
    p = pipeline
    asset = p.app.upload("photo", jpeg((40, 30)), filename="a.jpg")
    [upload] = p.spans("rindle.upload")
    assert upload.kind is SpanKind.INTERNAL
    assert dict(upload.attributes or {}) == {"rindle.profile": "photo",
                                             "rindle.adapter": "proxied",
                                             "rindle.measurement.bytes": asset.byte_size}
    assert upload.start_time is not None and upload.end_time is not None
    assert upload.end_time >= upload.start_time
    assert upload.status.status_code is StatusCode.UNSET
    # the promote job waits: one job in the promote queue's gauge, nothing rendered yet
    assert p.points("rindle.queue.depth") == depth(promote=1)
    assert p.points("rindle.variants") == {}
    _drain(p)
    jobs = p.spans("rindle.job")
    assert sorted(str(s.attributes["rindle.kind"]) for s in jobs if s.attributes) == [
        "rindle.process_variant", "rindle.promote"]
    for span in jobs:
        assert span.attributes is not None and span.attributes["rindle.outcome"] == "completed"
        assert span.end_time is not None and span.start_time is not None
        assert span.end_time > span.start_time  # from the job's start event to its stop
        assert span.attributes["rindle.measurement.duration_ms"] > 0
        assert span.status.status_code is StatusCode.UNSET
    promote = next(s for s in jobs if s.attributes and s.attributes["rindle.kind"] ==
                   "rindle.promote")
    # the asset's transitions inside the promote job are events on the job's span
    moves = [(e.attributes or {}).get("rindle.to") for e in promote.events
             if e.name == "rindle.asset.state_change"]
    assert moves == ["promoting", "available"]
    render = next(s for s in jobs if s.attributes and s.attributes["rindle.kind"] ==
                  "rindle.process_variant")
    assert [(e.name, (e.attributes or {}).get("rindle.to")) for e in render.events] == [
        ("rindle.variant.state_change", "queued"), ("rindle.variant.state_change", "processing"),
        ("rindle.asset.state_change", "transcoding"), ("rindle.variant.state_change", "ready"),
        ("rindle.asset.state_change", "ready"), ("rindle.variant.processed", None)]
    # metrics: outcomes, latencies, gauges
    assert p.points("rindle.job.outcomes") == {
        (("kind", "rindle.process_variant"), ("outcome", "completed"),
         ("queue", "process")): 1,
        (("kind", "rindle.promote"), ("outcome", "completed"), ("queue", "promote")): 1}
    assert p.points("rindle.job.duration") == {
        (("kind", "rindle.process_variant"), ("outcome", "completed"),
         ("queue", "process")): 1,
        (("kind", "rindle.promote"), ("outcome", "completed"), ("queue", "promote")): 1}
    assert p.points("rindle.uploads") == {(("adapter", "proxied"), ("profile", "photo")): 1}
    assert p.points("rindle.upload.bytes") == {
        (("adapter", "proxied"), ("profile", "photo")): asset.byte_size}
    assert p.points("rindle.variants") == {(("state", "ready"),): 1}
    assert p.points("rindle.queue.depth") == depth()  # every queue idle: 0, not absent
    assert p.points("rindle.variant.duration") == {
        (("outcome", "ready"), ("profile", "photo"), ("variant", "thumb")): 1}
    changes = p.points("rindle.state_changes")
    assert changes[(("entity", "asset"), ("from", "analyzing"), ("profile", "photo"),
                    ("to", "promoting"))] == 1
    # a point-in-time event with no open span is a zero-length span of its own
    p.app.url(asset.id, "thumb")
    [signed] = p.spans("rindle.delivery.signed")
    assert signed.start_time == signed.end_time
    assert dict(signed.attributes or {}) == {"rindle.profile": "photo",
                                             "rindle.adapter": "local",
                                             "rindle.mode": "private",
                                             "rindle.served": "variant"}


def test_rejections_are_counted_by_code(pipeline: Pipeline) -> None:
    p = pipeline
    with pytest.raises(UploadRejected) as png:
        p.app.upload("photo", _png(), filename="a.png")
    assert png.value.code == "mime_not_allowed"
    limit = 64 * 1024  # Photo.max_bytes: a JPEG padded to exactly the limit is stored
    image = jpeg((40, 30))
    p.app.upload("photo", image + b"\0" * (limit - len(image)), filename="b.jpg")
    with pytest.raises(UploadRejected) as big:
        p.app.upload("photo", image + b"\0" * (limit + 1 - len(image)), filename="c.jpg")
    assert big.value.code == "max_bytes_exceeded"
    assert p.points("rindle.upload.rejections") == {
        (("adapter", "proxied"), ("code", "mime_not_allowed"), ("profile", "photo")): 1,
        (("adapter", "proxied"), ("code", "max_bytes_exceeded"), ("profile", "photo")): 1}
    assert p.points("rindle.uploads") == {(("adapter", "proxied"), ("profile", "photo")): 1}


def test_direct_upload_rejected_at_promote_is_counted(pipeline: Pipeline) -> None:
    p = pipeline
    session = p.app.initiate_upload("photo", filename="x.jpg", content_type="image/jpeg")
    p.app.sign_upload(session.id)
    storage = p.app.storage("default")
    src = p.app.settings.resolved_tmp_dir / "lying.jpg"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(_png())  # a PNG behind a .jpg name: the promote job quarantines it
    storage.put(session.upload_key, src, content_type="image/jpeg")
    p.app.verify_upload(session.id)
    _drain(p)
    assert p.points("rindle.asset.quarantined") == {
        (("profile", "photo"), ("reason", "mime_not_allowed")): 1}
    assert p.points("rindle.upload.rejections") == {
        (("adapter", "local"), ("code", "mime_not_allowed"), ("profile", "photo")): 1}
    # the session's initiate is a point in time (its stop comes from another call)
    assert [s.name for s in p.spans() if s.name in ("rindle.upload", "rindle.upload.start")] == [
        "rindle.upload.start", "rindle.upload"]


def test_failing_job_span_is_an_error_and_outcomes_count_it(pipeline: Pipeline) -> None:
    p = pipeline

    def boom(app: object, job: JobContext) -> None:
        raise RuntimeError("handler broke")

    p.app.jobs.register("test.boom", boom, queue="promote", max_attempts=1)
    p.app.jobs.enqueue_now("test.boom", {})
    _drain(p)
    [span] = [s for s in p.spans("rindle.job")
              if s.attributes and s.attributes["rindle.kind"] == "test.boom"]
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "RuntimeError"
    assert [e.name for e in span.events] == ["rindle.job.exception"]
    assert span.attributes is not None and span.attributes["rindle.outcome"] == "discarded"
    assert p.points("rindle.job.outcomes") == {
        (("kind", "test.boom"), ("outcome", "discarded"), ("queue", "promote")): 1}


def test_an_operations_verb_is_one_span(pipeline: Pipeline) -> None:
    p = pipeline
    asset = p.app.upload("photo", jpeg((40, 30)), filename="a.jpg")
    _drain(p)
    report = p.app.ops.verify_storage(profile="photo")
    [verb] = p.spans("rindle.repair")
    assert verb.attributes is not None
    assert verb.attributes["rindle.operation"] == "verify_storage"
    assert verb.attributes["rindle.result"] == "ok"
    assert verb.attributes["rindle.dry_run"] is False
    assert verb.start_time is not None and verb.end_time is not None
    assert verb.end_time > verb.start_time
    assert verb.attributes["rindle.measurement.duration_us"] > 0
    assert verb.status.status_code is StatusCode.UNSET
    assert report.checked >= 1 and str(asset.id) not in verb.to_json()


@pytest.mark.parametrize("commit", [True, False])
def test_work_inside_a_hosts_transaction_ends_with_its_decision(pipeline: Pipeline,
                                                                commit: bool) -> None:
    """Inside ``app.bind`` the stop of an upload or an operations verb waits for the host's
    commit; on a rollback the span ends in error. Either way both spans end, each alone
    (the verb began while the upload's span was open: its child), and later work on the
    thread has no parent left over."""
    p = pipeline
    kept = p.app.upload("photo", jpeg((40, 30)), filename="kept.jpg")
    _drain(p)
    p.exporter.clear()
    with p.app.db.engine.connect() as host:
        with p.app.bind(host):
            p.app.upload("photo", jpeg((40, 30)), filename="bound.jpg")
            p.app.requeue_variants(kept.id)
        assert p.spans() == []  # both wait for the host's decision
        host.commit() if commit else host.rollback()
    upload, repair = p.spans()
    assert (upload.name, repair.name) == ("rindle.upload", "rindle.repair")
    assert upload.parent is None
    assert repair.parent is not None and repair.parent.span_id == upload.context.span_id
    assert upload.attributes is not None and repair.attributes is not None
    assert repair.attributes["rindle.operation"] == "requeue_variants"
    assert "rindle.unfinished" not in repair.attributes
    if commit:
        assert upload.status.status_code is repair.status.status_code is StatusCode.UNSET
        assert repair.attributes["rindle.result"] == "noop"  # nothing had failed
    else:
        assert (upload.status.status_code, upload.status.description) == (
            StatusCode.ERROR, "host_rolled_back")
        assert upload.attributes["rindle.kind"] == "rolled_back"
        assert (repair.status.status_code, repair.status.description) == (
            StatusCode.ERROR, "rolled_back")
    p.app.upload("photo", jpeg((40, 30)), filename="after.jpg")
    [after] = [s for s in p.spans("rindle.upload") if s is not upload]
    assert after.parent is None and after.status.status_code is StatusCode.UNSET
    stored = 3 if commit else 2
    assert p.points("rindle.uploads") == {
        (("adapter", "proxied"), ("profile", "photo")): stored}
    if commit:
        _drain(p)  # leave nothing due
