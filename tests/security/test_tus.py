"""Attacks on the tus server over real loopback HTTP: huge headers, negative and
overflowing offsets and lengths, path traversal in upload ids, metadata injection and
another actor's upload URL."""

from __future__ import annotations

import base64
import http.client
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from rindle import Rindle
from rindle.domain.models import Asset, UploadSession
from rindle.upload import tus_backing
from rindle.web import tus_wsgi
from rindle.web.tus import MAX_METADATA_BYTES
from tests.apps import local_storage
from tests.web.conftest import header_actor, serve_wsgi, web_app

__all__ = ["web_app"]  # the fixture

V = {"Tus-Resumable": "1.0.0"}
ALICE = {**V, "X-Actor": "alice"}
BOB = {**V, "X-Actor": "bob"}


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


PHOTO = f"filename {b64('cat.jpg')},profile {b64('photo')}"
NUL_NAME = b64(b"a\x00.jpg")
NOT_UTF8 = b64(b"\xff\xfe.jpg")


@pytest.fixture
def tus_url(web_app: Rindle) -> Iterator[str]:
    with serve_wsgi(tus_wsgi(web_app, authorize=header_actor, mount="/files")) as base:
        yield base + "/files/"


def create(url: str, headers: dict[str, str]) -> requests.Response:
    return requests.post(url, headers={**ALICE, "Upload-Length": "8",
                                       "Upload-Metadata": PHOTO, **headers}, timeout=30)


def patch(location: str, offset: str, data: bytes, actor: dict[str, str] = ALICE,
          **extra: str) -> requests.Response:
    return requests.patch(location, data=data, timeout=30, headers={
        **actor, "Upload-Offset": offset, "Content-Type": "application/offset+octet-stream",
        **extra})


