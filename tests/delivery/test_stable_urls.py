"""Stable signed URLs: the expiry is rounded up to a ``[delivery] signed_url_bucket``.

Every time comes from an injected :class:`rindle.clock.ManualClock` (``app.jobs.clock``),
so the boundaries are exact seconds, not hopes about a slow machine. The served
response's cache headers are checked over real HTTP against the token's expiry.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from rindle import Rindle
from rindle.clock import ManualClock
from rindle.delivery.urls import bucket_expiry
from rindle.errors import ConfigError
from rindle.signing import verify
from rindle.storage.local import LocalStorage
from tests.delivery.conftest import Served
from tests.delivery_kit import add_asset

#: 2026-03-02 12:00:00 UTC, a Monday, and a multiple of 300 and 3600 seconds.
NOON = 1_772_452_800
SECRET = "test-secret"


def at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(at(NOON))


@pytest.fixture
def stable_app(make_url_app: Callable[..., Rindle], clock: ManualClock) -> Rindle:
    app = make_url_app()
    app.jobs.clock = clock
    return app


def expiry_of(url: str) -> int:
    token = parse_qs(urlsplit(url).query)["token"][0]
    key = urlsplit(url).path.split("/media/", 1)[1]
    return verify(SECRET, token, method="GET", key=key, now=0).expires


# --- the rounding -----------------------------------------------------------------------------

@pytest.mark.parametrize(("now", "ttl", "bucket", "expected"), [
    (0, 900, 300, 900),
    (1, 900, 300, 1200),
    (299, 900, 300, 1200),
    (300, 900, 300, 1200),
    (301, 900, 300, 1500),
    (NOON, 900, 300, NOON + 900),
    (NOON - 299, 900, 300, NOON + 900),     # the first second of the bucket
    (NOON + 1, 900, 300, NOON + 1200),      # the first second of the next one
    (NOON + 1, 900, 1, NOON + 901),         # bucket 1: no rounding
    (NOON + 1, 60, 3600, NOON + 3600),      # a bucket longer than the ttl
    (NOON + 3599, 1, 3600, NOON + 3600),
    (NOON + 3600, 1, 3600, NOON + 7200),
])
def test_bucket_expiry_known_answers(now: int, ttl: int, bucket: int, expected: int) -> None:
    assert bucket_expiry(now, ttl, bucket) == expected


@pytest.mark.parametrize(("ttl", "bucket"), [(0, 300), (900, 0), (-1, 300)])
def test_bucket_expiry_refuses_a_zero_or_negative_span(ttl: int, bucket: int) -> None:
    with pytest.raises(ValueError, match=">= 1 second"):
        bucket_expiry(NOON, ttl, bucket)


def test_no_calendar_every_weekday_and_midnight_is_plain_arithmetic() -> None:
    # The rounding is on Unix seconds: the same answer on every day of the week, across
    # midnight and with a bucket of a whole day.
    for day in range(7):
        midnight = NOON - 12 * 3600 + day * 86400
        assert at(midnight).weekday() == day  # Monday .. Sunday
        assert bucket_expiry(midnight - 1, 900, 300) == midnight + 900
        assert bucket_expiry(midnight, 900, 300) == midnight + 900
        assert bucket_expiry(midnight + 1, 900, 300) == midnight + 1200
        assert bucket_expiry(midnight - 1, 1, 86400) == midnight
        assert bucket_expiry(midnight + 1, 1, 86400) == midnight + 86400


# --- the known-answer token ---------------------------------------------------------------------

def test_known_answer_token_and_url(tmp_path: Path) -> None:
    storage = LocalStorage(name="default", root=tmp_path, secret_key=SECRET,
                           base_url="https://cdn.example", url_prefix="/media")
    url = storage.url_until("shot/0195.jpg", expires_at=NOON + 900, now=NOON,
                            content_type="image/jpeg")
    assert url == (
        "https://cdn.example/media/shot/0195.jpg?token="
        "eyJlIjoxNzcyNDUzNzAwLCJrIjoic2hvdC8wMTk1LmpwZyIsIm0iOiJHRVQiLCJ0IjoiaW1hZ2UvanBlZyJ9."
        "HoqgwOa9k2GAWzGZ5YzEcpoKHBKCXKrdcFUx0PdAgrk")
    # the same token, computed from the documented format: HMAC-SHA256 over a domain tag
    # and the sorted compact JSON claims, both parts unpadded URL-safe base64
    payload = json.dumps({"e": NOON + 900, "k": "shot/0195.jpg", "m": "GET",
                          "t": "image/jpeg"}, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(SECRET.encode(), b"rindle:url:v1\x00" + payload, hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    assert url.endswith(f"?token={b64(payload)}.{b64(mac)}")
    # the claims hold no signing time: signed an hour earlier, the URL is the same
    assert storage.url_until("shot/0195.jpg", expires_at=NOON + 900, now=NOON - 3600,
                             content_type="image/jpeg") == url


# --- through the app ----------------------------------------------------------------------------

def test_one_asset_gets_the_byte_identical_url_until_the_bucket_turns(
        stable_app: Rindle, clock: ManualClock) -> None:
    aid = add_asset(stable_app)
    clock.set(at(NOON - 299))  # the first second of the bucket ending at NOON
    first = stable_app.url(aid, "thumb")
    assert expiry_of(first) == NOON + 900
    for moment in (NOON - 150, NOON - 0.001, NOON, NOON + 0.999):  # the last second too
        clock.set(at(moment))
        assert stable_app.url(aid, "thumb") == first
        assert stable_app.urls([aid], "thumb") == {aid: first}
    clock.set(at(NOON + 1))  # the first second of the next bucket
    turned = stable_app.url(aid, "thumb")
    assert turned != first and expiry_of(turned) == NOON + 1200
    clock.set(at(NOON + 300))
    assert stable_app.url(aid, "thumb") == turned


def test_the_profile_ttl_and_expires_in_are_the_least_lifetime(
        stable_app: Rindle, clock: ManualClock) -> None:
    shot, brief = add_asset(stable_app), add_asset(stable_app, "brief")
    clock.set(at(NOON + 7))
    assert expiry_of(stable_app.url(brief)) == NOON + 300      # 60 s ttl -> next 300
    assert expiry_of(stable_app.url(shot)) == NOON + 1200      # [delivery] default 900
    assert expiry_of(stable_app.url(shot, expires_in=3600)) == NOON + 3900


def test_the_bucket_and_ttl_come_from_the_delivery_settings(
        make_url_app: Callable[..., Rindle], clock: ManualClock) -> None:
    app = make_url_app(delivery={"signed_url_ttl": 120,
                                              "signed_url_bucket": 3600})
    app.jobs.clock = clock
    aid = add_asset(app)
    clock.set(at(NOON + 1))
    assert expiry_of(app.url(aid)) == NOON + 3600
    clock.set(at(NOON + 3600 - 120))  # still inside: now + ttl lands on the bucket's end
    assert expiry_of(app.url(aid)) == NOON + 3600
    clock.set(at(NOON + 3600 - 119))
    assert expiry_of(app.url(aid)) == NOON + 7200
    with pytest.raises(ConfigError, match="signed_url_bucket must be a whole number"):
        make_url_app(delivery={"signed_url_bucket": 0})


# --- the cache headers that follow ----------------------------------------------------------

def test_a_private_response_is_never_cacheable_past_its_token(served: Served) -> None:
    served.publish("shot/a.jpg", b"\xff\xd8\xff\xe0 bytes", "image/jpeg")
    expires_at = bucket_expiry(int(time.time()), 900, 300)
    url = served.storage.url_until("shot/a.jpg", expires_at=expires_at, now=int(time.time()))
    before = int(time.time())
    resp = served.request("GET", url)
    after = int(time.time())
    assert resp.status == 200
    cache = resp.header("cache-control")
    assert cache is not None and cache.startswith("private, max-age=")
    max_age = int(cache.removeprefix("private, max-age="))
    assert expires_at - after <= max_age <= expires_at - before
    assert resp.header("expires") == email.utils.formatdate(expires_at, usegmt=True)


def test_a_public_response_is_immutable_and_names_no_expiry(served: Served) -> None:
    served.publish("shot/b.jpg", b"\xff\xd8\xff\xe0 bytes", "image/jpeg")
    resp = served.request("GET", served.storage.url("shot/b.jpg"))
    assert resp.status == 200
    assert resp.header("cache-control") == "public, max-age=31536000, immutable"
    assert resp.header("expires") is None
