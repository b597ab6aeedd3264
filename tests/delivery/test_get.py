"""Signed GET/HEAD of local objects over real loopback HTTP: tokens, headers, Range."""

from __future__ import annotations

import io
import os
import time

import pytest

from rindle.signing import SignedClaims, sign

from .conftest import Served

DATA = os.urandom(1000)
KEY = "clip/0190/clip one.mp4"


@pytest.fixture
def stored(served: Served) -> Served:
    served.publish(KEY, DATA, "video/mp4")
    return served


def test_signed_get_returns_the_bytes_and_the_headers(stored: Served) -> None:
    url = stored.storage.url(KEY, expires_in=60, disposition="attachment")
    resp = stored.request("GET", url)
    assert resp.status == 200
    assert resp.body == DATA
    assert resp.header("Content-Type") == "video/mp4"
    assert resp.header("Content-Length") == "1000"
    assert resp.header("Accept-Ranges") == "bytes"
    assert resp.header("X-Content-Type-Options") == "nosniff"
    etag, modified = resp.header("ETag") or "", resp.header("Last-Modified") or ""
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    assert modified.endswith(" GMT")
    assert resp.header("Content-Disposition") == (
        "attachment; filename=\"clip_one.mp4\"; filename*=UTF-8''clip_one.mp4")
    cache = resp.header("Cache-Control") or ""
    assert cache.startswith("private, max-age=")
    assert 0 < int(cache.rsplit("=", 1)[1]) <= 60


def test_inline_disposition_and_none(stored: Served) -> None:
    inline = stored.request("GET", stored.storage.url(KEY, expires_in=60, disposition="inline"))
    assert inline.header("Content-Disposition") == (
        "inline; filename=\"download\"; filename*=UTF-8''download")
    plain = stored.request("GET", stored.storage.url(KEY, expires_in=60))
    assert plain.status == 200 and plain.header("Content-Disposition") is None


def test_non_expiring_url_is_public_and_immutable(stored: Served) -> None:
    resp = stored.request("GET", stored.storage.url(KEY))
    assert resp.status == 200 and resp.body == DATA
    assert resp.header("Cache-Control") == "public, max-age=31536000, immutable"


def test_head_sends_headers_without_a_body(stored: Served) -> None:
    resp = stored.request("HEAD", stored.storage.url(KEY, expires_in=60))
    assert resp.status == 200
    assert resp.body == b""
    assert resp.header("Content-Length") == "1000"
    assert resp.header("Content-Type") == "video/mp4"


def test_if_none_match_gives_304(stored: Served) -> None:
    url = stored.storage.url(KEY, expires_in=60)
    etag = stored.request("GET", url).header("ETag")
    assert etag
    again = stored.request("GET", url, headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    other = stored.request("GET", url, headers={"If-None-Match": '"nope"'})
    assert other.status == 200 and other.body == DATA


def _path_and_token(url: str) -> tuple[str, str]:
    path, _, token = url.partition("?token=")
    return path, token


def test_tampered_token_is_403(stored: Served) -> None:
    path, token = _path_and_token(stored.storage.url(KEY, expires_in=60))
    payload, mac = token.split(".")
    forged = sign("not-the-secret", SignedClaims("GET", KEY, int(time.time()) + 60))
    for bad in (payload + "." + mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"),
                forged, "garbage", ""):
        resp = stored.request("GET", f"{path}?token={bad}")
        assert resp.status == 403, bad
        assert b"expired" not in resp.body
    assert stored.request("GET", path).body == b"forbidden: missing_token\n"
    assert b"bad_signature" in stored.request("GET", f"{path}?token={forged}").body


def test_expired_token_is_403_with_its_own_reason(stored: Served) -> None:
    path, _ = _path_and_token(stored.storage.url(KEY, expires_in=60))
    token = sign("test-secret", SignedClaims("GET", KEY, int(time.time()) - 5))
    resp = stored.request("GET", f"{path}?token={token}")
    assert resp.status == 403
    assert resp.body == b"forbidden: expired\n"


def test_token_for_another_key_or_method_is_403(stored: Served) -> None:
    stored.storage.put("clip/0190/other.mp4", io.BytesIO(b"other"))
    _, token = _path_and_token(stored.storage.url("clip/0190/other.mp4", expires_in=60))
    path, _ = _path_and_token(stored.storage.url(KEY, expires_in=60))
    resp = stored.request("GET", f"{path}?token={token}")
    assert resp.status == 403 and resp.body == b"forbidden: wrong_request\n"
    put_url = stored.storage.presign_put(KEY, expires_in=60).url
    assert stored.request("GET", put_url).status == 403


def test_missing_object_is_404(served: Served) -> None:
    resp = served.request("GET", served.storage.url("clip/0190/never.mp4", expires_in=60))
    assert resp.status == 404
    served.storage.path_for("clip/0190/dir/x").parent.mkdir(parents=True)
    dir_url = served.storage.url("clip/0190/dir", expires_in=60)
    assert served.request("GET", dir_url).status == 404


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=10-19", 10, 19),
    ("bytes=0-0", 0, 0),
    ("bytes=-5", 995, 999),
    ("bytes=-5000", 0, 999),
    ("bytes=990-", 990, 999),
    ("bytes=900-5000", 900, 999),
])
def test_single_range_is_206(stored: Served, header: str, start: int, end: int) -> None:
    resp = stored.request("GET", stored.storage.url(KEY, expires_in=60),
                          headers={"Range": header})
    assert resp.status == 206
    assert resp.body == DATA[start:end + 1]
    assert resp.header("Content-Range") == f"bytes {start}-{end}/1000"
    assert resp.header("Content-Length") == str(end - start + 1)
    [(measurements, metadata)] = stored.events_named("rindle.delivery.range_request")
    assert measurements["offset"] == start and measurements["length"] == end - start + 1
    assert measurements["file_size"] == 1000
    assert metadata == {"profile": "unknown", "adapter": "local", "storage": "default"}


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range_is_416(stored: Served, header: str) -> None:
    resp = stored.request("GET", stored.storage.url(KEY, expires_in=60),
                          headers={"Range": header})
    assert resp.status == 416
    assert resp.header("Content-Range") == "bytes */1000"
    assert stored.events_named("rindle.delivery.range_request") == []


@pytest.mark.parametrize(("header", "reason"), [
    ("bytes=0-1,5-9", "multiple_ranges"),
    ("bytes=9-1", "range_unparseable"),
    ("items=0-1", "range_unparseable"),
    ("bytes=abc", "range_unparseable"),
])
def test_multiple_or_malformed_ranges_get_the_full_body(stored: Served, header: str,
                                                         reason: str) -> None:
    resp = stored.request("GET", stored.storage.url(KEY, expires_in=60),
                          headers={"Range": header})
    assert resp.status == 200 and resp.body == DATA
    assert resp.header("Content-Range") is None
    [(_, metadata)] = stored.events_named("rindle.delivery.range_fallback")
    assert metadata["reason"] == reason


def test_if_range_mismatch_ignores_the_range(stored: Served) -> None:
    url = stored.storage.url(KEY, expires_in=60)
    etag = stored.request("HEAD", url).header("ETag")
    assert etag
    same = stored.request("GET", url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert same.status == 206 and same.body == DATA[:10]
    stale = stored.request("GET", url, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status == 200 and stale.body == DATA


def test_head_with_range(stored: Served) -> None:
    resp = stored.request("HEAD", stored.storage.url(KEY, expires_in=60),
                          headers={"Range": "bytes=-10"})
    assert resp.status == 206 and resp.body == b""
    assert resp.header("Content-Range") == "bytes 990-999/1000"
