"""Live progress over real loopback HTTP, on SQLite (polling) and PostgreSQL
(LISTEN/NOTIFY), served by rindle's threading WSGI server and by uvicorn (native ASGI):
the opening snapshot, a variant going ready while a worker drains the queue, a rolled-back
transition announcing nothing, heartbeats, the bound on open streams, a disconnect freeing
its slot, the token's expiry and the lifetime ending the stream, Last-Event-ID, and the
subscribe token's known answer. No test waits for time to pass: reads are bounded by a
socket timeout, waits poll a real condition under a deadline, expiry uses a ManualClock."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rindle import Rindle
from rindle.clock import ManualClock
from rindle.domain.fsm import variant as variant_fsm
from rindle.domain.models import Variant
from rindle.errors import ConfigError, UsageError
from rindle.signing import TokenInvalid
from rindle.web.events import (
    HEARTBEAT,
    MAX_ASSETS,
    open_subscription,
    sign_subscription,
    subscribe_token,
)
from tests.apps import MakeApp
from tests.lifecycle.conftest import PROFILES, jpeg_bytes
from tests.web.sse import (
    SSE,
    Block,
    events,
    in_thread,
    served_events,
    sqlite_app,
    wait_for,
)

SERVERS = ["wsgi", "asgi"]
ASSET_A = uuid.UUID("01a24414-ffd2-7000-9296-7c2adbec2a2d")
ASSET_B = uuid.UUID("01a24415-036c-7133-9fc1-158e1c8c0ee5")


@pytest.fixture
def photos(make_app: MakeApp) -> Rindle:
    return make_app(profiles=PROFILES)


def uploaded(app: Rindle, tmp_path: Path, name: str = "a.jpg") -> uuid.UUID:
    path = tmp_path / name
    path.write_bytes(jpeg_bytes((96, 64)))
    return app.upload("photo", path).id


def ready(app: Rindle, tmp_path: Path, name: str = "a.jpg") -> uuid.UUID:
    asset_id = uploaded(app, tmp_path, name)
    app.jobs.drain()
    assert app.get_asset(asset_id).state == "ready"
    return asset_id


def is_event(kind: str, name: str | None = None, state: str | None = None) -> Any:
    def wanted(block: Block) -> bool:
        data = block.get("data")
        return (block.get("event") == kind and data is not None
                and (name is None or data["name"] == name)
                and (state is None or data["state"] == state))
    return wanted


def opened(base: str, token: str, prefix: str = "", **headers: str
           ) -> tuple[SSE, list[Block]]:
    """A stream and its opening: the retry block and the snapshot (read until the first
    heartbeat, which follows the snapshot)."""
    sse = SSE(base, f"{prefix}/events?token={token}", headers)
    assert sse.status == 200, sse.response.read()
    first = sse.next()
    assert first == {"retry": "3000"}
    return sse, sse.until(lambda b: b.get("comment") == "heartbeat")[:-1]


@contextmanager
def watching_ready_asset(app: Rindle, tmp_path: Path, server: str
                         ) -> Iterator[tuple[SSE, dict[str, Variant]]]:
    """A processed asset and a stream watching it, past its opening; yields the stream and
    the asset's ready variants by name."""
    asset_id = ready(app, tmp_path)
    variants = app.ready_variants(asset_id)
    with served_events(app, server, heartbeat=0.05) as (_, base):
        sse, _ = opened(base, app.subscribe_token([asset_id]))
        try:
            yield sse, variants
        finally:
            sse.close()


# --- the token ------------------------------------------------------------------------------


def test_subscribe_token_known_answer() -> None:
    token = sign_subscription("test-secret", [ASSET_B, str(ASSET_A), ASSET_A], 1767225600)
    assert token == ("eyJhIjpbIjAxYTI0NDE0LWZmZDItNzAwMC05Mjk2LTdjMmFkYmVjMmEyZCIsIjAxYTI0"
                     "NDE1LTAzNmMtNzEzMy05ZmMxLTE1OGUxYzhjMGVlNSJdLCJlIjoxNzY3MjI1NjAwfQ."
                     "t6gdw99qu8eM96917UGX6jOSOlbZHnXfVkvpsifdS0Y")
    # the same bytes derived independently: sorted ids, compact JSON, domain-separated MAC
    payload = (b'{"a":["01a24414-ffd2-7000-9296-7c2adbec2a2d",'
               b'"01a24415-036c-7133-9fc1-158e1c8c0ee5"],"e":1767225600}')
    mac = hmac.new(b"test-secret", b"rindle:events:v1\x00" + payload, hashlib.sha256).digest()
    b64 = base64.urlsafe_b64encode
    assert token == f"{b64(payload).rstrip(b'=').decode()}.{b64(mac).rstrip(b'=').decode()}"
    grant = open_subscription("test-secret", token, now=1767225600)
    assert grant.asset_ids == {ASSET_A, ASSET_B} and grant.expires == 1767225600


