"""What only the ASGI delivery app has: disconnects mid-stream, lifespan, other scopes.

Everything the two apps share runs against both through the parametrized ``serve``
fixture (see conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rindle.delivery import DeliveryASGIApp, asgi_app

from .conftest import Served

KEY = "video/0190/big.bin"
SIZE = 32 * 1024 * 1024  # far more than the socket buffers hold: the server must wait


def _open_fds(path: Path) -> int:
    """How many of this process's descriptors are open on ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            continue
    return count


def _until(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def asgi_served(serve: Callable[..., Served]) -> Served:
    """The ASGI app under uvicorn (each test here narrows ``serve`` to ``asgi``)."""
    served = serve()
    assert served.server == "asgi"
    return served


@pytest.mark.parametrize("serve", ["asgi"], indirect=True)
def test_a_client_that_disconnects_mid_stream_releases_the_file(asgi_served: Served) -> None:
    served = asgi_served
    path = served.storage.path_for(KEY)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(SIZE)
    served.register(KEY, "application/octet-stream")
    target = served.storage.url(KEY, expires_in=60).split("://", 1)[1].split("/", 1)[1]
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        sock.sendall(f"GET /{target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert f"content-length: {SIZE}".encode() in head.lower()
        _until(lambda: _open_fds(path) == 1)  # streaming, held open while the client stalls
    finally:
        sock.close()
    _until(lambda: _open_fds(path) == 0)  # the disconnect stopped the stream and closed it


def _run(app: DeliveryASGIApp, scope: dict[str, Any], incoming: list[dict[str, Any]]
         ) -> list[dict[str, Any]]:
    """Call ``app`` as an ASGI server would, with ``incoming`` as what ``receive`` yields."""
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for message in incoming:
            queue.put_nowait(message)

        async def send(message: Any) -> None:
            sent.append(dict(message))

        await app(scope, queue.get, send)

    asyncio.run(main())
    return sent


@pytest.mark.parametrize("serve", ["asgi"], indirect=True)
def test_lifespan_startup_and_shutdown_complete(asgi_served: Served) -> None:
    app = asgi_app(asgi_served.app)
    sent = _run(app, {"type": "lifespan", "asgi": {"version": "3.0"}},
                [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    assert sent == [{"type": "lifespan.startup.complete"},
                    {"type": "lifespan.shutdown.complete"}]


@pytest.mark.parametrize("serve", ["asgi"], indirect=True)
def test_a_websocket_is_closed_and_an_unknown_scope_refused(asgi_served: Served) -> None:
    app = asgi_app(asgi_served.app)
    sent = _run(app, {"type": "websocket", "path": "/media/x", "headers": []},
                [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1008}]
    with pytest.raises(ValueError, match="unsupported ASGI scope type 'telepathy'"):
        _run(app, {"type": "telepathy"}, [])


@pytest.mark.parametrize("serve", ["asgi"], indirect=True)
def test_root_path_is_stripped_before_routing(asgi_served: Served) -> None:
    """A host that mounts the app under /cdn (Starlette's Mount) keeps the full path and
    sets root_path; the key is what follows."""
    served = asgi_served
    served.publish("a/b.txt", b"hello", "text/plain")
    token = served.storage.url("a/b.txt", expires_in=60).split("token=", 1)[1]
    scope = {"type": "http", "method": "GET", "path": "/cdn/media/a/b.txt",
             "raw_path": b"/cdn/media/a/b.txt", "root_path": "/cdn",
             "query_string": f"token={token}".encode(), "headers": []}
    sent = _run(asgi_app(served.app), scope, [{"type": "http.request", "body": b""}])
    assert sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"hello"
    outside = {**scope, "root_path": "/elsewhere"}
    sent = _run(asgi_app(served.app), outside, [{"type": "http.request", "body": b""}])
    assert sent[0]["status"] == 404


@pytest.mark.parametrize("serve", ["asgi"], indirect=True)
def test_a_large_put_and_get_stream_in_flat_memory(asgi_served: Served) -> None:
    """64 MiB up and down through uvicorn while tracemalloc watches every thread of this
    process (server, worker threads and client): the peak stays a small fraction of it."""
    import http.client
    import tracemalloc

    served = asgi_served
    size, block = 64 * 1024 * 1024, b"\x5a" * (64 * 1024)
    url = served.storage.presign_put("big/upload.bin", expires_in=60).url
    target = url.split("://", 1)[1].split("/", 1)[1]
    tracemalloc.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
        conn.request("PUT", "/" + target, body=(block for _ in range(size // len(block))),
                     headers={"Content-Length": str(size)})
        assert conn.getresponse().status == 201
        conn.close()
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        served.register("big/upload.bin", "application/octet-stream")
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
        conn.request("GET", "/" + served.storage.url("big/upload.bin", expires_in=60)
                     .split("://", 1)[1].split("/", 1)[1])
        resp = conn.getresponse()
        received = 0
        while chunk := resp.read(64 * 1024):
            assert chunk == block[:len(chunk)]
            received += len(chunk)
        conn.close()
        _, get_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert served.storage.path_for("big/upload.bin").stat().st_size == size
    assert put_peak < 8 * 1024 * 1024, put_peak
    assert get_peak < 8 * 1024 * 1024, get_peak
