"""The delivery web app as a native ASGI 3 application (no WSGI bridge).

:func:`asgi_app` serves exactly the routes and answers of :func:`rindle.delivery.wsgi_app`
(signed GET/HEAD with ``Range``/``If-Range``/``If-None-Match``, create-only presigned PUT
under the ``[delivery] max_put_bytes`` cap, provider webhooks, the same security headers
and error pages): both run :class:`rindle.delivery.core.DeliveryCore`. Mount it in
FastAPI/Starlette (``app.mount("/", asgi_app(rindle_app))``) or run it under any ASGI
server (``uvicorn``, ``hypercorn``).

How it stays off the event loop and within flat memory:

* The core (database lookups, token checks, the storage write of a PUT) runs in a worker
  thread of rindle's own pool (:func:`run_blocking`, up to :data:`WORKERS` threads, so
  requests waiting on slow clients never exhaust asyncio's small default pool, which the
  rest of the process shares). A PUT body is pulled from ``receive`` as the storage write
  asks for it, one message at a time, so an upload is never held in memory whole; the
  server has already removed any chunked framing. A body that sends nothing for
  ``body_timeout`` seconds (:data:`BODY_TIMEOUT`, like ``rindle serve``'s idle timeout) is
  cut (400): a stalled client never holds a worker thread for longer.
* A GET body is read from the file in blocks of
  :data:`~rindle.delivery.body.BLOCK_SIZE` (each read in a worker thread) and sent as it is
  read; ``send`` waits while the client is slow. When the client disconnects
  (``http.disconnect``) the stream stops and the file is closed.
* ``lifespan`` is answered (nothing to start or stop: the host owns the :class:`Rindle`);
  a ``websocket`` connection is closed at once (code 1008, policy violation).

A request the core refuses before reading its body (a large or chunked body) is answered
at once; the body is never waited for, and the server closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import unquote_to_bytes

from rindle.delivery.body import BLOCK_SIZE, BodyIncomplete, RequestBody
from rindle.delivery.core import DeliveryCore, delivery_core
from rindle.delivery.messages import Request, Response, plain

if TYPE_CHECKING:
    from rindle.delivery.core import DeliveryHost

__all__ = ["BODY_TIMEOUT", "WORKERS", "DeliveryASGIApp", "ReceiveStream", "asgi_app",
           "run_blocking", "scope_headers", "serve_lifespan"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
T = TypeVar("T")

#: Seconds a request body may send nothing before its read fails (``rindle serve``'s idle
#: timeout): a stalled client never holds a worker thread longer.
BODY_TIMEOUT = 60.0
#: The most worker threads rindle's ASGI apps run blocking work in at once (``rindle
#: serve``'s connection cap); created as needed.
WORKERS = 256

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def run_blocking(fn: Callable[..., T], *args: Any) -> Awaitable[T]:
    """``fn(*args)`` in rindle's worker pool (not asyncio's default one, which a few slow
    uploads would fill for the whole process), with the caller's context variables."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="rindle-asgi")
    context = contextvars.copy_context()
    return asyncio.get_running_loop().run_in_executor(
        _pool, functools.partial(context.run, fn, *args))


class ReceiveStream:
    """A blocking ``read(n)`` file over an ASGI ``receive``, for a worker thread.

    A call that needs more bytes waits on the event loop ``loop`` for ``http.request``
    messages until it holds ``n`` bytes or the body ended, in one hop to the loop (a
    server delivers a large body in many small messages; one hop per message would cost
    more than the bytes); ``http.disconnect`` before the last one raises
    :class:`~rindle.delivery.body.BodyIncomplete`, and so does a wait of more than
    ``timeout`` seconds for the next message. At most ``n`` bytes plus one message are
    buffered. The server has already removed any chunked framing (ASGI servers always
    do), so the body is read as plain bytes to its end.
    """

    def __init__(self, receive: Receive, loop: asyncio.AbstractEventLoop,
                 timeout: float = BODY_TIMEOUT) -> None:
        self._receive, self._loop, self._timeout = receive, loop, timeout
        self._buffer = b""
        self._more = True

    async def _receive_until(self, want: int) -> tuple[list[bytes], bool, bool]:
        """Messages' bodies until ``want`` bytes (all when negative) or the body's end:
        ``(pieces, more_body, disconnected)``."""
        pieces: list[bytes] = []
        have = 0
        while True:
            try:
                async with asyncio.timeout(self._timeout):  # no task per message
                    message = await self._receive()
            except TimeoutError:
                raise BodyIncomplete(f"the body sent nothing for {self._timeout:g} seconds"
                                     ) from None
            if message["type"] == "http.disconnect":
                return pieces, False, True
            piece = bytes(message.get("body", b""))
            pieces.append(piece)
            have += len(piece)
            more = bool(message.get("more_body", False))
            if not more or (want >= 0 and have >= want):
                return pieces, more, False

    def _fill(self, n: int) -> None:
        want = -1 if n < 0 else n - len(self._buffer)
        pieces, more, gone = asyncio.run_coroutine_threadsafe(
            self._receive_until(want), self._loop).result()
        self._buffer = b"".join([self._buffer, *pieces])
        self._more = more
        if gone:
            raise BodyIncomplete("the client disconnected before the body ended")

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left when negative); ``b""`` at the end."""
        if self._more and (n < 0 or len(self._buffer) < n):
            self._fill(n)
        size = len(self._buffer) if n < 0 else min(n, len(self._buffer))
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` with up to its length of the next bytes (as :meth:`read`);
        the number of bytes, 0 at the end."""
        view = memoryview(buffer).cast("B")
        if self._more and len(self._buffer) < len(view):
            self._fill(len(view))
        size = min(len(view), len(self._buffer))
        view[:size] = memoryview(self._buffer)[:size]
        self._buffer = self._buffer[size:] if size < len(self._buffer) else b""
        return size