@pytest.fixture
def one_db_app(sqlite_template: Path, tmp_path: Path) -> Iterator[Rindle]:
    """An app on SQLite only: for what no dialect changes."""
    with sqlite_app(sqlite_template, tmp_path) as app:
        yield app


def test_subscribe_token_bounds(one_db_app: Rindle) -> None:
    app = one_db_app
    now = 1767225000.0
    ids = [uuid.UUID(int=i) for i in range(MAX_ASSETS + 1)]
    token = subscribe_token(app, ids[:MAX_ASSETS], expires_in=600, now=now)
    assert len(open_subscription("test-secret", token, now=now).asset_ids) == MAX_ASSETS
    assert open_subscription("test-secret", token, now=now + 600).expires == int(now) + 600
    for bad in ([], ids, ["not-a-uuid"], str(ASSET_A)):
        with pytest.raises(UsageError) as caught:
            subscribe_token(app, bad, now=now)  # type: ignore[arg-type]
        assert caught.value.code == "invalid_subscription"
    for seconds in (0, 604801, True):
        with pytest.raises(UsageError):
            subscribe_token(app, [ASSET_A], expires_in=seconds, now=now)
    assert subscribe_token(app, [ASSET_A], expires_in=604800, now=now)
    assert app.subscribe_token([ASSET_A], expires_in=60)


def test_mounting_needs_a_secret(one_db_app: Rindle, tmp_path: Path) -> None:
    from rindle.web import events_wsgi

    keyless = Rindle(database_url=f"sqlite:///{tmp_path}/none.db", secret_key=None,
                     load_entrypoints=False)
    with pytest.raises(ConfigError):
        events_wsgi(keyless)
    with pytest.raises(ConfigError):
        keyless.subscribe_token([ASSET_A])
    for bad in ({"max_streams": 0}, {"heartbeat": 0}, {"max_lifetime": -1},
                {"poll_interval": 0}, {"retry_ms": -1}):
        with pytest.raises(ConfigError):
            events_wsgi(one_db_app, **bad)


EVENTS_TABLE = {"heartbeat": 2.5, "max_streams": 7, "max_lifetime": 60, "poll_interval": 0.25,
                "max_assets": 2, "token_ttl": 120}


def test_the_events_settings_are_each_mounts_defaults_and_options_override_them(
        sqlite_template: Path, tmp_path: Path) -> None:
    from rindle.web import events_asgi, events_wsgi

    with sqlite_app(sqlite_template, tmp_path, events=EVENTS_TABLE) as app:
        for mount in (events_wsgi, events_asgi):
            core = mount(app).core
            assert (core.heartbeat, core.max_streams, core.max_lifetime,
                    core.hub.poll_interval, core.max_assets) == (2.5, 7, 60.0, 0.25, 2)
            core.close()
            core = mount(app, heartbeat=1, max_streams=3, max_lifetime=5,
                         poll_interval=0.5).core
            assert (core.heartbeat, core.max_streams, core.max_lifetime,
                    core.hub.poll_interval, core.max_assets) == (1.0, 3, 5.0, 0.5, 2)
            core.close()
        with pytest.raises(ConfigError):
            events_wsgi(app, max_streams=0)  # an override is checked like the setting