def raw(url: str, method: str, target: str, headers: dict[str, str]) -> int:
    """Send ``target`` verbatim (no client-side normalisation); the status."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request(method, target, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_huge_headers(tus_url: str) -> None:
    assert create(tus_url, {"Upload-Metadata": PHOTO + ",x " + "A" * 70_000}).status_code == 431
    over = create(tus_url, {"Upload-Metadata": PHOTO + ",pad " + "A" * MAX_METADATA_BYTES})
    assert over.status_code == 400 and over.json()["error"]["code"] == "invalid_metadata"
    head = PHOTO + ",pad "
    pad = "A" * ((MAX_METADATA_BYTES - len(head)) // 4 * 4)
    limit = head + pad
    assert MAX_METADATA_BYTES - 3 <= len(limit) <= MAX_METADATA_BYTES
    assert create(tus_url, {"Upload-Metadata": limit}).status_code == 201
    too_many = "final;" + " ".join(["http://x/files/" + "0" * 32 + "." + "0" * 32] * 101)
    refused = requests.post(tus_url, timeout=30, headers={
        **ALICE, "Upload-Metadata": PHOTO, "Upload-Concat": too_many})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_concat"


BAD_NUMBERS = ("-1", "9223372036854775808", "99999999999999999999", "0x10", "1e3", "",
               "+5", "\u00b25", "1 2")


def test_bad_offsets_and_lengths_are_400(tus_url: str) -> None:
    location = create(tus_url, {}).headers["Location"]
    for value in BAD_NUMBERS:
        answer = patch(location, value, b"abcd")
        assert answer.status_code == 400, value
        assert answer.json()["error"]["code"] == "invalid_header"
        assert create(tus_url, {"Upload-Length": value}).status_code == 400, value
        deferred = patch(location, "0", b"", **{"Upload-Length": value})
        assert deferred.status_code == 400, value
    assert requests.head(location, headers=ALICE, timeout=30).headers["Upload-Offset"] == "0"


def test_largest_length_is_413_not_an_overflow(tus_url: str) -> None:
    answer = create(tus_url, {"Upload-Length": str(2 ** 63 - 1)})
    assert answer.status_code == 413
    location = create(tus_url, {}).headers["Location"]
    far = patch(location, str(2 ** 63 - 1), b"a")
    assert far.status_code == 409


def test_path_traversal_in_upload_ids(tus_url: str) -> None:
    location = create(tus_url, {}).headers["Location"]
    token = location.rsplit("/", 1)[1]
    for target in ("/files/../files/" + token, "/files/%2e%2e/" + token,
                   f"/files/{token}/..", f"/files/{token}/../{token}",
                   "/files/..%2f..%2fetc%2fpasswd", f"/files/{token.upper()}",
                   f"/files/{token}%00", "/files/" + "0" * 32 + ".." + "0" * 31):
        assert raw(tus_url, "HEAD", target, ALICE) == 404, target


def test_metadata_injection(web_app: Rindle, tus_url: str) -> None:
    evil = f"filename {b64('../../../etc/passwd.jpg')},profile {b64('photo')}"
    made = create(tus_url, {"Upload-Metadata": evil})
    assert made.status_code == 201
    with web_app.db.sessionmaker() as s:
        row = s.execute(select(UploadSession)).scalars().one()
        asset = s.get(Asset, row.asset_id)
        assert asset is not None
        assert row.upload_key.startswith("photo/") and ".." not in row.upload_key
        assert "/" not in (asset.filename or "")
    stored = local_storage(web_app).path_for(row.upload_key)
    assert stored.is_relative_to(local_storage(web_app).root)
    echoed = requests.head(made.headers["Location"], headers=ALICE, timeout=30)
    assert echoed.headers["Upload-Metadata"] == evil  # base64 as sent: no header injection
    for metadata in (f"filename {b64('a.jpg')},filename {b64('b.jpg')}",  # repeated key
                     "filename not*base64",
                     f"bad key {b64('x')}",
                     f"filename {NUL_NAME},profile {b64('photo')}",
                     f"filename {NOT_UTF8},profile {b64('photo')}",
                     f"profile {b64('../photo')}"):
        answer = create(tus_url, {"Upload-Metadata": metadata})
        assert answer.status_code == 400, metadata
    wrong_type = create(tus_url, {"Upload-Metadata": f"filename {b64('x.html')},"
                                                     f"profile {b64('photo')}"})
    assert wrong_type.status_code == 415


def test_another_actors_url(web_app: Rindle, tus_url: str) -> None:
    location = create(tus_url, {}).headers["Location"]
    assert patch(location, "0", b"abcd").status_code == 204
    assert patch(location, "4", b"EVIL", actor=BOB).status_code == 404
    assert requests.delete(location, headers=BOB, timeout=30).status_code == 404
    assert requests.head(location, headers=BOB, timeout=30).status_code == 404
    partial = create(tus_url, {"Upload-Concat": "partial", "Upload-Length": "4"})
    assert patch(partial.headers["Location"], "0", b"wxyz").status_code == 204
    stolen = requests.post(tus_url, timeout=30, headers={
        **BOB, "Upload-Metadata": PHOTO,
        "Upload-Concat": f"final;{partial.headers['Location']}"})
    assert stolen.status_code == 404
    assert requests.head(location, headers=ALICE, timeout=30).headers["Upload-Offset"] == "4"
    assert patch(location, "4", b"efgh").status_code == 204


def test_a_body_shorter_than_its_length_keeps_nothing(web_app: Rindle, tus_url: str) -> None:
    location = create(tus_url, {}).headers["Location"]
    parts = urlsplit(location)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80),
                                  timeout=30) as sock:
        sock.sendall((f"PATCH {parts.path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
                      "X-Actor: alice\r\nUpload-Offset: 0\r\nContent-Length: 8\r\n"
                      "Content-Type: application/offset+octet-stream\r\n\r\nabcd").encode())
        sock.shutdown(socket.SHUT_WR)  # the client goes away 4 bytes short
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")  # then the server closes (body cut short)
    assert b"\r\nConnection: close\r\n" in answer and b'"body_incomplete"' in answer
    with web_app.db.sessionmaker() as s:
        row = s.execute(select(UploadSession)).scalars().one()
    assert row.last_known_offset == 0
    part = tus_backing.part_path(local_storage(web_app), row)
    assert not part.exists() or part.stat().st_size == 0
    assert patch(location, "0", b"abcdefgh").status_code == 204
