"""``rindle serve``'s server drops a connection that stays silent (slowloris)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from typing import Any

import pytest

from rindle.cli.serve import IDLE_TIMEOUT, make_threading_server


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it ends the connection. A reset counts as the end:
    it is what a client stalled past the idle timeout gets when its late bytes reach a
    connection the server already closed. A server that never ends it fails at the socket's
    timeout."""
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionError:
        pass
    return received


def _app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)  # waits for a body that never fully comes
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n",
                                  b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab"])
def test_a_silent_connection_is_closed_by_the_server(sent: bytes) -> None:
    assert IDLE_TIMEOUT == 60.0
    server = make_threading_server(_app, "127.0.0.1", 0, quiet=True, idle_timeout=0.5)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port)) as sock:
            # The client waits far longer than the server's idle timeout; the server must
            # be the one to end the connection (recv returns b"" or an answer, then b"").
            sock.settimeout(120)
            if sent:
                sock.sendall(sent)
            received = _read_until_closed(sock)
        assert b"ok" not in received
        # A healthy request still works on the same server. Its client must not be taken
        # for a silent one if this machine stalls it between connecting and sending.
        server.RequestHandlerClass.timeout = 120.0  # type: ignore[attr-defined]
        with socket.create_connection(("127.0.0.1", server.server_port)) as sock:
            sock.settimeout(120)
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.endswith(b"ok")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_idle_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        make_threading_server(_app, "127.0.0.1", 0, idle_timeout=0)