def test_token_ttl_and_max_assets_come_from_the_settings(sqlite_template: Path,
                                                         tmp_path: Path) -> None:
    now = 1767225000.0
    with sqlite_app(sqlite_template, tmp_path, events=EVENTS_TABLE) as app:
        token = subscribe_token(app, [ASSET_A, ASSET_B], now=now)  # max_assets ids
        assert open_subscription("test-secret", token, now=now).expires == int(now) + 120
        assert open_subscription("test-secret", token, now=now + 120).expires == int(now) + 120
        with pytest.raises(TokenInvalid) as late:
            open_subscription("test-secret", token, now=now + 121)
        assert late.value.reason == "expired"
        with pytest.raises(UsageError) as caught:  # one id past max_assets
            subscribe_token(app, [ASSET_A, ASSET_B, uuid.UUID(int=3)], now=now)
        assert caught.value.code == "invalid_subscription"
        assert caught.value.message == ("a subscribe token binds 1 to 2 asset ids, not 3; open "
                                        "one stream per page of assets")
        explicit = subscribe_token(app, [ASSET_A], expires_in=30, now=now)
        assert open_subscription("test-secret", explicit, now=now).expires == int(now) + 30

        # the stream opens tokens of at most max_assets ids too
        three = sign_subscription("test-secret", [ASSET_A, ASSET_B, uuid.UUID(int=3)],
                                  int(now) + 10**9)
        with served_events(app, "wsgi", heartbeat=0.05) as (core, base):
            refused = SSE(base, f"/events?token={three}")
            assert (refused.status, refused.json()["error"]["reason"]) == (403, "malformed")
            refused.close()
            sse, _ = opened(base, sign_subscription("test-secret", [ASSET_A, ASSET_B],
                                                    int(now) + 10**9))
            sse.close()
            wait_for(lambda: core.open_streams == 0, "the slot to be freed")


# --- the stream ---------------------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
def test_snapshot_then_the_variant_goes_ready(photos: Rindle, tmp_path: Path, server: str,
                                              db_url: str) -> None:
    asset_id = uploaded(photos, tmp_path)
    state = photos.get_asset(asset_id).state
    with served_events(photos, server, heartbeat=0.05) as (core, base):
        sse, snapshot = opened(base, photos.subscribe_token([asset_id]))
        assert events(snapshot) == [{"kind": "asset", "id": str(asset_id),
                                     "asset_id": str(asset_id), "name": None,
                                     "state": state, "at": events(snapshot)[0]["at"]}]
        assert snapshot[0]["id"] == f"asset:{asset_id}:{events(snapshot)[0]['at']}"
        worker = in_thread(photos.jobs.drain)
        finals: set[str] = set()

        def both_ready(block: Block) -> bool:
            for kind, name in (("variant", "thumb"), ("asset", None)):
                if is_event(kind, name, "ready")(block):
                    finals.add(kind)
            return finals == {"variant", "asset"}

        seen = events(sse.until(both_ready))
        worker.join(timeout=60)
        thumb = [e["state"] for e in seen if e["name"] == "thumb"]
        if db_url.startswith("postgresql"):  # every committed transition is announced
            assert thumb == ["queued", "processing", "ready"]
        else:  # polling sees the states it reads: an ordered subset
            order = ["planned", "queued", "processing", "ready"]
            assert thumb == sorted(set(thumb), key=order.index) and thumb[-1] == "ready"
        assert {e["asset_id"] for e in seen} == {str(asset_id)}
        assert core.open_streams == 1
        sse.close()
        wait_for(lambda: core.open_streams == 0, "the slot to be freed")


@pytest.mark.parametrize("server", SERVERS)
def test_a_late_subscriber_learns_readiness_from_the_snapshot(
        photos: Rindle, tmp_path: Path, server: str) -> None:
    asset_id = ready(photos, tmp_path)
    with served_events(photos, server, heartbeat=0.05) as (_, base):
        sse, snapshot = opened(base, photos.subscribe_token([asset_id]))
        got = {(e["kind"], e["name"]): e["state"] for e in events(snapshot)}
        assert got == {("asset", None): "ready", ("variant", "large"): "ready",
                       ("variant", "thumb"): "ready"}  # app.upload opens no upload session
        # Last-Event-ID: a reconnect's snapshot leaves out the state the client has
        last = snapshot[-1]["id"]
        again, resumed = opened(base, photos.subscribe_token([asset_id]),
                                **{"Last-Event-ID": last})
        assert [b["id"] for b in resumed] == [b["id"] for b in snapshot[:-1]]
        sse.close()
        again.close()


