"""Issue 9's fresh attack pass, closed: HTTP-level holes an outside client could use.

Real loopback HTTP against the embedded server (``rindle serve``'s threaded server) on
SQLite and PostgreSQL: a connection cap, plain error pages with the security headers that
never echo the request line, strict Transfer-Encoding framing, bounded chunked trailers,
strict token spelling, case-sensitive methods, a PUT finishing after its session closed,
verify after expiry, JPEG 2000 behind a ``.jpg`` name, and declared types that are not
media types.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import socket
import threading
from collections.abc import Iterable
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import update

from rindle.cli.serve import make_threading_server
from rindle.domain.models import UploadSession, utcnow
from rindle.errors import UploadRejected
from tests.security.gate import Gate, jpeg

HARDENED = (b"content-security-policy: default-src 'none'; sandbox",
            b"x-content-type-options: nosniff", b"referrer-policy: no-referrer")


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        with contextlib.suppress(OSError):  # the server may already have answered and closed
            sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("request_line", [
    b"GARBAGE\r\n\r\n",
    b"GET /media/x?token=SECRET-TOKEN HTTP/9.9\r\n\r\n",
    b"GET /" + b"a" * 70000 + b"?token=SECRET-TOKEN HTTP/1.1\r\n\r\n",
])
def test_server_errors_are_plain_hardened_and_never_echo_the_request(
        gate: Gate, request_line: bytes) -> None:
    answer = _raw(gate.port, request_line)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert _status(answer) in (400, 414, 505)
    assert b"text/plain" in head and b"text/html" not in head
    assert all(h in head.lower() for h in HARDENED)
    assert b"SECRET-TOKEN" not in answer and b"GARBAGE" not in answer
    assert body.strip().split(b" ", 1)[0] == str(_status(answer)).encode()


def test_webhook_answers_carry_the_hardening_headers(gate: Gate) -> None:
    answer = _raw(gate.port, b"GET /webhooks/nobody HTTP/1.0\r\n\r\n")
    assert _status(answer) == 404 and all(h in answer.lower() for h in HARDENED)


def _app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_connections_past_the_cap_are_answered_503_at_once() -> None:
    server = make_threading_server(_app, "127.0.0.1", 0, quiet=True, max_connections=2)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    held = [socket.create_connection(("127.0.0.1", server.server_port), timeout=30)
            for _ in range(2)]
    try:
        for sock in held:  # half a request each: both handler threads are busy
            sock.sendall(b"GET / HTTP/1.1\r\n")
        # The 503 goes out on accept, before any request is read: a client that sends
        # nothing still gets it (and no unread input can turn the close into a reset).
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as sock:
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 503 Service Unavailable")
        assert answer.endswith(b"\r\n\r\nbusy\n") and b"Retry-After: 1" in answer
        held.pop().close()  # a slot frees once its handler sees the close
        answers: list[bytes] = []
        for _ in range(200):  # bounded: each try is answered at once, 503 or 200
            try:
                answers.append(_raw(server.server_port, b"GET / HTTP/1.0\r\n\r\n"))
            except OSError:  # a 503 close may race the request into a reset: try again
                continue
            if answers[-1].endswith(b"ok"):
                break
        assert answers and answers[-1].endswith(b"ok")
    finally:
        for sock in held:
            sock.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    with pytest.raises(ValueError):
        make_threading_server(_app, "127.0.0.1", 0, max_connections=0)


def _put_target(g: Gate) -> tuple[str, UploadSession]:
    session = g.app.initiate_upload("photo", filename="a.jpg")
    url = g.app.sign_upload(session.id).url
    return url.split(str(g.port), 1)[1], session


@pytest.mark.parametrize(("coding", "status"), [
    (b"gzip", 501), (b"chunked, identity", 501), (b"xchunked", 501), (b"identity", 501)])
def test_only_plain_chunked_transfer_encoding_is_accepted(gate: Gate, coding: bytes,
                                                          status: int) -> None:
    target, session = _put_target(gate)
    answer = _raw(gate.port, b"PUT " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: " + coding + b"\r\nContent-Length: 4\r\n\r\nabcd")
    assert _status(answer) in (400, status)
    assert not gate.storage.path_for(session.upload_key).exists()


def test_content_length_with_chunked_is_refused(gate: Gate) -> None:
    target, session = _put_target(gate)
    answer = _raw(gate.port, b"PUT " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert _status(answer) == 400
    assert not gate.storage.path_for(session.upload_key).exists()


def test_chunked_trailers_are_bounded(gate: Gate) -> None:
    target, session = _put_target(gate)
    trailers = b"".join(b"X-T%d: %s\r\n" % (i, b"a" * 4000) for i in range(3))
    answer = _raw(gate.port, b"PUT " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n" + trailers + b"\r\n")
    assert _status(answer) == 400
    assert not gate.storage.path_for(session.upload_key).exists()
    target2, session2 = _put_target(gate)
    small = b"X-T: " + b"a" * 100 + b"\r\n"
    ok = _raw(gate.port, b"PUT " + target2.encode() + b" HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n" + small + b"\r\n")
    assert _status(ok) == 201 and gate.storage.path_for(session2.upload_key).exists()


@pytest.mark.parametrize("mangle", [
    lambda t: t.replace(".", "=."),  # padding: another spelling of the same bytes
    lambda t: t + "=",
    lambda t: t.replace(".", ".\n"),
    lambda t: t[:-1] + "+",
])
def test_a_token_has_exactly_one_spelling(gate: Gate, mangle: Any) -> None:
    session = gate.app.initiate_upload("photo", filename="a.jpg")
    url = gate.app.sign_upload(session.id).url
    path, token = url.split("?token=")
    answer = gate.request("PUT", f"{path}?token={mangle(token)}".replace("\n", "%0A"), jpeg())
    assert (answer.status, answer.body) == (403, b"forbidden: malformed\n")


def test_methods_are_case_sensitive(gate: Gate) -> None:
    session = gate.app.initiate_upload("photo", filename="a.jpg")
    url = gate.app.sign_upload(session.id).url
    assert gate.request("put", url, jpeg()).status == 405
    assert not gate.storage.path_for(session.upload_key).exists()


def test_a_put_that_finishes_after_abort_leaves_nothing(gate: Gate) -> None:
    target, session = _put_target(gate)
    with socket.create_connection(("127.0.0.1", gate.port), timeout=30) as sock:
        sock.sendall(b"PUT " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n64\r\n" + b"x" * 100 + b"\r\n")
        gate.app.abort_upload(session.id)  # before or after the handler's first check
        sock.sendall(b"0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert _status(answer) == 409
    assert not gate.storage.path_for(session.upload_key).exists()


def test_verify_after_expiry_is_refused(gate: Gate) -> None:
    session = gate.app.initiate_upload("photo", filename="a.jpg")
    request = gate.app.sign_upload(session.id)
    assert gate.put(request.url, jpeg()) == 201
    with gate.app.db.transaction() as s:
        s.execute(update(UploadSession).where(UploadSession.id == session.id)
                  .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    with pytest.raises(UploadRejected) as err:
        gate.app.verify_upload(session.id)
    assert err.value.code == "session_expired"
    assert gate.app.get_asset(session.asset_id).state == "staged"


def test_jpeg_2000_behind_a_jpg_name_is_refused(gate: Gate) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "green").save(buf, "JPEG2000")
    with pytest.raises(UploadRejected) as err:
        gate.app.upload("photo", io.BytesIO(buf.getvalue()),
                        filename="holiday.jpg")
    assert err.value.code == "mime_not_allowed"
    session = gate.app.initiate_upload("photo", filename="d.jpg")
    gate.put(gate.app.sign_upload(session.id).url, buf.getvalue())
    asset = gate.app.verify_upload(session.id)
    gate.app.jobs.drain()
    fresh = gate.app.get_asset(asset.id)
    assert fresh.state == "quarantined" and fresh.error_reason.startswith("mime_not_allowed")


@pytest.mark.parametrize("declared", ["text/xml", "application/xml", "text/javascript",
                                      "multipart/x-mixed-replace", "application/json"])
def test_declared_types_must_be_media_types_even_where_anything_goes(
        gate: Gate, declared: str) -> None:
    with pytest.raises(UploadRejected) as err:
        gate.app.initiate_upload("any_image", filename="a.jpg", content_type=declared)
    assert err.value.code == "mime_not_allowed"


@pytest.mark.parametrize("headers", [
    b"Content-Length: 4\r\nContent-Length: 40\r\n",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
])
def test_repeated_framing_headers_are_refused(gate: Gate, headers: bytes) -> None:
    target, session = _put_target(gate)
    answer = _raw(gate.port, b"PUT " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                  + headers + b"\r\nabcd")
    assert _status(answer) == 400 and all(h in answer.lower() for h in HARDENED)
    assert not gate.storage.path_for(session.upload_key).exists()


def test_head_on_a_webhook_route_has_no_body(gate: Gate) -> None:
    answer = _raw(gate.port, b"HEAD /webhooks/nobody HTTP/1.0\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert _status(answer) == 404 and body == b""
    assert b"content-length: " in head.lower()
