"""Presigned local PUTs over real loopback HTTP: caps, framing, content type, atomicity."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

from rindle.signing import SignedClaims, sign

from .conftest import Served, files_under

KEY = "photo/0190/5b1c.jpg"


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_presigned_put_then_get(served: Served) -> None:
    req = served.storage.presign_put(KEY, expires_in=60, content_type="image/jpeg",
                                     max_bytes=1000)
    resp = served.request("PUT", req.url, b"x" * 1000, dict(req.headers))
    assert resp.status == 201
    assert resp.header("ETag")
    served.register(KEY, "image/jpeg")  # promoted: now deliverable
    got = served.request("GET", served.storage.url(KEY, expires_in=60))
    assert got.status == 200 and got.body == b"x" * 1000
    again = served.request("PUT", req.url, b"second", dict(req.headers))
    assert again.status == 412  # create-only: a stored object is never replaced
    assert served.request("GET", served.storage.url(KEY, expires_in=60)).body == b"x" * 1000


def test_chunked_put_within_the_cap(served: Served) -> None:
    req = served.storage.presign_put(KEY, expires_in=60, max_bytes=10_000)
    data = bytes(range(256)) * 30
    resp = served.request("PUT", req.url, _chunks(data, 777), chunked=True)
    assert resp.status == 201
    assert served.storage.path_for(KEY).read_bytes() == data


def test_put_over_the_declared_cap_is_413_and_stores_nothing(served: Served) -> None:
    req = served.storage.presign_put(KEY, expires_in=60, max_bytes=10)
    resp = served.request("PUT", req.url, b"y" * 100)
    assert resp.status == 413
    assert b"at most 10 bytes" in resp.body
    assert files_under(served.storage.root) == []


def test_streamed_body_over_the_cap_is_413_and_stores_nothing(served: Served) -> None:
    req = served.storage.presign_put(KEY, expires_in=60, max_bytes=1000)
    resp = served.request("PUT", req.url, _chunks(b"z" * 5000, 300), chunked=True)
    assert resp.status == 413
    assert files_under(served.storage.root) == []


def test_app_wide_cap_applies_on_top_of_the_token(serve: Callable[..., Served]) -> None:
    served = serve(max_put_bytes=50)
    req = served.storage.presign_put(KEY, expires_in=60)  # no cap in the token
    assert served.request("PUT", req.url, b"a" * 51).status == 413
    assert served.request("PUT", req.url, b"a" * 50).status == 201


def test_put_with_a_get_token_is_403(served: Served) -> None:
    resp = served.request("PUT", served.storage.url(KEY, expires_in=60), b"data")
    assert resp.status == 403 and resp.body == b"forbidden: wrong_request\n"
    assert files_under(served.storage.root) == []


def test_put_with_an_expired_token_is_403(served: Served) -> None:
    url = served.storage.presign_put(KEY, expires_in=60).url.split("?")[0]
    token = sign("test-secret", SignedClaims("PUT", KEY, int(time.time()) - 1))
    resp = served.request("PUT", f"{url}?token={token}", b"data")
    assert resp.status == 403 and resp.body == b"forbidden: expired\n"


def test_put_with_another_content_type_is_415(served: Served) -> None:
    req = served.storage.presign_put(KEY, expires_in=60, content_type="image/jpeg")
    resp = served.request("PUT", req.url, b"data", {"Content-Type": "text/html"})
    assert resp.status == 415
    assert served.request("PUT", req.url, b"data").status == 415  # none sent
    ok = served.request("PUT", req.url, b"data", {"Content-Type": "IMAGE/JPEG; q=1"})
    assert ok.status == 201


def _raw(served: Served, head: bytes, body: bytes = b"") -> bytes:
    """Send raw bytes; the answer (headers and its Content-Length of body) as sent.

    Under ``rindle serve`` the client then half-closes (the server reads to EOF); uvicorn
    takes a half-close for a disconnect, so there the connection stays open."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(head + body)
        if served.server == "wsgi":
            sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
            top, sep, rest = out.partition(b"\r\n\r\n")
            lengths = [line.split(b":", 1)[1] for line in top.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")]
            if sep and lengths and len(rest) >= int(lengths[0]):
                break
    return out


def _target(served: Served) -> bytes:
    url = served.storage.presign_put(KEY, expires_in=60).url
    return url.split("://", 1)[1].split("/", 1)[1].encode()


def test_put_without_a_length_is_411(served: Served) -> None:
    out = _raw(served, b"PUT /" + _target(served) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 411 ") or out.startswith(b"HTTP/1.1 411 ")
    assert files_under(served.storage.root) == []


def test_body_cut_short_is_400_and_stores_nothing(served: Served) -> None:
    head = (b"PUT /" + _target(served) + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 100\r\n\r\n")
    if served.server == "asgi":  # the cut is a disconnect there: nobody reads an answer
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
            sock.sendall(head + b"only ten b")
            _until(lambda: files_under(served.storage.root) != [])  # the write started
        _until(lambda: files_under(served.storage.root) == [])  # and left nothing
        return
    out = _raw(served, head, b"only ten b")
    assert b" 400 " in out.split(b"\r\n", 1)[0]
    assert files_under(served.storage.root) == []


def _until(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_broken_chunked_framing_is_400_and_stores_nothing(served: Served) -> None:
    head = (b"PUT /" + _target(served) + b" HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    out = _raw(served, head, b"5\r\nhello\r\nzz\r\n")
    assert b" 400 " in out.split(b"\r\n", 1)[0]
    assert files_under(served.storage.root) == []