@pytest.mark.parametrize("server", ["wsgi"])  # the source, not the server, is tested
def test_a_rolled_back_transition_announces_nothing(photos: Rindle, tmp_path: Path,
                                                    server: str) -> None:
    with watching_ready_asset(photos, tmp_path, server) as (sse, variants):
        with pytest.raises(RuntimeError), photos.db.transaction() as session:
            variant_fsm.transition(session, variants["thumb"].id, "ready", "stale")
            raise RuntimeError("roll back")
        with photos.db.engine.connect() as host:  # inside the host's transaction: its
            with photos.bind(host), photos.db.transaction() as session:  # rollback wins
                variant_fsm.transition(session, variants["thumb"].id, "ready", "stale")
            host.rollback()
        with photos.db.transaction() as session:  # the marker that follows it
            variant_fsm.transition(session, variants["large"].id, "ready", "stale")
        got = events(sse.until(lambda b: "event" in b))
        assert [(e["name"], e["state"]) for e in got] == [("large", "stale")]
        with photos.db.sessionmaker() as session:  # the live "at" is the row's updated_at,
            row = session.get(Variant, variants["large"].id)  # spelled as the snapshot does
            assert row is not None and got[0]["at"] == row.updated_at.isoformat()


@pytest.mark.parametrize("server", SERVERS)
def test_heartbeats_and_the_bound_on_open_streams(app: Rindle, server: str) -> None:
    token = app.subscribe_token([ASSET_A])
    with served_events(app, server, heartbeat=0.05, max_streams=2) as (core, base):
        first, snapshot = opened(base, token)
        assert snapshot == []  # an unknown asset: nothing to tell yet
        beats = first.until(lambda b: b.get("comment") == "heartbeat", limit=1)
        assert beats == [{"comment": "heartbeat"}] and HEARTBEAT == b": heartbeat\n\n"
        second, _ = opened(base, token)  # at the bound: still served
        assert core.open_streams == 2
        refused = SSE(base, f"/events?token={token}")  # one past it
        assert refused.status == 503 and refused.headers["retry-after"] == "5"
        assert refused.json()["error"]["code"] == "too_many_streams"
        assert refused.headers["content-type"] == "application/json"
        refused.close()
        first.close()
        wait_for(lambda: core.open_streams == 1, "the first slot to be freed")
        third, _ = opened(base, token)
        assert core.open_streams == 2
        second.close()
        third.close()
        wait_for(lambda: core.open_streams == 0 and core.hub.subscribers == 0,
                 "every slot and subscription to be freed")


@pytest.mark.parametrize("server", SERVERS)
def test_the_tokens_expiry_and_the_lifetime_end_the_stream(app: Rindle, server: str) -> None:
    clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    now = clock().timestamp()
    token = subscribe_token(app, [ASSET_A], expires_in=60, now=now)
    with served_events(app, server, heartbeat=0.05, clock=clock,
                       max_lifetime=40) as (core, base):
        sse, _ = opened(base, token)
        clock.advance(39)
        assert sse.until(lambda b: "comment" in b)[-1] == {"comment": "heartbeat"}
        clock.advance(1)  # the stream's lifetime is over; the token is still good
        assert sse.until(lambda b: "comment" in b and b["comment"] != "heartbeat")[-1] == {
            "comment": "closed lifetime"}
        assert sse.next() is None
        sse.close()
        again, _ = opened(base, token)  # what EventSource does next
        clock.advance(20)  # the token's last second
        assert again.until(lambda b: b.get("comment") == "heartbeat")
        clock.advance(1)
        assert again.until(lambda b: "comment" in b and b["comment"] != "heartbeat")[-1] == {
            "comment": "closed expired"}
        assert again.next() is None
        again.close()
        refused = SSE(base, f"/events?token={token}")
        assert refused.status == 403
        assert refused.json()["error"] == {
            "code": "forbidden", "reason": "expired",
            "message": "the token is refused (expired); ask the page for a new one"}
        refused.close()
        wait_for(lambda: core.open_streams == 0, "the slots to be freed")


def test_the_poller_and_listener_stop_with_the_last_subscriber(app: Rindle) -> None:
    with served_events(app, "wsgi", heartbeat=0.05) as (core, base):
        sse, _ = opened(base, app.subscribe_token([ASSET_A]))
        thread = core.hub.thread
        assert thread is not None and thread.is_alive()
        sse.close()
        wait_for(lambda: core.hub.subscribers == 0, "the subscriber to leave")
        assert core.hub.thread is None
        thread.join(timeout=20)
        assert not thread.is_alive()