def scope_headers(scope: Scope) -> dict[str, str]:
    """Lower-case name -> value; repeated headers joined with ``", "`` as WSGI servers do."""
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _path(scope: Scope) -> str:
    """The request path below ``root_path`` as PEP 3333 spells ``PATH_INFO``: the
    percent-decoded bytes read as Latin-1 (so a key that is not UTF-8 is refused the same
    way under both servers)."""
    raw = scope.get("raw_path")
    if raw:
        path = unquote_to_bytes(bytes(raw).split(b"?", 1)[0]).decode("latin-1")
    else:
        path = str(scope.get("path") or "/").encode("utf-8", "surrogateescape").decode(
            "latin-1")
    root = str(scope.get("root_path") or "").encode("utf-8").decode("latin-1")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return path or "/"


class DeliveryASGIApp:
    """The ASGI 3 callable :func:`asgi_app` returns; ``routes`` lists what it serves."""

    def __init__(self, core: DeliveryCore, *, body_timeout: float = BODY_TIMEOUT) -> None:
        self.core = core
        self.routes = core.routes
        self.mount = core.mount
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ``http`` request, a ``lifespan``, or refuse a ``websocket``."""
        kind = scope["type"]
        if kind == "lifespan":
            await serve_lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
        else:
            raise ValueError(f"rindle delivery: unsupported ASGI scope type {kind!r}")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = scope_headers(scope)
        loop = asyncio.get_running_loop()
        method = str(scope["method"])

        def open_body() -> RequestBody:
            return RequestBody.from_headers(
                cast(IO[bytes], ReceiveStream(receive, loop, self.body_timeout)),
                transfer_encoding=headers.get("transfer-encoding", ""),
                content_length=headers.get("content-length", ""), terminated=True)

        request = Request(method, _path(scope),
                          bytes(scope.get("query_string", b"")).decode("latin-1"), headers,
                          open_body)
        try:
            response = await run_blocking(self.core.handle, request)
        except Exception:
            log.exception("rindle delivery: unexpected error answering %s", method)
            response = plain(500, "internal server error")
        await _respond(method, response, receive, send)


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer an ASGI ``lifespan`` scope: startup and shutdown complete at once (nothing
    to start: the host owns the app). Shared by rindle's ASGI surfaces."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(method: str, response: Response, receive: Receive, send: Send) -> None:
    try:
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                for k, v in response.headers]})
        if response.file is None or method == "HEAD":
            await send({"type": "http.response.body",
                        "body": b"" if method == "HEAD" else response.body})
            return
        await _stream(response.file, response.length, receive, send)
    finally:
        response.close()


async def _stream(f: IO[bytes], length: int, receive: Receive, send: Send) -> None:
    """Send ``length`` bytes of ``f`` block by block; stop when the client disconnects."""
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.ensure_future(watch())
    try:
        left = length
        while left > 0 and not gone.is_set():
            data = await asyncio.to_thread(f.read, min(BLOCK_SIZE, left))
            if not data:  # the file shrank under us: end here (the server sees the gap)
                break
            left -= len(data)
            await send({"type": "http.response.body", "body": data, "more_body": left > 0})
        if left > 0 and not gone.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:  # a server that raises on a closed connection instead of ignoring it
        return
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def asgi_app(app: DeliveryHost, *, mount: str = "", max_put_bytes: int | None = None
             ) -> DeliveryASGIApp:
    """The delivery app for ``app``'s local storages as an ASGI 3 application.

    Same routes, answers and options as :func:`rindle.delivery.wsgi_app`: ``mount`` is a
    path prefix stripped before routing (for hosts that neither set ``root_path`` nor
    strip the prefix themselves), ``max_put_bytes`` caps every presigned PUT (default: the
    app's ``[delivery] max_put_bytes``). Raises :class:`~rindle.errors.ConfigError` when two
    local storages share a URL prefix.
    """
    return DeliveryASGIApp(delivery_core(app, mount=mount, max_put_bytes=max_put_bytes))
