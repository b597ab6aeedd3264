"""Slowloris against rindle's ASGI surfaces under uvicorn (SQLite and PostgreSQL).

Found by the web attack pass: the handlers ran in asyncio's default thread pool (min(32,
CPUs + 4) threads: 6 on a 2-CPU host) and a request body was waited for without end, so six
PATCHes that declared a body and sent two bytes froze every tus, upload API and delivery
request of the process. Now the handlers run in rindle's own pool
(:data:`rindle.delivery.asgi.WORKERS` threads) and a body silent for ``body_timeout``
seconds is cut: 400, nothing kept.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from rindle import Rindle
from rindle.delivery.asgi import BODY_TIMEOUT, WORKERS, DeliveryASGIApp
from rindle.delivery.core import delivery_core
from rindle.domain.models import UploadSession
from rindle.storage.local import LocalStorage
from rindle.upload import tus_backing
from rindle.web import upload_api_asgi
from rindle.web.http import ASGIApp
from rindle.web.tus import TusServer
from tests.apps import local_storage
from tests.security.gate import gate_app
from tests.uvicorn_server import UvicornThread
from tests.web.conftest import header_actor, serve_asgi, web_app

__all__ = ["web_app"]  # the fixture

ALICE = {"Tus-Resumable": "1.0.0", "X-Actor": "alice"}
OCTETS = "application/offset+octet-stream"
PHOTO = (f"filename {base64.b64encode(b'cat.jpg').decode()},"
         f"profile {base64.b64encode(b'photo').decode()}")
#: More stalled requests than asyncio's default pool has threads on any host.
STALLED = 40


def _stall(base: str, head: str) -> socket.socket:
    """Send ``head`` (a request declaring a 1000-byte body) and 2 bytes of the body, then
    nothing."""
    parts = urlsplit(base)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80),
                                    timeout=30)
    sock.sendall(head.encode() + b"Content-Length: 1000\r\n\r\nab")
    return sock


def _tus_patch(location: str) -> str:
    return (f"PATCH {urlsplit(location).path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
            f"X-Actor: alice\r\nUpload-Offset: 0\r\nContent-Type: {OCTETS}\r\n")


def _answer(sock: socket.socket) -> bytes:
    """One answer: its head and its ``Content-Length`` bytes of body."""
    out = b""
    while b"\r\n\r\n" not in out and (chunk := sock.recv(65536)):
        out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def _create(url: str) -> str:
    made = requests.post(url, timeout=30, headers={**ALICE, "Upload-Length": "1000",
                                                   "Upload-Metadata": PHOTO})
    assert made.status_code == 201
    return str(made.headers["Location"])


def test_stalled_bodies_leave_the_other_requests_served(web_app: Rindle) -> None:
    assert (BODY_TIMEOUT, WORKERS) == (60.0, 256)
    tus = ASGIApp(TusServer(web_app, authorize=header_actor), mount="/files",
                  body_timeout=300.0)  # the stalled requests never time out in this test
    api = upload_api_asgi(web_app, authorize=header_actor)
    with serve_asgi(tus) as base, serve_asgi(api) as api_base:
        url = base + "/files/"
        stalled = [_stall(base, _tus_patch(_create(url))) for _ in range(STALLED)]
        try:
            fresh = requests.post(url, timeout=30, headers={
                **ALICE, "Upload-Length": "4", "Upload-Metadata": PHOTO})
            assert fresh.status_code == 201
            opened = requests.post(f"{api_base}/uploads", timeout=30, headers={
                "X-Actor": "alice"}, json={"profile": "photo", "filename": "a.jpg", "size": 3})
            assert opened.status_code == 201
            for sock in stalled:  # all still waiting for their bodies: nothing answered yet
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)
        finally:
            for sock in stalled:
                sock.close()
    with web_app.db.sessionmaker() as s:
        offsets = s.execute(select(UploadSession.last_known_offset).where(
            UploadSession.upload_strategy == "tus")).scalars().all()
    assert sorted(offsets) == [0] * (STALLED + 1)


def test_a_silent_tus_body_is_cut_and_keeps_nothing(web_app: Rindle) -> None:
    tus = ASGIApp(TusServer(web_app, authorize=header_actor), mount="/files",
                  body_timeout=0.5)
    with serve_asgi(tus) as base:
        location = _create(base + "/files/")
        with _stall(base, _tus_patch(location)) as sock:
            answer = _answer(sock)
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert answer.endswith(b'{"error":{"code":"body_incomplete","message":"the body sent '
                               b'nothing for 0.5 seconds"}}')
        with web_app.db.sessionmaker() as s:
            row = s.execute(select(UploadSession)).scalars().one()
        assert row.last_known_offset == 0
        part = tus_backing.part_path(local_storage(web_app), row)
        assert not part.exists() or part.stat().st_size == 0
        resumed = requests.patch(location, data=b"x" * 1000, timeout=30, headers={
            **ALICE, "Upload-Offset": "0", "Content-Type": OCTETS})
        assert resumed.headers["Upload-Offset"] == "1000"


@pytest.fixture
def delivery(db_url: str, tmp_path: Path) -> Iterator[tuple[Rindle, str]]:
    server = UvicornThread()
    base = f"http://127.0.0.1:{server.port}"
    app = gate_app(db_url, tmp_path, base)
    server.start(DeliveryASGIApp(delivery_core(app), body_timeout=0.5))
    try:
        yield app, base
    finally:
        server.stop()
        app.close()


def test_a_silent_presigned_put_is_cut_and_stores_nothing(delivery: tuple[Rindle, str]
                                                          ) -> None:
    app, base = delivery
    session = app.initiate_upload("photo", filename="a.jpg")
    target = urlsplit(app.sign_upload(session.id).url)
    with _stall(base, f"PUT {target.path}?{target.query} HTTP/1.1\r\nHost: x\r\n") as sock:
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(b"bad request body: the body sent nothing for 0.5 seconds\n")
    storage = app.storage()
    assert isinstance(storage, LocalStorage)
    assert not storage.path_for(session.upload_key).exists()
