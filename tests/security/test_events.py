"""Attacks on the live progress stream (rindle.web.events), over real loopback HTTP under
rindle's threading WSGI server and uvicorn: a token for asset A never shows asset B; forged,
tampered, re-spelled, cross-purpose, oversized and expired tokens are 403 with their reason;
refusals never echo the token and carry the security headers; the method and the path are
checked; a hostile Last-Event-ID is ignored."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rindle import Rindle
from rindle.domain.fsm import variant as variant_fsm
from rindle.signing import SignedClaims, sign, sign_payload
from rindle.web.events import TOKEN_DOMAIN, sign_subscription
from tests.apps import MakeApp
from tests.lifecycle.conftest import PROFILES, jpeg_bytes
from tests.web.sse import SSE, events, served_events, sqlite_app

SERVERS = ["wsgi", "asgi"]
ASSET_A = uuid.UUID("01a24414-ffd2-7000-9296-7c2adbec2a2d")
ASSET_B = uuid.UUID("01a24415-036c-7133-9fc1-158e1c8c0ee5")
SECRET = "test-secret"  # the make_app fixture's


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _later() -> int:
    return int(time.time()) + 3600


@pytest.fixture
def one_db_app(sqlite_template: Path, tmp_path: Path) -> Iterator[Rindle]:
    with sqlite_app(sqlite_template, tmp_path) as app:
        yield app


def _ready(app: Rindle, tmp_path: Path, name: str) -> uuid.UUID:
    path = tmp_path / name
    path.write_bytes(jpeg_bytes((80, 60)))
    asset_id = app.upload("photo", path).id
    app.jobs.drain()
    return asset_id


@pytest.mark.parametrize("server", SERVERS)
def test_a_token_for_asset_a_never_shows_asset_b(make_app: MakeApp, tmp_path: Path,
                                                 server: str) -> None:
    app = make_app(profiles=PROFILES)
    a, b = _ready(app, tmp_path, "a.jpg"), _ready(app, tmp_path, "b.jpg")
    token = app.subscribe_token([a])
    with served_events(app, server, heartbeat=0.05) as (_, base):
        # an extra asset= parameter changes nothing: the token alone names what is watched
        sse = SSE(base, f"/events?token={token}&asset={b}&asset_ids={b}")
        assert sse.status == 200
        opening = sse.until(lambda blk: blk.get("comment") == "heartbeat")
        assert {e["asset_id"] for e in events(opening)} == {str(a)}
        with app.db.transaction() as session:  # B changes first, then A (the marker)
            variant_fsm.transition(session, app.ready_variants(b)["thumb"].id, "ready",
                                   "stale")
        with app.db.transaction() as session:
            variant_fsm.transition(session, app.ready_variants(a)["thumb"].id, "ready",
                                   "stale")
        got = events(sse.until(lambda blk: "event" in blk))
        assert [(e["asset_id"], e["name"], e["state"]) for e in got] == [
            (str(a), "thumb", "stale")]
        sse.close()
        # the same payload naming B under A's MAC is refused
        payload_a, mac_a = token.split(".")
        body = json.loads(base64.urlsafe_b64decode(payload_a + "=" * (-len(payload_a) % 4)))
        body["a"] = sorted([str(a), str(b)])
        forged = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        refused = SSE(base, f"/events?token={forged}.{mac_a}")
        assert refused.status == 403
        assert refused.json()["error"]["reason"] == "bad_signature"
        refused.close()


def _tokens() -> dict[str, tuple[str, str]]:
    """Hostile token -> the refusal reason it must get."""
    good = sign_subscription(SECRET, [ASSET_A], _later())
    payload, mac = good.split(".")
    flipped = mac[:10] + ("A" if mac[10] != "A" else "B") + mac[11:]
    # the MAC's last character carries 2 unused bits (zero when canonical): setting one
    # decodes to the same bytes, a second spelling of the same token
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert alphabet.index(mac[-1]) % 4 == 0
    respelled = f"{payload}.{mac[:-1]}{alphabet[alphabet.index(mac[-1]) + 1]}"
    assert base64.urlsafe_b64decode(respelled.split(".")[1] + "=") == (
        base64.urlsafe_b64decode(mac + "="))
    many = [str(uuid.UUID(int=i)) for i in range(101)]
    return {
        "empty": ("", "malformed"),
        "garbage": ("abc", "malformed"),
        "padded": (good + "=", "malformed"),
        "respelled": (respelled, "malformed"),
        "oversized": ("a" * 20000 + "." + mac, "malformed"),
        "flipped_mac": (f"{payload}.{flipped}", "bad_signature"),
        "other_secret": (sign_subscription("another-secret", [ASSET_A], _later()),
                         "bad_signature"),
        "delivery_token": (sign(SECRET, SignedClaims("GET", str(ASSET_A), _later())),
                           "bad_signature"),
        "too_many_ids": (sign_payload(SECRET, TOKEN_DOMAIN, {"a": many, "e": _later()}),
                         "malformed"),
        "no_ids": (sign_payload(SECRET, TOKEN_DOMAIN, {"a": [], "e": _later()}),
                   "malformed"),
        "not_uuids": (sign_payload(SECRET, TOKEN_DOMAIN, {"a": ["../x"], "e": _later()}),
                      "malformed"),
        "repeated_id": (sign_payload(SECRET, TOKEN_DOMAIN,
                                     {"a": [str(ASSET_A), str(ASSET_A)], "e": _later()}),
                        "malformed"),
        "string_expiry": (sign_payload(SECRET, TOKEN_DOMAIN,
                                       {"a": [str(ASSET_A)], "e": str(_later())}),
                          "malformed"),
        "expired": (sign_subscription(SECRET, [ASSET_A], int(time.time()) - 1), "expired"),
    }


@pytest.mark.parametrize("server", SERVERS)
def test_hostile_tokens_are_refused_with_their_reason(one_db_app: Rindle, server: str,
                                                      caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    app = one_db_app  # refusals never read the database: one dialect is enough
    caplog.set_level(logging.DEBUG)
    cases = _tokens()
    with served_events(app, server) as (core, base):
        for name, (token, reason) in cases.items():
            sse = SSE(base, f"/events?token={token}")
            body = sse.response.read()
            assert sse.status == 403, name
            error = json.loads(body)["error"]
            assert (error["code"], error["reason"]) == ("forbidden", reason), name
            assert token.encode() not in body or not token, name
            assert sse.headers["content-type"] == "application/json"
            assert sse.headers["x-content-type-options"] == "nosniff"
            assert sse.headers["content-security-policy"] == "default-src 'none'; sandbox"
            sse.close()
        for path in ("/events", "/events?token=", "/events?tok=x"):
            sse = SSE(base, path)
            assert sse.status == 403 and sse.json()["error"]["reason"] in ("missing",
                                                                          "malformed")
            sse.close()
        good = app.subscribe_token([ASSET_A])
        twice = SSE(base, f"/events?token={good}&token={good}")
        assert twice.status == 403 and twice.json()["error"]["reason"] == "missing"
        twice.close()
        assert core.open_streams == 0
    for name, (token, _) in cases.items():
        if len(token) > 8:
            assert token not in caplog.text, name


@pytest.mark.parametrize("server", SERVERS)
def test_method_path_and_last_event_id(app: Rindle, server: str) -> None:
    import http.client
    from urllib.parse import urlsplit

    token = app.subscribe_token([ASSET_A])
    with served_events(app, server, heartbeat=0.05) as (core, base):
        parts = urlsplit(base)
        for method, path, status in (("POST", f"/events?token={token}", 405),
                                     ("PUT", f"/events?token={token}", 405),
                                     ("GET", f"/events/x?token={token}", 404),
                                     ("GET", f"/event?token={token}", 404),
                                     ("GET", f"/?token={token}", 404)):
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            conn.request(method, path, body=b"" if method != "GET" else None)
            answer = conn.getresponse()
            body = answer.read()
            assert answer.status == status, (method, path)
            assert token.encode() not in body
            if status == 405:
                assert answer.getheader("Allow") == "GET"
            conn.close()
        hostile = SSE(base, f"/events?token={token}", {"Last-Event-ID": "x" * 4000})
        assert hostile.status == 200 and hostile.next() == {"retry": "3000"}
        assert hostile.next() == {"comment": "heartbeat"}
        hostile.close()
        assert core.max_streams == 100


def test_delivery_tokens_have_one_spelling_too() -> None:
    from rindle.signing import TokenInvalid, verify

    token = sign(SECRET, SignedClaims("GET", "k/x.jpg", _later()))
    payload, mac = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = f"{payload}.{mac[:-1]}{alphabet[alphabet.index(mac[-1]) + 1]}"
    assert verify(SECRET, token, method="GET", key="k/x.jpg").key == "k/x.jpg"
    with pytest.raises(TokenInvalid) as caught:
        verify(SECRET, respelled, method="GET", key="k/x.jpg")
    assert caught.value.reason == "malformed"