@pytest.mark.parametrize("server", ["asgi"])  # the upload API runs under WSGI here
def test_the_upload_apis_verify_answer_carries_the_events_url(make_app: MakeApp,
                                                             tmp_path: Path,
                                                             server: str) -> None:
    import requests

    from rindle.cli.serve import make_threading_server
    from rindle.delivery import wsgi_app as delivery_wsgi
    from rindle.testing.servers import free_port
    from rindle.web import upload_api_wsgi
    from tests.web.conftest import Photo, header_actor

    port = free_port()
    app = make_app(profiles=[Photo], storages={"default": {
        "backend": "local", "root": str(tmp_path / "media"),
        "base_url": f"http://127.0.0.1:{port}"}})
    api = upload_api_wsgi(app, authorize=header_actor, mount="/api", events="/live/")
    media = delivery_wsgi(app)
    front = make_threading_server(
        lambda env, start: (api if env["PATH_INFO"].startswith("/api/") else media)(
            env, start), "127.0.0.1", port, quiet=True)
    in_thread(front.serve_forever)
    base = f"http://127.0.0.1:{port}"
    with served_events(app, server, mount="/live", heartbeat=0.05) as (_, live):
        who = {"X-Actor": "alice"}
        session = requests.post(f"{base}/api/uploads", json={
            "profile": "photo", "filename": "a.jpg", "content_type": "image/jpeg",
            "size": 64}, headers=who, timeout=30).json()
        signed = requests.post(f"{base}/api/uploads/{session['id']}/sign", headers=who,
                               timeout=30).json()
        body = b"\xff\xd8\xff\xe0" + b"\x00" * 60
        assert requests.put(signed["url"], data=body, headers=signed["headers"],
                            timeout=30).status_code == 201
        verified = requests.post(f"{base}/api/uploads/{session['id']}/verify", headers=who,
                                 timeout=30).json()
        url = verified.pop("events_url")
        assert url.startswith("/live/events?token=")
        assert verified == {"id": session["id"], "asset_id": session["asset_id"],
                            "state": "validating", "session_state": "completed"}
        sse, snapshot = opened(live, url.split("token=", 1)[1], "/live")
        assert [(e["kind"], e["id"], e["state"]) for e in events(snapshot)] == [
            ("asset", session["asset_id"], "validating"),
            ("upload_session", session["id"], "completed")]
        sse.close()
    front.shutdown()
    front.server_close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_listener_reconnects_and_resynchronises(photos: Rindle, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture
                                                    ) -> None:
    from sqlalchemy import text

    asset_id = ready(photos, tmp_path)
    thumb = photos.ready_variants(asset_id)["thumb"].id
    with served_events(photos, "wsgi", heartbeat=0.05) as (core, base):
        sse, _ = opened(base, photos.subscribe_token([asset_id]))
        with photos.db.engine.begin() as conn:  # the listener's connection dies
            killed = conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query = 'LISTEN rindle_events'")).all()
        assert killed == [(True,)]
        with photos.db.transaction() as session:  # committed while it may be down
            variant_fsm.transition(session, thumb, "ready", "stale")
        got = events(sse.until(lambda b: "event" in b))
        assert [(e["name"], e["state"]) for e in got] == [("thumb", "stale")]
        assert "the listener's connection failed" in caplog.text
        sse.close()
        wait_for(lambda: core.open_streams == 0, "the slot to be freed")


def _listen_connections(app: Rindle) -> int:
    """How many connections ``LISTEN`` on this test's PostgreSQL database now."""
    from sqlalchemy import text

    with app.db.engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query = 'LISTEN rindle_events' AND pid <> pg_backend_pid()")).scalar_one())


