"""Issue 9, hole 4: webhook replays regressed provider rows (``ready -> errored -> ready``).

An older event with a fresh valid signature (within the 300 s tolerance) was applied again.
Now seen event ids live in ``rindle_webhook_events`` for the replay window, and an event
whose provider time is older than the row's ``last_event_at`` is dropped at the edge and in
the worker. Everything goes over real loopback HTTP to ``rindle.delivery.wsgi_app``, signed
with real HMAC-SHA256 by the Mux plugin's verifier, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from sqlalchemy import func, select

import rindle_mux.plugin
from rindle import Delivery, Profile, Rindle, variants
from rindle.delivery import wsgi_app
from rindle.domain.models import Asset, Job, ProviderAsset, WebhookEvent, utcnow
from rindle.plugins import make_plugin_manager
from rindle.streaming import sign
from rindle.streaming.jobs import WEBHOOK
from rindle.streaming.webhooks import (
    handle_webhook,
    prune_seen_events,
    record_seen_event,
    replay_window,
)
from rindle_mux.provider import normalize_event

SECRET = "whsec-replay-0123456789abcdef0123456789abcdef"
ASSET = "ReplayAsset0123456789abcdefghijklmnopqrstuvwxyz01"
T1 = dt.datetime(2026, 5, 6, 10, 0, 0, tzinfo=dt.UTC)
T2 = T1 + dt.timedelta(minutes=1)
T3 = T1 + dt.timedelta(minutes=2)
T4 = T1 + dt.timedelta(minutes=3)
Seen = list[tuple[str, dict[str, Any]]]


class Clip(Profile):
    name = "clip"
    allow_mime = ("video/mp4",)
    variants = {"web_720p": variants.Video(preset="web_720p")}
    delivery = Delivery(streaming={"provider": "mux", "playback_policy": "signed",
                                   "ingest_mode": "server_push", "source_variant": "web_720p"})


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def app(make_app: Callable[..., Rindle]) -> Rindle:
    """An app (this test's dialect) with the real Mux provider; no Mux API is called."""
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(rindle_mux.plugin, name="mux")
    return make_app(plugin_manager=pm, profiles=[Clip], streaming={
        "mux": {"webhook_secrets": [SECRET], "base_url": "http://127.0.0.1:9"}})


@pytest.fixture
def seen(app: Rindle) -> Iterator[Seen]:
    """Every telemetry event the app emits: ``(name, metadata)``."""
    out: Seen = []
    detach = app.telemetry.attach(lambda name, _m, meta: out.append((name, dict(meta))))
    yield out
    detach()


@pytest.fixture
def endpoint(app: Rindle) -> Iterator[str]:
    """``POST /webhooks/mux`` of ``wsgi_app(app)`` on a threaded loopback server."""
    server = make_server("127.0.0.1", 0, wsgi_app(app), server_class=_ThreadingServer,
                         handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/mux"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _event(kind: str, event_id: str, at: dt.datetime | None) -> bytes:
    """A Mux ``video.asset.<kind>`` envelope for :data:`ASSET` that happened ``at``."""
    data: dict[str, Any] = {"id": ASSET}
    if kind == "ready":
        data.update(status="ready", playback_ids=[{"id": f"pb-{event_id}", "policy": "signed"}])
    elif kind == "errored":
        data.update(status="errored",
                    errors={"type": "input_error", "messages": ["input unreadable"]})
    else:
        data.update(status="preparing")
    payload: dict[str, Any] = {"type": f"video.asset.{kind}", "id": event_id,
                               "object": {"type": "asset", "id": ASSET}, "data": data}
    if at is not None:
        payload["created_at"] = at.isoformat().replace("+00:00", "Z")
    return json.dumps(payload).encode()


def _signature(body: bytes) -> str:
    """A valid ``Mux-Signature`` made now (real HMAC-SHA256 under :data:`SECRET`)."""
    ts = int(time.time())
    return f"t={ts},v1={sign(body, SECRET, ts)}"


def _post(url: str, body: bytes, signature: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Mux-Signature": signature or _signature(body)})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _row(app: Rindle, state: str = "processing") -> ProviderAsset:
    when = utcnow() - dt.timedelta(minutes=5)
    with app.db.transaction() as s:
        asset = Asset(profile="clip", storage_key=f"clip/{uuid.uuid4()}/original.mp4",
                      state="ready", kind="video", content_type="video/mp4")
        s.add(asset)
        s.flush()
        row = ProviderAsset(asset_id=asset.id, profile="clip", provider_name="mux",
                            provider_asset_id=ASSET, state=state, playback_policy="signed",
                            ingest_mode="server_push", inserted_at=when, updated_at=when)
        s.add(row)
    return row


def _reload(app: Rindle, row: ProviderAsset) -> ProviderAsset:
    with app.db.sessionmaker() as s:
        fresh = s.get(ProviderAsset, row.id)
        assert fresh is not None
        return fresh


def _jobs(app: Rindle) -> list[str]:
    with app.db.sessionmaker() as s:
        return list(s.execute(select(Job.state).where(Job.kind == WEBHOOK)
                              .order_by(Job.id)).scalars())


def _recorded(app: Rindle) -> list[tuple[str, str]]:
    with app.db.sessionmaker() as s:
        rows = s.execute(select(WebhookEvent.provider, WebhookEvent.event_id)
                         .order_by(WebhookEvent.event_id)).all()
    return [(p, e) for p, e in rows]


def _kinds(seen: Seen, name: str) -> list[str]:
    return [m["kind"] for e, m in seen if e == f"rindle.provider.webhook.{name}"]


def _moves(seen: Seen) -> list[tuple[str, str]]:
    return [(m["from"], m["to"]) for e, m in seen if e == "rindle.provider_asset.state_change"]


# --- (a) a replay of an older event with a fresh signature --------------------------------


def test_older_errored_replay_with_fresh_signature_keeps_the_row_ready(
        app: Rindle, endpoint: str, seen: Seen) -> None:
    row = _row(app)
    assert _post(endpoint, _event("ready", "evt-ready", T2)) == (202, b"")
    assert app.jobs.drain(["provider"]) == 1
    ready = _reload(app, row)
    assert (ready.state, ready.last_event_id, ready.last_event_at) == ("ready", "evt-ready", T2)

    # the errored event of an earlier attempt, re-signed now: valid, within tolerance
    old = _event("errored", "evt-errored-earlier", T1)
    assert _post(endpoint, old) == (200, b"")
    assert app.jobs.drain(["provider"]) == 0
    after = _reload(app, row)
    assert (after.state, after.last_event_id, after.last_event_at, after.updated_at) == (
        "ready", "evt-ready", T2, ready.updated_at)
    assert after.last_sync_error is None
    assert _kinds(seen, "verified") == ["enqueued", "stale_event"]
    [stale] = [m for e, m in seen if e == "rindle.provider.webhook.verified"
               and m["kind"] == "stale_event"]
    assert stale == {"provider": "mux", "event_type": "video.asset.errored",
                     "event_id": "...lier", "kind": "stale_event"}
    assert _moves(seen) == [("processing", "ready")]
    assert _jobs(app) == ["completed"]
    # the stale delivery's id is remembered too: sent again, it is a plain duplicate
    assert _recorded(app) == [("mux", "evt-errored-earlier"), ("mux", "evt-ready")]
    assert _post(endpoint, old) == (200, b"")
    assert _kinds(seen, "verified")[-1] == "duplicate"
    assert _reload(app, row).state == "ready"


# --- (b) the exact same event id again, after its job finished -----------------------------


def test_exact_replay_after_the_job_finished_is_not_applied_again(
        app: Rindle, endpoint: str, seen: Seen) -> None:
    row = _row(app)
    body = _event("ready", "evt-ready", T2)
    first_signature = _signature(body)
    assert _post(endpoint, body, first_signature) == (202, b"")
    assert app.jobs.drain(["provider"]) == 1
    applied = _reload(app, row)
    assert applied.state == "ready" and _jobs(app) == ["completed"]  # the job is gone

    assert _post(endpoint, body, first_signature) == (200, b"")  # byte-identical replay
    assert _post(endpoint, body) == (200, b"")  # same id, freshly signed
    assert app.jobs.drain(["provider"]) == 0
    assert _jobs(app) == ["completed"]
    assert _recorded(app) == [("mux", "evt-ready")]
    again = _reload(app, row)
    assert (again.state, again.updated_at, again.last_event_id) == (
        "ready", applied.updated_at, "evt-ready")
    assert _kinds(seen, "verified") == ["enqueued", "duplicate", "duplicate"]
    assert _kinds(seen, "processed") == ["transition"]
    assert _moves(seen) == [("processing", "ready")]


def test_concurrent_deliveries_of_one_id_enqueue_exactly_once(
        app: Rindle, endpoint: str) -> None:
    row = _row(app)
    body = _event("ready", "evt-race", T2)
    barrier = threading.Barrier(6)
    answers: list[int] = []

    def deliver() -> None:
        signature = _signature(body)
        barrier.wait()
        answers.append(_post(endpoint, body, signature)[0])

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(answers) == [200, 200, 200, 200, 200, 202]
    assert _jobs(app) == ["available"]
    assert _recorded(app) == [("mux", "evt-race")]
    assert app.jobs.drain(["provider"]) == 1
    assert _reload(app, row).state == "ready"


# --- (c) an older event that arrives after a newer one -------------------------------------


def test_out_of_order_older_event_is_dropped_by_the_worker(
        app: Rindle, endpoint: str, seen: Seen) -> None:
    row = _row(app)
    # both arrive while the row is still processing: the edge cannot order them yet
    assert _post(endpoint, _event("ready", "evt-ready", T2)) == (202, b"")
    late = _event("errored", "evt-errored", T1)
    assert _post(endpoint, late) == (202, b"")
    assert app.jobs.drain(["provider"]) == 2
    fresh = _reload(app, row)
    assert (fresh.state, fresh.last_event_id, fresh.last_event_at, fresh.last_sync_error) == (
        "ready", "evt-ready", T2, None)
    assert _jobs(app) == ["completed", "completed"]  # dropped, not cancelled or retried
    assert _kinds(seen, "processed") == ["transition"]
    [ignored] = [m for e, m in seen if e == "rindle.provider.webhook.ignored"]
    assert ignored == {"provider": "mux", "event_type": "video.asset.errored",
                       "asset_id": "...yz01", "profile": "clip", "from_state": "ready",
                       "to_state": "ready", "kind": "stale_event"}
    assert _moves(seen) == [("processing", "ready")]
    # the worker's outcome for such an event, called directly
    event = normalize_event(json.loads(late))
    assert app.streaming.ingest_event("mux", event) == "stale_event"
    assert _reload(app, row).state == "ready"


def test_a_same_state_event_advances_the_clock(app: Rindle, endpoint: str, seen: Seen
                                               ) -> None:
    row = _row(app)
    assert _post(endpoint, _event("ready", "evt-ready-1", T1)) == (202, b"")
    assert app.jobs.drain(["provider"]) == 1
    before = _reload(app, row)
    assert _post(endpoint, _event("ready", "evt-ready-3", T3)) == (202, b"")
    assert app.jobs.drain(["provider"]) == 1
    confirmed = _reload(app, row)
    assert (confirmed.state, confirmed.last_event_id, confirmed.last_event_at) == (
        "ready", "evt-ready-3", T3)
    assert confirmed.updated_at == before.updated_at  # the sync's clock is not reset
    # errored at T2 happened before the provider last confirmed ready (T3): stale
    assert _post(endpoint, _event("errored", "evt-errored-2", T2)) == (200, b"")
    assert _reload(app, row).state == "ready"
    assert _kinds(seen, "processed") == ["transition", "duplicate"]
    assert _kinds(seen, "verified") == ["enqueued", "enqueued", "stale_event"]


def test_an_event_without_provider_time_applies_but_never_moves_the_clock(
        app: Rindle, endpoint: str, seen: Seen) -> None:
    row = _row(app)
    assert _post(endpoint, _event("ready", "evt-ready", T2)) == (202, b"")
    assert app.jobs.drain(["provider"]) == 1
    timeless = _event("errored", "evt-no-time", None)
    assert _post(endpoint, timeless) == (202, b"")  # cannot be ordered: applied as before
    assert app.jobs.drain(["provider"]) == 1
    fresh = _reload(app, row)
    assert (fresh.state, fresh.last_event_id, fresh.last_event_at) == (
        "errored", "evt-no-time", T2)  # provider time stays the last known one
    assert _post(endpoint, timeless) == (200, b"")  # still deduplicated by id
    assert _post(endpoint, _event("created", "evt-created-old", T1)) == (200, b"")  # stale
    assert app.jobs.drain(["provider"]) == 0
    assert _reload(app, row).state == "errored"
    assert _kinds(seen, "verified") == ["enqueued", "enqueued", "duplicate", "stale_event"]
    with app.db.sessionmaker() as s:
        stored = s.get(WebhookEvent, ("mux", "evt-no-time"))
        assert stored is not None and stored.occurred_at is None


def test_a_newer_event_applied_between_read_and_write_wins(
        app: Rindle, endpoint: str, seen: Seen, monkeypatch: pytest.MonkeyPatch) -> None:
    import rindle.streaming.webhooks as webhooks

    row = _row(app)
    assert _post(endpoint, _event("ready", "evt-ready-1", T1)) == (202, b"")
    assert app.jobs.drain(["provider"]) == 1
    snapshot = _reload(app, row)  # what a slow worker read: ready as of T1
    assert _post(endpoint, _event("ready", "evt-ready-3", T3)) == (202, b"")
    assert app.jobs.drain(["provider"]) == 1  # confirms ready as of T3 meanwhile
    monkeypatch.setattr(webhooks, "_find_row", lambda *_: snapshot)
    older = normalize_event(json.loads(_event("errored", "evt-errored-2", T2)))
    assert app.streaming.ingest_event("mux", older) == "stale_event"
    fresh = _reload(app, row)
    assert (fresh.state, fresh.last_event_id, fresh.last_event_at) == (
        "ready", "evt-ready-3", T3)
    assert seen[-1] == ("rindle.provider.webhook.ignored", {
        "provider": "mux", "event_type": "video.asset.errored", "asset_id": "...yz01",
        "profile": "clip", "from_state": "ready", "to_state": "ready", "kind": "stale_event"})


# --- (d) pruning past the window ------------------------------------------------------------


def test_seen_ids_are_pruned_past_the_window_with_an_injected_clock(app: Rindle) -> None:
    window = replay_window()
    assert window == dt.timedelta(seconds=660)  # 2 x 300 s tolerance + 60 s margin
    start = dt.datetime(2026, 5, 6, 12, 0, tzinfo=dt.UTC)
    with app.db.transaction() as s:
        assert record_seen_event(s, "mux", "evt-a", occurred_at=T1, now=start)
        assert not record_seen_event(s, "mux", "evt-a", now=start)  # already recorded
        for i in range(5):
            assert record_seen_event(s, "mux", f"evt-b{i}",
                                     now=start + dt.timedelta(seconds=1 + i))
        assert record_seen_event(s, "gone", "evt-unconfigured", now=start)
    assert prune_seen_events(app.streaming, "mux", now=start + window) == 0  # not yet
    assert len(_recorded(app)) == 7
    past = start + window + dt.timedelta(microseconds=1)
    assert prune_seen_events(app.streaming, "mux", now=past) == 2  # evt-a and "gone"
    assert _recorded(app) == [("mux", f"evt-b{i}") for i in range(5)]
    later = start + window + dt.timedelta(seconds=60)
    assert prune_seen_events(app.streaming, "mux", now=later, limit=2) == 2  # bounded
    assert prune_seen_events(app.streaming, "mux", now=later, limit=2) == 2
    assert prune_seen_events(app.streaming, "mux", now=later, limit=2) == 1
    assert _recorded(app) == []


def test_a_new_record_prunes_expired_ones(app: Rindle, endpoint: str) -> None:
    _row(app)
    now = utcnow()
    with app.db.transaction() as s:
        record_seen_event(s, "mux", "evt-expired", now=now - replay_window()
                          - dt.timedelta(seconds=60))
        record_seen_event(s, "mux", "evt-recent", now=now - replay_window()
                          + dt.timedelta(seconds=60))
    assert _post(endpoint, _event("ready", "evt-new", T2)) == (202, b"")  # real clock
    assert _recorded(app) == [("mux", "evt-new"), ("mux", "evt-recent")]
    # the service call with an injected clock: recorded at that time, prunes by it
    future = now + dt.timedelta(days=1)
    body = _event("deleted", "evt-future", T3)
    answer = handle_webhook(app.streaming, "mux", body, {"mux-signature": _signature(body)},
                            now=future)
    assert (answer.status, answer.reason) == (202, "enqueued")
    assert _recorded(app) == [("mux", "evt-future")]
    with app.db.sessionmaker() as s:
        stored = s.get(WebhookEvent, ("mux", "evt-future"))
        assert stored is not None and (stored.received_at, stored.occurred_at) == (future, T3)


def test_a_pruned_id_is_still_not_applied_twice(app: Rindle, endpoint: str, seen: Seen
                                                ) -> None:
    row = _row(app)
    body = _event("ready", "evt-ready", T2)
    assert _post(endpoint, body) == (202, b"")
    assert app.jobs.drain(["provider"]) == 1
    applied = _reload(app, row)
    future = utcnow() + replay_window() + dt.timedelta(seconds=1)
    assert prune_seen_events(app.streaming, "mux", now=future) == 1
    assert _recorded(app) == []
    # re-sent after the window: recorded and enqueued again, then a no-op in the worker
    assert _post(endpoint, body) == (202, b"")
    assert app.jobs.drain(["provider"]) == 1
    assert _reload(app, row).updated_at == applied.updated_at
    assert _kinds(seen, "processed") == ["transition", "duplicate"]
    assert _recorded(app) == [("mux", "evt-ready")]


# --- (e) a newer event still applies --------------------------------------------------------


def test_newer_events_still_apply(app: Rindle, endpoint: str, seen: Seen) -> None:
    row = _row(app)
    assert _post(endpoint, _event("ready", "evt-ready-1", T1)) == (202, b"")
    assert app.jobs.drain(["provider"]) == 1
    assert _post(endpoint, _event("errored", "evt-errored-2", T2)) == (202, b"")
    assert app.jobs.drain(["provider"]) == 1
    errored = _reload(app, row)
    assert (errored.state, errored.last_event_at, errored.last_sync_error) == (
        "errored", T2, "input_error: input unreadable")
    # the same provider time as the last applied event is not older: applied
    assert _post(endpoint, _event("created", "evt-created-2", T2)) == (202, b"")
    assert _post(endpoint, _event("ready", "evt-ready-4", T4)) == (202, b"")
    assert app.jobs.drain(["provider"]) == 2
    final = _reload(app, row)
    assert (final.state, final.last_event_id, final.last_event_at, final.playback_ids) == (
        "ready", "evt-ready-4", T4, ["pb-evt-ready-4"])
    assert _moves(seen) == [("processing", "ready"), ("ready", "errored"),
                            ("errored", "processing"), ("processing", "ready")]
    assert _kinds(seen, "processed") == ["transition"] * 4
    assert _jobs(app) == ["completed"] * 4
    with app.db.sessionmaker() as s:
        assert s.execute(select(func.count()).select_from(WebhookEvent)).scalar_one() == 4
