"""Attacks on ``rindle serve``'s persistent (kept-alive) HTTP/1.1 connections.

Real loopback sockets against :func:`rindle.cli.serve.make_threading_server` with a small
recording WSGI app: requests smuggled through framing the server does not own, pipelined
requests, a body the app leaves unread, answers whose length the app gets wrong, a slow or
silent next request, the per-connection request cap and the connection cap, which
kept-alive connections count against. A connection is kept only when the next request's
start is certain; otherwise the answer says ``Connection: close`` and the server closes.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pytest

from rindle.cli.serve import (
    KEEP_ALIVE_TIMEOUT,
    MAX_REQUESTS,
    ThreadingWSGIServer,
    make_threading_server,
)

HARDENED = (b"content-security-policy: default-src 'none'; sandbox",
            b"x-content-type-options: nosniff", b"referrer-policy: no-referrer")


@dataclass
class Seen:
    """What the app saw: ``(method, path, body read)`` per request, in order."""

    requests: list[tuple[str, str, bytes]] = field(default_factory=list)


def _app(seen: Seen) -> Any:
    """``/`` echoes the body it reads in full; ``/unread`` answers 403 without reading;
    ``/partial`` reads 2 bytes; ``/head-body`` writes a body even for HEAD; ``/short``
    declares 10 bytes and sends 2; ``/long`` declares 2 and sends 10; ``/unframed`` sends
    two blocks without a length; ``/boom`` fails."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        stream: BinaryIO = environ["wsgi.input"]
        if path == "/unread":
            seen.requests.append((method, path, b""))
            start_response("403 Forbidden", [("Content-Length", "2")])
            return [b"no"]
        if path == "/partial":
            seen.requests.append((method, path, stream.read(2)))
            start_response("200 OK", [("Content-Length", "2")])
            return [b"ok"]
        body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
        seen.requests.append((method, path, body))
        if path == "/boom":
            raise RuntimeError("the app failed")
        if path == "/head-body":
            start_response("200 OK", [("Content-Length", "5")])
            return [b"hello"]
        if path == "/short":
            start_response("200 OK", [("Content-Length", "10")])
            return [b"ab", b""]
        if path == "/long":
            start_response("200 OK", [("Content-Length", "2")])
            return [b"abcdefghij", b""]
        if path == "/unframed":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"one", b"two"]
        answer = b"%s %s %s" % (method.encode(), path.encode(), body)
        start_response("200 OK", [("Content-Length", str(len(answer)))])
        return [answer]

    return app


@contextlib.contextmanager
def _serving(seen: Seen, **options: Any) -> Iterator[ThreadingWSGIServer]:
    server = make_threading_server(_app(seen), "127.0.0.1", 0, quiet=True, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Answer:
    status_line: bytes
    headers: dict[bytes, bytes]
    body: bytes


class Raw:
    """A raw client socket that reads one answer at a time (by its Content-Length, or to
    the close for an unframed one). Its 30 s timeout bounds every wait: a server that
    never answers or never closes fails the test there."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self, *, head: bool = False) -> Answer:
        status_line = self.file.readline()
        assert status_line, "the server closed instead of answering"
        headers: dict[bytes, bytes] = {}
        while (line := self.file.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if head:
            return Answer(status_line.strip(), headers, b"")
        if b"content-length" in headers:
            body = self.file.read(int(headers[b"content-length"]))
        else:
            body = self.file.read()
        return Answer(status_line.strip(), headers, body)

    def closed_by_server(self) -> bool:
        """True once the server ended the connection (EOF or reset), with nothing more
        sent; waits at most the socket's timeout."""
        try:
            return self.file.read(1) == b""
        except ConnectionError:
            return True

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@contextlib.contextmanager
def _raw(port: int) -> Iterator[Raw]:
    client = Raw(port)
    try:
        yield client
    finally:
        client.close()


def _put(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s"
            % (path.encode(), len(body), extra, body))


def _get(path: str, extra: bytes = b"") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path.encode(), extra)


def test_the_defaults() -> None:
    assert (KEEP_ALIVE_TIMEOUT, MAX_REQUESTS) == (5.0, 1000)
    app = _app(Seen())
    with pytest.raises(ValueError, match="keep_alive_timeout"):
        make_threading_server(app, "127.0.0.1", 0, keep_alive_timeout=0)
    with pytest.raises(ValueError, match="max_requests"):
        make_threading_server(app, "127.0.0.1", 0, max_requests=0)