def test_mounts_on_one_database_share_one_listener(make_app: MakeApp, db_url: str,
                                                   tmp_path: Path) -> None:
    """Two mounts (two apps, WSGI and ASGI) on one PostgreSQL database hold one shared
    listener: one LISTEN connection, both streams hear the same NOTIFY, the listener
    outlives the first mount and goes with the last. On SQLite each mount polls alone."""
    from rindle.web.events_source import shared_listeners

    first, second = make_app(profiles=PROFILES), make_app(profiles=PROFILES)
    postgres = db_url.startswith("postgresql")
    asset_id = ready(first, tmp_path)
    thumb = first.ready_variants(asset_id)["thumb"].id
    token = first.subscribe_token([asset_id])
    with (served_events(first, "wsgi", heartbeat=0.05) as (core_a, base_a),
          served_events(second, "asgi", heartbeat=0.05) as (core_b, base_b)):
        listener = core_a.hub.listener
        if postgres:
            assert listener is not None and core_b.hub.listener is listener
            assert listener in shared_listeners() and listener.mounts == 2
            assert not listener.running and _listen_connections(first) == 0
        else:
            assert listener is None and core_b.hub.listener is None
        sse_a, _ = opened(base_a, token)
        sse_b, _ = opened(base_b, token)
        thread_a, thread_b = core_a.hub.thread, core_b.hub.thread
        assert thread_a is not None and thread_b is not None
        assert (thread_a is thread_b) is postgres  # one listener, or two pollers
        if postgres:
            assert _listen_connections(first) == 1
        with first.db.transaction() as session:
            variant_fsm.transition(session, thumb, "ready", "stale")
        for sse in (sse_a, sse_b):
            got = events(sse.until(lambda b: "event" in b))
            assert [(e["id"], e["state"]) for e in got] == [(str(thumb), "stale")]

        sse_a.close()
        core_a.close()  # the first mount goes; the second still listens
        if postgres:
            assert listener is not None and listener.mounts == 1
            assert listener in shared_listeners() and core_b.hub.thread is thread_b
            assert _listen_connections(first) == 1
        with second.db.transaction() as session:
            variant_fsm.transition(session, thumb, "stale", "queued")
        got = events(sse_b.until(lambda b: "event" in b))
        assert [(e["id"], e["state"]) for e in got] == [(str(thumb), "queued")]
        sse_b.close()
    if postgres:  # the last mount closed: the listener is forgotten and disconnects
        assert listener is not None and listener.mounts == 0
        assert listener not in shared_listeners() and not listener.running
        wait_for(lambda: _listen_connections(first) == 0, "the LISTEN connection to close")
    else:
        assert core_a.hub.thread is None and core_b.hub.thread is None


def test_one_state_of_a_row_is_sent_once_and_never_an_older_one(one_db_app: Rindle) -> None:
    from rindle.web.events import EventsCore, Subscription, _Stream
    from rindle.web.events_source import Change

    core = EventsCore(one_db_app, clock=ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    stream = _Stream(core, Subscription(frozenset({ASSET_A}), 2_000_000_000), None)

    def change(state: str, second: int) -> Change:
        return Change("variant", "v1", str(ASSET_A), "thumb", state,
                      f"2026-01-01T00:00:0{second}+00:00")

    assert stream.frame(change("processing", 1)) != b""
    assert stream.frame(change("queued", 0)) == b""  # arrived late: older than what was sent
    assert stream.frame(change("processing", 1)) == b""  # the same state again
    assert stream.frame(change("ready", 2)) == (
        b"event: variant\nid: variant:v1:2026-01-01T00:00:02+00:00\n"
        b'data: {"kind":"variant","id":"v1","asset_id":"01a24414-ffd2-7000-9296-7c2adbec2a2d",'
        b'"name":"thumb","state":"ready","at":"2026-01-01T00:00:02+00:00"}\n\n')
    assert Change.from_payload('{"kind":"nope","id":"1","asset_id":"2","name":null,'
                               '"state":"x","at":null}') is None
    assert Change.from_payload("not json") is None
    core.close()


@pytest.mark.parametrize("server", ["wsgi"])  # the source, not the server, is tested
def test_a_batch_transition_announces_every_row_it_moves(photos: Rindle, tmp_path: Path,
                                                         server: str) -> None:
    with watching_ready_asset(photos, tmp_path, server) as (sse, variants):
        with photos.db.transaction() as session:
            moved = variant_fsm.transition_many(
                session, [variants["thumb"].id, variants["large"].id], "ready", "stale")
        assert len(moved) == 2
        got: list[dict[str, Any]] = []
        while len(got) < 2:
            got += events(sse.until(lambda b: "event" in b))
        assert sorted((e["name"], e["state"]) for e in got) == [("large", "stale"),
                                                                ("thumb", "stale")]
