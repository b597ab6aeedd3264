"""Webhooks end to end: real HMAC signatures, the endpoint's status matrix (service and
WSGI over loopback HTTP), dedupe, and the ingest worker's FSM moves, on both dialects."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from muxkit import OLD_SECRET, PLAYBACK_ID, WEBHOOK_SECRET, add_row, fixture, reload, sign_header
from sqlalchemy import func, select

from rindle import Rindle
from rindle.delivery import wsgi_app
from rindle.domain.models import Job
from rindle.errors import WebhookInvalid
from rindle.streaming import MAX_BODY
from rindle.streaming.jobs import WEBHOOK
from rindle_mux.provider import normalize_event

Events = list[tuple[str, dict[str, Any], dict[str, Any]]]


def _body(name: str, **changes: Any) -> bytes:
    payload = fixture(name)
    payload.update(changes)
    return json.dumps(payload).encode()


def _deliver(app: Rindle, body: bytes, **headers: str) -> Any:
    if "signature" not in headers:
        headers = {"Mux-Signature": sign_header(body), **headers}
    else:
        headers = {"Mux-Signature": headers.pop("signature"), **headers}
    return app.streaming.handle_webhook("mux", body, headers)


def _jobs(app: Rindle) -> int:
    with app.db.sessionmaker() as s:
        return int(s.execute(select(func.count()).select_from(Job)
                             .where(Job.kind == WEBHOOK)).scalar_one())


def _rejected(events: Events) -> list[str]:
    return [m["reason"] for e, _, m in events if e == "rindle.provider.webhook.rejected"]


def test_good_signature_enqueues_one_job(mux_app: Rindle, events: Events) -> None:
    answer = _deliver(mux_app, _body("webhook_video_asset_ready"))
    assert (answer.status, answer.reason) == (202, "enqueued")
    assert _jobs(mux_app) == 1
    [(_, _, meta)] = [e for e in events if e[0] == "rindle.provider.webhook.verified"]
    assert meta["kind"] == "enqueued" and meta["event_type"] == "video.asset.ready"
    assert meta["event_id"] == "...0001"


def test_header_is_case_insensitive_and_rotated_secret_verifies(mux_app: Rindle) -> None:
    body = _body("webhook_video_asset_ready")
    provider = mux_app.streaming.provider("mux")
    event = provider.verify_webhook(body, {"MUX-SIGNATURE": sign_header(body, OLD_SECRET)})
    assert event.type == "ready" and event.playback_ids == [PLAYBACK_ID]
    answer = mux_app.streaming.handle_webhook(
        "mux", body, {"mux-signature": sign_header(body, OLD_SECRET)})
    assert answer.status == 202


@pytest.mark.parametrize(("case", "reason"), [
    ("bad_signature", "sig_mismatch"),
    ("wrong_secret", "sig_mismatch"),
    ("expired", "stale_timestamp"),
    ("missing_header", "missing_header"),
    ("malformed", "malformed_header"),
    ("tampered_body", "sig_mismatch"),
])
def test_rejections_are_400_and_enqueue_nothing(mux_app: Rindle, events: Events, case: str,
                                                reason: str) -> None:
    body = _body("webhook_video_asset_ready")
    now = int(time.time())
    headers = {
        "bad_signature": {"Mux-Signature": f"t={now},v1={'0' * 64}"},
        "wrong_secret": {"Mux-Signature": sign_header(body, "not-a-configured-secret-000000")},
        "expired": {"Mux-Signature": sign_header(body, timestamp=now - 600)},
        "missing_header": {},
        "malformed": {"Mux-Signature": "v1=abc"},
        "tampered_body": {"Mux-Signature": sign_header(body.replace(b"ready", b"errored"))},
    }[case]
    answer = mux_app.streaming.handle_webhook("mux", body, headers)
    assert (answer.status, answer.body) == (400, "provider_webhook_invalid")
    assert _rejected(events) == [reason]
    assert _jobs(mux_app) == 0


def test_invalid_json_after_a_good_signature_is_400(mux_app: Rindle, events: Events) -> None:
    body = b"{not json"
    assert _deliver(mux_app, body).status == 400
    assert _rejected(events) == ["invalid_json"]


def test_no_secrets_configured_is_400(make_mux_app: Any) -> None:
    app = make_mux_app(webhook_secrets=[])
    body = _body("webhook_video_asset_ready")
    answer = app.streaming.handle_webhook("mux", body, {"mux-signature": sign_header(body)})
    assert answer.status == 400 and answer.reason == "no_secrets_configured"


def test_oversize_body_is_413_and_exactly_1_mib_is_read(mux_app: Rindle) -> None:
    big = b"x" * (MAX_BODY + 1)
    assert _deliver(mux_app, big).status == 413
    exact = b" " * (MAX_BODY - 2) + b"{}"
    answer = _deliver(mux_app, exact)
    assert answer.status == 400 and answer.reason == "invalid_payload"  # read, verified, parsed


def test_replay_of_the_same_event_id_creates_one_job(mux_app: Rindle, events: Events) -> None:
    body = _body("webhook_video_asset_ready")
    assert _deliver(mux_app, body).status == 202
    again = _deliver(mux_app, body)  # re-delivery: 200 so Mux stops, nothing enqueued
    assert (again.status, again.reason) == (200, "duplicate")
    assert _jobs(mux_app) == 1


def test_missing_event_id_is_400(mux_app: Rindle, events: Events) -> None:
    payload = fixture("webhook_video_asset_ready")
    del payload["id"]
    assert _deliver(mux_app, json.dumps(payload).encode()).status == 400
    assert _rejected(events) == ["missing_event_id"]


def test_unknown_and_dropped_types_are_200_without_a_job(mux_app: Rindle, events: Events
                                                         ) -> None:
    for kind in ("video.asset.updated", "video.live_stream.active", "something.new"):
        answer = _deliver(mux_app, _body("webhook_video_asset_ready", type=kind,
                                         id=f"evt-{kind}"))
        assert (answer.status, answer.reason) == (200, "dropped")
    assert _jobs(mux_app) == 0


def test_unknown_provider_is_404(mux_app: Rindle) -> None:
    assert mux_app.streaming.handle_webhook("nope", b"{}", {}).status == 404


def test_enqueue_failure_is_503(mux_app: Rindle, events: Events) -> None:
    body = _body("webhook_video_asset_ready")
    original = mux_app.jobs.enqueue

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("database unreachable")

    mux_app.jobs.enqueue = broken  # type: ignore[method-assign]
    try:
        assert _deliver(mux_app, body).status == 503
    finally:
        mux_app.jobs.enqueue = original  # type: ignore[method-assign]
    assert _rejected(events) == ["queue_unavailable"]


# --- normalisation ------------------------------------------------------------------------

def test_event_normalisation() -> None:
    created = normalize_event(fixture("webhook_video_asset_created"))
    assert (created.type, created.playback_ids, created.state) == ("created", [], "processing")
    assert created.occurred_at == dt.datetime(2026, 5, 6, tzinfo=dt.UTC)
    upload = normalize_event(fixture("webhook_video_upload_asset_created"))
    assert upload.type == "upload_asset_created"
    assert upload.provider_asset_id == fixture(
        "webhook_video_upload_asset_created")["data"]["asset_id"]
    assert upload.upload_id == fixture("webhook_video_upload_asset_created")["data"]["id"]
    assert upload.passthrough == "mux-passthrough-fixture-1234"
    nested = fixture("webhook_video_upload_asset_created")
    del nested["data"]["passthrough"]
    nested["data"]["new_asset_settings"] = {"passthrough": "nested-pt"}
    assert normalize_event(nested).passthrough == "nested-pt"
    errored = normalize_event(fixture("webhook_video_asset_errored"))
    assert errored.error == "input_error: Failed to fetch input from signed URL"
    weird = fixture("webhook_video_asset_ready")
    weird["data"]["status"] = "brand_new"
    weird["type"] = "video.asset.brand_new"
    assert (normalize_event(weird).state, normalize_event(weird).type) == (None, "unknown")
    with pytest.raises(WebhookInvalid):
        normalize_event({"type": "video.asset.ready"})
    assert "AbCd" not in repr(upload) and upload.provider_asset_id not in repr(upload)


# --- the ingest worker ----------------------------------------------------------------------

def _event_row(app: Rindle, name: str, state: str) -> Any:
    return add_row(app, state=state,
                   provider_asset_id=fixture(name)["data"]["id"])


def test_ready_event_moves_processing_to_ready_once(mux_app: Rindle, events: Events) -> None:
    row = _event_row(mux_app, "webhook_video_asset_ready", "processing")
    body = _body("webhook_video_asset_ready")
    assert _deliver(mux_app, body).status == 202
    assert mux_app.jobs.drain(["provider"]) == 1
    fresh = reload(mux_app, row)
    assert fresh.state == "ready" and fresh.playback_ids == [PLAYBACK_ID]
    assert fresh.last_event_id == "evt-fixture-ready-0001"
    assert fresh.last_event_at == dt.datetime(2026, 5, 6, tzinfo=dt.UTC)
    # the same event again after it was applied: seen id, answered 200, not enqueued
    again = _deliver(mux_app, body)
    assert (again.status, again.reason) == (200, "duplicate")
    assert mux_app.jobs.drain(["provider"]) == 0
    # the worker's own id check still makes a job carrying an applied id a no-op
    assert mux_app.streaming.ingest_event("mux", normalize_event(json.loads(body))) == (
        "duplicate")
    assert reload(mux_app, row).updated_at == fresh.updated_at
    kinds = [m["kind"] for e, _, m in events if e == "rindle.provider.webhook.processed"]
    assert kinds == ["transition", "duplicate"]
    # a distinct ready event for a ready row: same-state, idempotent (no cancelled job)
    other = _body("webhook_video_asset_ready", id="evt-fixture-ready-0002")
    _deliver(mux_app, other)
    mux_app.jobs.drain(["provider"])
    with mux_app.db.sessionmaker() as s:
        states = s.execute(select(Job.state).where(Job.kind == WEBHOOK)).scalars().all()
    assert set(states) == {"completed"}
    for _, _, meta in events:
        if "asset_id" in meta and meta["asset_id"] is not None:
            assert meta["asset_id"].startswith("...") and len(meta["asset_id"]) == 7


def test_errored_deleted_created_events(mux_app: Rindle) -> None:
    errored = _event_row(mux_app, "webhook_video_asset_errored", "processing")
    deleted = _event_row(mux_app, "webhook_video_asset_deleted", "ready")
    created = _event_row(mux_app, "webhook_video_asset_created", "errored")
    for name in ("webhook_video_asset_errored", "webhook_video_asset_deleted",
                 "webhook_video_asset_created"):
        assert _deliver(mux_app, _body(name)).status == 202
    assert mux_app.jobs.drain(["provider"]) == 3
    assert reload(mux_app, errored).state == "errored"
    assert reload(mux_app, errored).last_sync_error == (
        "input_error: Failed to fetch input from signed URL")
    assert reload(mux_app, deleted).state == "deleted"
    assert reload(mux_app, created).state == "processing"  # the re-ingest edge


def test_forbidden_edge_cancels_the_job(mux_app: Rindle, events: Events) -> None:
    row = _event_row(mux_app, "webhook_video_asset_ready", "deleted")
    _deliver(mux_app, _body("webhook_video_asset_ready"))
    mux_app.jobs.drain(["provider"])
    assert reload(mux_app, row).state == "deleted"
    with mux_app.db.sessionmaker() as s:
        job = s.execute(select(Job).where(Job.kind == WEBHOOK)).scalar_one()
    assert job.state == "cancelled" and job.last_error == "invalid_transition: deleted -> ready"
    assert any(e == "rindle.provider.webhook.exception" and m["kind"] == "invalid_transition"
               for e, _, m in events)


def test_upload_asset_created_links_the_row(mux_app: Rindle) -> None:
    payload = fixture("webhook_video_upload_asset_created")
    row = add_row(mux_app, state="uploading", provider_asset_id=None,
                  mux_passthrough="mux-passthrough-fixture-1234",
                  ingest_mode="direct_creator_upload")
    _deliver(mux_app, json.dumps(payload).encode())
    mux_app.jobs.drain(["provider"])
    fresh = reload(mux_app, row)
    assert fresh.state == "processing"
    assert fresh.provider_asset_id == payload["data"]["asset_id"]


def test_event_before_its_row_snoozes_then_cancels(mux_app: Rindle, events: Events) -> None:
    from rindle.streaming.webhooks import RACE_SNOOZE

    _deliver(mux_app, _body("webhook_video_asset_ready"))
    mux_app.jobs.drain(["provider"], with_scheduled=True)
    snoozes = [m["delay_seconds"] for e, _, m in events
               if e == "rindle.provider.webhook.ignored" and m["kind"] == "race_snooze"]
    assert snoozes == list(RACE_SNOOZE)
    with mux_app.db.sessionmaker() as s:
        job = s.execute(select(Job).where(Job.kind == WEBHOOK)).scalar_one()
    assert (job.state, job.last_error) == ("cancelled", "provider_asset_row_missing")


# --- the WSGI endpoint over loopback HTTP ---------------------------------------------------

class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint(mux_app: Rindle) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, wsgi_app(mux_app), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/mux"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _post(url: str, body: bytes, headers: dict[str, str], method: str = "POST"
          ) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body if method == "POST" else None,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_wsgi_endpoint_status_matrix(endpoint: str, mux_app: Rindle) -> None:
    body = _body("webhook_video_asset_ready")
    assert _post(endpoint, body, {"Mux-Signature": sign_header(body)})[0] == 202
    assert _post(endpoint, body, {"Mux-Signature": sign_header(body, "x" * 40)}) == (
        400, b"provider_webhook_invalid\n")
    assert _post(endpoint, b"", {}, method="GET")[0] == 405
    assert _post(endpoint.replace("/mux", "/other"), body, {})[0] == 404
    big = b"{" + b" " * MAX_BODY + b"}"
    assert _post(endpoint, big, {"Mux-Signature": sign_header(big)})[0] == 413
    assert _jobs(mux_app) == 1
    assert WEBHOOK_SECRET  # the secret the good delivery was signed with