def test_http11_requests_share_one_connection() -> None:
    seen = Seen()
    with _serving(seen) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        ports = set()
        for n in range(3):
            conn.request("PUT", f"/n{n}", body=b"x" * (n + 1))
            answer = conn.getresponse()
            assert (answer.version, answer.status, answer.getheader("Connection")) == (
                11, 200, None)
            assert answer.read() == b"PUT /n%d " % n + b"x" * (n + 1)
            assert conn.sock is not None
            ports.add(conn.sock.getsockname()[1])
        conn.close()
    assert len(ports) == 1
    assert seen.requests == [("PUT", "/n0", b"x"), ("PUT", "/n1", b"xx"),
                             ("PUT", "/n2", b"xxx")]


def test_pipelined_requests_are_answered_in_order_each_with_its_own_body() -> None:
    seen = Seen()
    with _serving(seen) as server, _raw(server.server_port) as client:
        # the first body ends exactly where the second request begins
        client.send(_put("/a", b"GET /inside HTTP/1.1\r\n\r\n") + _get("/b")
                    + _put("/c", b"xyz"))
        answers = [client.answer() for _ in range(3)]
    assert [a.body for a in answers] == [b"PUT /a GET /inside HTTP/1.1\r\n\r\n", b"GET /b ",
                                         b"PUT /c xyz"]
    assert all(a.status_line == b"HTTP/1.1 200 OK" for a in answers)
    assert [r[1] for r in seen.requests] == ["/a", "/b", "/c"]


@pytest.mark.parametrize("framing", [
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
])
def test_a_request_framed_by_transfer_encoding_never_keeps_the_connection(
        framing: bytes) -> None:
    seen = Seen()
    with _serving(seen) as server, _raw(server.server_port) as client:
        client.send(b"PUT /te HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n0\r\n\r\n"
                    + _get("/smuggled"))
        first = client.answer()
        assert client.closed_by_server()
    assert first.headers[b"connection"] == b"close"
    assert [r[1] for r in seen.requests] == ["/te"]


@pytest.mark.parametrize("framing", [b"Content-Length: 3\r\nContent-Length: 30\r\n",
                                     b"Transfer-Encoding: chunked\r\n"
                                     b"Transfer-Encoding: identity\r\n"])
def test_repeated_framing_headers_on_a_second_request_are_refused_and_close(
        framing: bytes) -> None:
    seen = Seen()
    with _serving(seen) as server, _raw(server.server_port) as client:
        client.send(_get("/first"))
        assert client.answer().body == b"GET /first "
        client.send(b"PUT /second HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\nabc"
                    + _get("/smuggled"))
        refused = client.answer()
        assert client.closed_by_server()
    assert refused.status_line.split(b" ", 2)[1] == b"400"
    assert all(h in b"\r\n".join(b"%s: %s" % kv for kv in refused.headers.items())
               for h in HARDENED)
    assert [r[1] for r in seen.requests] == ["/first"]


@pytest.mark.parametrize("path", ["/unread", "/partial"])
def test_a_body_the_app_leaves_unread_closes_the_connection(path: str) -> None:
    seen = Seen()
    # the unread body holds a whole request: it must never be taken for one
    body = b"xx" + _get("/smuggled") + b"y" * 100_000
    with _serving(seen) as server, _raw(server.server_port) as client:
        client.send(_put(path, body) + _get("/after"))
        answer = client.answer()
        assert client.closed_by_server()
    assert answer.headers[b"connection"] == b"close"
    assert [r[1] for r in seen.requests] == [path]


