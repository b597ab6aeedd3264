"""Attacks on the upload JSON API over real loopback HTTP: huge headers and bodies, deep
JSON, overflowing numbers, path traversal in ids and filenames, and another actor's
session."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from rindle import Rindle
from rindle.domain.models import Asset, UploadSession
from rindle.web import upload_api_wsgi
from tests.apps import local_storage
from tests.web.conftest import header_actor, serve_wsgi, web_app

__all__ = ["web_app"]  # the fixture

ALICE = {"X-Actor": "alice"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(web_app: Rindle) -> Iterator[str]:
    with serve_wsgi(upload_api_wsgi(web_app, authorize=header_actor,
                                    max_json_bytes=8192)) as base:
        yield base


def post(url: str, payload: object = None, *, data: bytes | None = None,
         headers: dict[str, str] | None = None) -> requests.Response:
    sent = {**ALICE, **(headers or {})}
    return requests.post(url, json=payload, data=data, headers=sent, timeout=30)


def start(api: str, **overrides: object) -> requests.Response:
    return post(f"{api}/uploads", {"profile": "photo", "filename": "cat.jpg",
                                   "content_type": "image/jpeg", "size": 10, **overrides})


def raw(url: str, method: str, target: str, headers: dict[str, str],
        body: bytes | None = None) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def code(answer: requests.Response) -> str:
    return str(answer.json()["error"]["code"])


def test_huge_headers_and_bodies(api: str) -> None:
    huge = post(f"{api}/uploads", {"profile": "photo"}, headers={"X-Pad": "A" * 70_000})
    assert huge.status_code == 431
    big = post(f"{api}/uploads", data=b"{" + b" " * 8192 + b"}", headers=JSON)
    assert big.status_code == 413 and code(big) == "request_too_large"
    at_limit = post(f"{api}/uploads", data=b"{" + b" " * 8190 + b"}", headers=JSON)
    assert at_limit.status_code == 422  # parsed: an empty object lacks a profile
    declared = raw(api, "POST", "/uploads", {**ALICE, **JSON, "Content-Length": "9999999999"},
                   body=b"{}")
    assert declared == 413


def test_deep_json_and_overflowing_numbers(api: str) -> None:
    deep = post(f"{api}/uploads", data=b"[" * 4000 + b"]" * 4000, headers=JSON)
    assert deep.status_code == 400 and code(deep) == "invalid_json"
    for size in (2 ** 64, -1, 1.5, True, "10", None, 10 ** 400):
        answer = start(api, size=size)
        assert answer.status_code in (413, 422), size
    assert code(start(api, size=2 ** 63 - 1)) == "max_bytes_exceeded"
    assert code(start(api, size=2 ** 63)) == "invalid_upload"
    infinity = post(f"{api}/uploads", data=b'{"profile": "photo", "filename": "a.jpg", '
                                           b'"size": Infinity}', headers=JSON)
    assert infinity.status_code == 422
    sid = start(api).json()["id"]
    for number in ("0", "10001", "-1", "99999999999999999999", "1e3", "%31"):
        assert raw(api, "POST", f"/uploads/{sid}/parts/{number}", ALICE) in (404, 422), number
    long_expiry = post(f"{api}/uploads/{sid}/sign", {"expires_in": 10 ** 30})
    assert long_expiry.status_code == 422


def test_path_traversal(web_app: Rindle, api: str) -> None:
    sid = start(api).json()["id"]
    for target in (f"/uploads/../uploads/{sid}/sign", f"/uploads/%2e%2e/{sid}/sign",
                   f"/uploads/{sid}/sign/..", f"/uploads/{sid}%00/sign",
                   "/uploads/..%2f..%2fetc%2fpasswd/sign", f"/uploads/{sid}/../../sign"):
        assert raw(api, "POST", target, ALICE) == 404, target
    evil = start(api, filename="../../../etc/passwd.jpg")
    assert evil.status_code == 201
    with web_app.db.sessionmaker() as s:
        row = s.get(UploadSession, uuid.UUID(evil.json()["id"]))
        assert row is not None
        asset = s.get(Asset, row.asset_id)
        assert asset is not None and "/" not in (asset.filename or "")
    key = evil.json()["key"]
    assert key.startswith("photo/") and ".." not in key
    assert local_storage(web_app).path_for(key).is_relative_to(local_storage(web_app).root)


def test_another_actors_session(web_app: Rindle, api: str) -> None:
    sid = start(api).json()["id"]
    bob = {"X-Actor": "bob"}
    assert requests.post(f"{api}/uploads/{sid}/sign", headers=bob, timeout=30
                         ).status_code == 404
    assert requests.delete(f"{api}/uploads/{sid}", headers=bob, timeout=30).status_code == 404
    parts = urlsplit(api)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:  # two actor headers: the server never picks the one it likes
        conn.putrequest("POST", f"/uploads/{sid}/sign")
        conn.putheader("X-Actor", "bob")
        conn.putheader("X-Actor", "alice")
        conn.putheader("Content-Length", "0")
        conn.endheaders()
        assert conn.getresponse().status == 404
    finally:
        conn.close()
    with web_app.db.sessionmaker() as s:
        states = s.execute(select(UploadSession.state)).scalars().all()
    assert states == ["initialized"]
    assert post(f"{api}/uploads/{sid}/sign").status_code == 200