def test_a_body_cut_short_closes_the_connection() -> None:
    seen = Seen()
    with _serving(seen) as server, _raw(server.server_port) as client:
        client.send(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabcd")
        client.sock.shutdown(socket.SHUT_WR)
        answer = client.answer()
        assert client.closed_by_server()
    assert answer.headers[b"connection"] == b"close" and answer.body == b"PUT / abcd"


def test_connection_close_is_honoured_and_http10_is_answered_in_http10() -> None:
    seen = Seen()
    with _serving(seen) as server:
        with _raw(server.server_port) as client:
            client.send(_get("/bye", b"Connection: keep-alive, close\r\n") + _get("/never"))
            answer = client.answer()
            assert client.closed_by_server()
        assert (answer.status_line, answer.headers[b"connection"]) == (b"HTTP/1.1 200 OK",
                                                                       b"close")
        with _raw(server.server_port) as client:
            client.send(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                        + _get("/never"))
            answer = client.answer()
            assert client.closed_by_server()
        assert answer.status_line == b"HTTP/1.0 200 OK"
    assert [r[1] for r in seen.requests] == ["/bye", "/old"]


def test_the_request_cap_closes_the_connection_after_its_last_answer() -> None:
    seen = Seen()
    with _serving(seen, max_requests=2) as server, _raw(server.server_port) as client:
        client.send(_get("/1") + _get("/2") + _get("/3"))
        first, second = client.answer(), client.answer()
        assert client.closed_by_server()
    assert b"connection" not in first.headers and second.headers[b"connection"] == b"close"
    assert [r[1] for r in seen.requests] == ["/1", "/2"]


def test_head_keeps_the_connection_and_never_sends_a_body() -> None:
    seen = Seen()
    with _serving(seen) as server, _raw(server.server_port) as client:
        client.send(b"HEAD /head-body HTTP/1.1\r\nHost: x\r\n\r\n" + _get("/next"))
        head = client.answer(head=True)
        following = client.answer()  # the dropped body would be read here as its start
    assert head.headers[b"content-length"] == b"5" and b"connection" not in head.headers
    assert following.status_line == b"HTTP/1.1 200 OK" and following.body == b"GET /next "


@pytest.mark.parametrize(("path", "body"), [("/short", b"ab"), ("/long", b"ab"),
                                            ("/unframed", b"onetwo"),
                                            ("/boom", b"A server error occurred.  Please "
                                                      b"contact the administrator.")])
def test_an_answer_whose_length_is_wrong_or_unknown_ends_the_connection(
        path: str, body: bytes) -> None:
    seen = Seen()
    with _serving(seen) as server, _raw(server.server_port) as client:
        client.send(_get(path) + _get("/never"))
        status_line = client.file.readline()
        rest = client.file.read()  # everything up to the close: one answer, no more
    head, _, sent = rest.partition(b"\r\n\r\n")
    assert sent == body and b"/never" not in rest
    assert status_line.split(b" ", 2)[1] == (b"500" if path == "/boom" else b"200")
    assert [r[1] for r in seen.requests] == [path]
    if path in ("/unframed", "/boom"):  # known before the headers went out
        assert b"Connection: close" in head


def test_a_silent_or_slow_next_request_is_dropped() -> None:
    seen = Seen()
    with _serving(seen, keep_alive_timeout=0.3, idle_timeout=0.3) as server:
        with _raw(server.server_port) as client:
            client.send(_get("/1"))
            assert client.answer().body == b"GET /1 "
            assert client.closed_by_server()  # silence after an answer
        with _raw(server.server_port) as client:
            client.send(_get("/1"))
            assert client.answer().body == b"GET /1 "
            client.send(b"GET /2 HT")  # and never the rest
            assert client.closed_by_server()
    assert [r[1] for r in seen.requests] == ["/1", "/1"]


def test_garbage_as_a_second_request_gets_a_plain_hardened_error_and_a_close() -> None:
    seen = Seen()
    with _serving(seen) as server, _raw(server.server_port) as client:
        client.send(_get("/1") + b"GARBAGE /x?token=SECRET\r\n\r\n")
        assert client.answer().body == b"GET /1 "
        error = client.answer()
        assert client.closed_by_server()
    assert error.status_line.split(b" ", 2)[1] == b"400"
    assert b"SECRET" not in error.body and error.body == b"400 Bad Request\n"


def test_kept_alive_connections_count_against_the_connection_cap() -> None:
    seen = Seen()
    with _serving(seen, max_connections=1) as server:
        with _raw(server.server_port) as kept:
            kept.send(_get("/kept"))
            assert kept.answer().body == b"GET /kept "
            with _raw(server.server_port) as other:  # the kept one holds the only slot
                assert other.answer().status_line == b"HTTP/1.0 503 Service Unavailable"
            kept.send(_get("/again"))  # and it still works
            assert kept.answer().body == b"GET /again "
        answers: list[bytes] = []
        for _ in range(200):  # bounded: the slot frees once the server sees the close
            try:
                with _raw(server.server_port) as client:
                    client.send(_get("/later", b"Connection: close\r\n"))
                    answers.append(client.answer().status_line)
            except (OSError, AssertionError):  # a 503's close may race the request
                continue
            if answers[-1] == b"HTTP/1.1 200 OK":
                break
        assert answers[-1] == b"HTTP/1.1 200 OK"


def test_closing_the_server_ends_idle_kept_alive_connections() -> None:
    seen = Seen()
    # a keep-alive timeout far past the client's 30 s socket timeout: only the server's
    # close can end the wait in time
    server = make_threading_server(_app(seen), "127.0.0.1", 0, quiet=True,
                                   keep_alive_timeout=600, idle_timeout=600)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    with _raw(server.server_port) as client:
        client.send(_get("/1"))
        assert client.answer().body == b"GET /1 "
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        assert client.closed_by_server()
