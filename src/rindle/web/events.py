"""Live progress: a Server-Sent Events stream of state changes, for any Python web stack.

The host signs a subscribe token for the assets a page may watch
(``app.subscribe_token([asset_id, ...], expires_in=3600)``, HMAC with the app's
``secret_key``, binding the exact set of asset ids and an expiry) and the page opens
``new EventSource("<mount>/events?token=<token>")``. Mount :func:`wsgi_app` or
:func:`asgi_app` (same route, same answers). The stream is::

    retry: 3000

    event: variant
    id: variant:<row id>:<at>
    data: {"kind": "variant", "id": "...", "asset_id": "...", "name": "thumb",
           "state": "ready", "at": "2026-01-01T00:00:00.000001+00:00"}

    : heartbeat

``event`` (and ``data.kind``) is ``asset``, ``variant``, ``upload_session`` or
``provider``; ``name`` is the variant name, ``null`` for the other kinds; ``at`` is the
row's ``updated_at``. The stream opens with ``retry:`` and a snapshot (the current state of
every watched asset and of its upload sessions, variants and provider assets, so a page that
connects late still learns that a variant is ready), then sends each change as it commits
(:mod:`rindle.web.events_source`: PostgreSQL ``LISTEN``/``NOTIFY``, SQLite polling) and a
``: heartbeat`` comment every ``heartbeat`` seconds. One state of one row is sent once per
stream. The ``id`` names that state of that row; a reconnecting ``EventSource`` sends the last
one as ``Last-Event-ID`` and gets a fresh snapshot (leaving out that very state), so nothing
is missed across a reconnect.

The stream ends (a ``: closed <reason>`` comment, then the end of the body) when the token
expires (``expired``) or after ``max_lifetime`` seconds (``lifetime``); ``EventSource`` then
reconnects, and an expired token is refused. Answers other than the stream are JSON
``{"error": {"code", "message"}}``: a missing, malformed, tampered or expired token is 403
``forbidden`` (``reason`` says which), more than ``max_streams`` open streams on this mount
503 ``too_many_streams`` (``Retry-After``), another method 405, another path 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, quote
from wsgiref.types import StartResponse, WSGIEnvironment

from rindle import defaults
from rindle.config import EVENTS_TOKEN_TTL_LIMIT
from rindle.delivery.asgi import Receive, Scope, Send, serve_lifespan
from rindle.delivery.headers import SECURITY_HEADERS
from rindle.errors import ConfigError, TransientError, UsageError
from rindle.signing import TokenInvalid, open_payload, sign_payload
from rindle.web.events_source import Change, Hub, Subscriber, snapshot
from rindle.web.http import status_line

if TYPE_CHECKING:
    from rindle.clock import Clock
    from rindle.context import AppContext

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_LIFETIME",
    "DEFAULT_MAX_STREAMS",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_RETRY_MS",
    "DEFAULT_TOKEN_TTL",
    "GONE_CHECK",
    "HEARTBEAT",
    "MAX_ASSETS",
    "TOKEN_DOMAIN",
    "EventsCore",
    "Subscription",
    "asgi_app",
    "events_url",
    "open_subscription",
    "sign_subscription",
    "subscribe_token",
    "wsgi_app",
]

log = logging.getLogger(__name__)

#: The MAC domain of subscribe tokens (a delivery URL token never opens as one).
TOKEN_DOMAIN: Final = "rindle:events:v1"
# The built-in defaults (:mod:`rindle.defaults`); ``[events]`` in the settings changes them
# for an app (:class:`rindle.config.EventsSettings`), a mount's options for that mount.
#: The most asset ids one subscribe token may bind, unless ``[events] max_assets`` says.
MAX_ASSETS: Final = defaults.EVENTS_MAX_ASSETS
#: Seconds a subscribe token is valid, unless ``expires_in`` or ``[events] token_ttl`` say.
DEFAULT_TOKEN_TTL: Final = defaults.EVENTS_TOKEN_TTL
#: Seconds between two ``: heartbeat`` comments.
DEFAULT_HEARTBEAT: Final = defaults.EVENTS_HEARTBEAT
#: Open streams one mount serves at most; one more is answered 503.
DEFAULT_MAX_STREAMS: Final = defaults.EVENTS_MAX_STREAMS
#: Seconds a stream lasts at most (the browser reconnects).
DEFAULT_MAX_LIFETIME: Final = defaults.EVENTS_MAX_LIFETIME
#: Seconds between two reads of the watched rows on SQLite.
DEFAULT_POLL_INTERVAL: Final = defaults.EVENTS_POLL_INTERVAL
#: The ``retry:`` the stream opens with (milliseconds before ``EventSource`` reconnects).
DEFAULT_RETRY_MS: Final = 3000

_JSON = "application/json"
_STREAM_HEADERS: Final = (("Content-Type", "text/event-stream"),
                          ("Cache-Control", "no-store"),
                          ("X-Accel-Buffering", "no"), *SECURITY_HEADERS)
#: The heartbeat comment, as sent.
HEARTBEAT: Final = b": heartbeat\n\n"


# --- tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """What a valid subscribe token grants: watching exactly ``asset_ids`` until
    ``expires`` (Unix seconds)."""

    asset_ids: frozenset[uuid.UUID]
    expires: int


def _asset_ids(asset_ids: Iterable[uuid.UUID | str], max_assets: int) -> list[str]:
    if isinstance(asset_ids, (str, bytes, uuid.UUID)):
        raise UsageError("asset_ids must be a list of asset ids, not one id",
                         code="invalid_subscription")
    try:
        ids = sorted({str(i if isinstance(i, uuid.UUID) else uuid.UUID(str(i)))
                      for i in asset_ids})
    except ValueError:
        raise UsageError("asset_ids must be asset ids (UUIDs)",
                         code="invalid_subscription") from None
    if not 1 <= len(ids) <= max_assets:
        raise UsageError(f"a subscribe token binds 1 to {max_assets} asset ids, not "
                         f"{len(ids)}; open one stream per page of assets",
                         code="invalid_subscription")
    return ids


def sign_subscription(secret: str, asset_ids: Iterable[uuid.UUID | str], expires: int, *,
                      max_assets: int = MAX_ASSETS) -> str:
    """The subscribe token for exactly ``asset_ids`` (1 to ``max_assets``; order and
    repeats do not matter), valid until the Unix time ``expires``."""
    return sign_payload(secret, TOKEN_DOMAIN, {"a": _asset_ids(asset_ids, max_assets),
                                               "e": int(expires)})


def subscribe_token(app: AppContext, asset_ids: Iterable[uuid.UUID | str], *,
                    expires_in: int | None = None, now: float | None = None) -> str:
    """A token letting a browser watch ``asset_ids`` (1 to ``[events] max_assets``) for
    ``expires_in`` seconds (1 to one week; None: ``[events] token_ttl``) from ``now``
    (default: the app's clock). :class:`UsageError` for bad ids or lifetimes,
    :class:`ConfigError` without ``secret_key``."""
    settings = app.settings.events
    ttl = settings.token_ttl if expires_in is None else expires_in
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not (
            1 <= ttl <= EVENTS_TOKEN_TTL_LIMIT):
        raise UsageError(f"expires_in must be 1..{EVENTS_TOKEN_TTL_LIMIT} seconds",
                         code="invalid_subscription")
    start = app.clock().timestamp() if now is None else now
    return sign_subscription(_secret(app), asset_ids, int(start) + ttl,
                             max_assets=settings.max_assets)


def open_subscription(secret: str, token: str, *, now: float,
                      max_assets: int = MAX_ASSETS) -> Subscription:
    """The subscription ``token`` grants at Unix time ``now`` (binding 1 to ``max_assets``
    ids). Raises :class:`~rindle.signing.TokenInvalid` with reason ``malformed``,
    ``bad_signature`` or ``expired`` (the token is good through its ``expires`` second)."""
    body = open_payload(secret, TOKEN_DOMAIN, token)
    ids, expires = body.get("a"), body.get("e")
    if (not isinstance(ids, list) or not 1 <= len(ids) <= max_assets
            or isinstance(expires, bool) or not isinstance(expires, int)):
        raise TokenInvalid("malformed")
    try:
        parsed = frozenset(uuid.UUID(i) for i in ids if isinstance(i, str))
    except ValueError:
        raise TokenInvalid("malformed") from None
    if len(parsed) != len(ids):
        raise TokenInvalid("malformed")
    if expires < now:
        raise TokenInvalid("expired")
    return Subscription(parsed, expires)


def _secret(app: AppContext) -> str:
    secret = app.settings.secret_key
    if not secret:
        raise ConfigError("live progress needs secret_key (it signs subscribe tokens); set "
                          "secret_key in rindle.toml or RINDLE_SECRET_KEY")
    return secret


# --- the stream ---------------------------------------------------------------------------


def _frame(change: Change) -> bytes:
    data = json.dumps(change.data(), separators=(",", ":"))
    return f"event: {change.kind}\nid: {change.event_id}\ndata: {data}\n\n".encode()


class _Stream:
    """One stream's state: what it sent (per row), when it ends; frames bytes to send."""

    def __init__(self, core: EventsCore, sub: Subscription, last_event_id: str | None
                 ) -> None:
        self.core = core
        self.sub = sub
        self.last_event_id = last_event_id
        self.sent: dict[tuple[str, str], tuple[str | None, str]] = {}
        self.ends_at = core.now() + core.max_lifetime

    def fresh(self, change: Change) -> bool:
        """Whether ``change`` is news to this stream: a row not sent yet, or a state later
        than (or other than, at the same instant) the one sent; records it."""
        last = self.sent.get(change.row)
        if last is not None:
            at, state = last
            if (change.at or "") < (at or "") or (change.at == at and change.state == state):
                return False
        self.sent[change.row] = (change.at, change.state)
        return True

    def opening(self) -> bytes:
        """``retry:`` and the snapshot."""
        head = f"retry: {self.core.retry_ms}\n\n".encode()
        return head + self.resync(skip=self.last_event_id)

    def resync(self, skip: str | None = None) -> bytes:
        """The snapshot's rows this stream has not sent (in their current state)."""
        rows = snapshot(self.core.app.db, self.sub.asset_ids)
        return b"".join(_frame(c) for c in rows if self.fresh(c) and c.event_id != skip)

    def frame(self, item: Change | str) -> bytes:
        """The bytes for one delivered item (a change, or :data:`RESYNC`)."""
        if isinstance(item, str):
            return self.resync()
        return _frame(item) if self.fresh(item) else b""

    def ended(self) -> str | None:
        """``expired`` / ``lifetime`` once the stream must end, else ``None``."""
        now = self.core.now()
        if now > self.sub.expires:
            return "expired"
        if now >= self.ends_at:
            return "lifetime"
        return None


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, *,
                 reason: str | None = None, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.reason = status, code, message, reason
        self.headers = list(headers)

    def answer(self) -> tuple[str, list[tuple[str, str]], bytes]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.reason is not None:
            error["reason"] = self.reason
        body = json.dumps({"error": error}, separators=(",", ":")).encode()
        headers = [("Content-Type", _JSON), ("Content-Length", str(len(body))),
                   ("Cache-Control", "no-store"), *self.headers, *SECURITY_HEADERS]
        return status_line(self.status), headers, body


class EventsCore:
    """The request handling :func:`wsgi_app` and :func:`asgi_app` share: the route, the
    token check, the bound on open streams and the hub. ``open_streams`` is how many
    streams are open now. ``heartbeat``, ``max_streams``, ``max_lifetime`` and
    ``poll_interval`` left at None take the app's ``[events]`` settings; tokens bind at
    most ``[events] max_assets`` ids."""

    def __init__(self, app: AppContext, *, mount: str = "",
                 heartbeat: float | None = None,
                 max_streams: int | None = None,
                 max_lifetime: float | None = None,
                 poll_interval: float | None = None,
                 retry_ms: int = DEFAULT_RETRY_MS, clock: Clock | None = None) -> None:
        settings = app.settings.events
        heartbeat = settings.heartbeat if heartbeat is None else heartbeat
        max_streams = settings.max_streams if max_streams is None else max_streams
        max_lifetime = settings.max_lifetime if max_lifetime is None else max_lifetime
        poll_interval = settings.poll_interval if poll_interval is None else poll_interval
        if not (heartbeat > 0 and max_lifetime > 0 and poll_interval > 0):
            raise ConfigError("live progress needs heartbeat, max_lifetime and poll_interval "
                              "> 0 seconds")
        if isinstance(max_streams, bool) or not isinstance(max_streams, int) or max_streams < 1:
            raise ConfigError(f"live progress needs max_streams >= 1, not {max_streams!r}")
        if isinstance(retry_ms, bool) or not isinstance(retry_ms, int) or retry_ms < 0:
            raise ConfigError(f"live progress needs retry_ms >= 0, not {retry_ms!r}")
        self.app = app
        self.secret = _secret(app)
        self.mount = mount.rstrip("/")
        self.heartbeat = float(heartbeat)
        self.max_streams = max_streams
        self.max_lifetime = float(max_lifetime)
        self.max_assets = settings.max_assets
        self.retry_ms = retry_ms
        self.clock: Clock = clock or app.clock
        self.hub = Hub(app.db, poll_interval=poll_interval)
        self._lock = threading.Lock()
        self._open = 0
        self.slot_freed = threading.Condition(self._lock)

    @property
    def open_streams(self) -> int:
        """How many streams this mount holds open now."""
        with self._lock:
            return self._open

    def now(self) -> float:
        """The clock's time as Unix seconds."""
        return self.clock().timestamp()

    def admit(self, method: str, path: str, query: str, last_event_id: str | None
              ) -> tuple[Subscription, str | None]:
        """Check one request (path below the host's root); raises :class:`_Refused`.
        Returns the subscription and the ``Last-Event-ID`` (``None`` when absent or over
        512 characters); takes a stream slot, which the caller must :meth:`release`."""
        inner = path if not self.mount else (
            path[len(self.mount):] if path.startswith(self.mount + "/") else None)
        if inner != "/events":
            raise _Refused(404, "not_found", "no such endpoint")
        if method != "GET":
            raise _Refused(405, "method_not_allowed", "this endpoint takes GET",
                           headers=[("Allow", "GET")])
        tokens = parse_qs(query, keep_blank_values=True).get("token", [])
        if len(tokens) != 1:
            raise _Refused(403, "forbidden", "pass exactly one token= (from "
                           "app.subscribe_token)", reason="missing")
        try:
            sub = open_subscription(self.secret, tokens[0], now=self.now(),
                                    max_assets=self.max_assets)
        except TokenInvalid as exc:
            raise _Refused(403, "forbidden", f"the token is refused ({exc.reason}); ask the "
                           "page for a new one", reason=exc.reason) from None
        with self._lock:
            if self._open >= self.max_streams:
                raise _Refused(503, "too_many_streams", "too many live progress streams are "
                               "open; try again later", headers=[("Retry-After", "5")])
            self._open += 1
        keep = last_event_id is not None and 0 < len(last_event_id) <= 512
        return sub, (last_event_id if keep else None)

    def release(self) -> None:
        """Free a stream slot taken by :meth:`admit`."""
        with self._lock:
            self._open -= 1
            self.slot_freed.notify_all()

    def close(self) -> None:
        """Stop the hub's thread (open streams end at their next wake-up)."""
        self.hub.close()


# --- WSGI ---------------------------------------------------------------------------------


#: Seconds between two checks, while a WSGI stream waits, that its client is still there.
GONE_CHECK: Final = 1.0


def _client_gone(connection: socket.socket) -> bool:
    """Whether the client closed ``connection`` (it reads as ended; checked without
    consuming anything it sent)."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):  # reset, or already closed
        return True


class _WSGIStream:
    """The body iterator of one stream; ``close()`` (the server calls it when the client is
    gone or the body ended) unsubscribes and frees the slot. With the ``connection``
    (``rindle.socket`` or ``gunicorn.socket`` in the environ) the stream ends within
    :data:`GONE_CHECK` seconds of its client closing it; without, when a write fails."""

    def __init__(self, core: EventsCore, sub: Subscription, last: str | None,
                 connection: socket.socket | None = None) -> None:
        self.core = core
        self.connection = connection
        self.queue: queue.SimpleQueue[Change | str] = queue.SimpleQueue()
        self.stream = _Stream(core, sub, last)
        self.subscriber: Subscriber | None = None
        self._closed = False
        self._done = False
        self._next_beat = time.monotonic() + core.heartbeat
        try:
            self.subscriber = core.hub.subscribe((str(i) for i in sub.asset_ids),
                                                 self.queue.put)
            self._opening: bytes | None = self.stream.opening()
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._done or self._closed:
            raise StopIteration
        if self._opening is not None:
            out, self._opening = self._opening, None
            return out
        while True:
            reason = self.stream.ended()
            if reason is not None:
                self._done = True
                return f": closed {reason}\n\n".encode()
            wait = self._next_beat - time.monotonic()
            if wait <= 0:
                self._next_beat = time.monotonic() + self.core.heartbeat
                return HEARTBEAT
            try:
                item = self.queue.get(timeout=wait if self.connection is None
                                      else min(wait, GONE_CHECK))
            except queue.Empty:
                if self.connection is not None and _client_gone(self.connection):
                    self._done = True  # the server then calls close(): the slot is free
                    raise StopIteration from None
                continue
            out = self.stream.frame(item)
            if out:
                return out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.subscriber is not None:
            self.core.hub.unsubscribe(self.subscriber)
        self.core.release()


class EventsWSGIApp:
    """The WSGI callable :func:`wsgi_app` returns; ``core`` holds the counters."""

    def __init__(self, core: EventsCore) -> None:
        self.core = core

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        last_event_id = environ.get("HTTP_LAST_EVENT_ID")
        try:
            sub, last = self.core.admit(str(environ.get("REQUEST_METHOD", "GET")).upper(),
                                        str(environ.get("PATH_INFO") or "/"),
                                        str(environ.get("QUERY_STRING", "")),
                                        None if last_event_id is None else str(last_event_id))
        except _Refused as refused:
            status, out, body = refused.answer()
            start_response(status, out)
            return [body]
        try:
            connection = environ.get("rindle.socket") or environ.get("gunicorn.socket")
            body_iter = _WSGIStream(self.core, sub, last,
                                    connection if isinstance(connection, socket.socket)
                                    else None)
        except Exception as exc:  # no listener, or the snapshot failed (slot already freed)
            status, out, body = _unavailable(exc).answer()
            start_response(status, out)
            return [body]
        start_response(status_line(200), list(_STREAM_HEADERS))
        return body_iter


# --- ASGI ---------------------------------------------------------------------------------


class EventsASGIApp:
    """The native ASGI 3 callable :func:`asgi_app` returns; ``core`` holds the counters."""

    def __init__(self, core: EventsCore) -> None:
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ``http`` stream or a ``lifespan``."""
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        last = next((bytes(value).decode("latin-1") for name, value in scope.get("headers", ())
                     if bytes(name).lower() == b"last-event-id"), None)
        path = str(scope.get("path") or "/")
        root = str(scope.get("root_path") or "")
        if root and (path == root or path.startswith(root + "/")):  # mounted (Starlette)
            path = path[len(root):] or "/"
        try:
            sub, last = self.core.admit(
                str(scope["method"]).upper(), path,
                bytes(scope.get("query_string", b"")).decode("latin-1"), last)
        except _Refused as refused:
            await _send_refusal(send, refused)
            return
        try:
            await self._stream(sub, last, receive, send)
        finally:
            self.core.release()

    async def _stream(self, sub: Subscription, last: str | None, receive: Receive,
                      send: Send) -> None:
        core = self.core
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Change | str | None] = asyncio.Queue()

        def deliver(item: Change | str) -> None:
            loop.call_soon_threadsafe(inbox.put_nowait, item)

        try:
            subscriber = await asyncio.to_thread(
                core.hub.subscribe, [str(i) for i in sub.asset_ids], deliver)
        except Exception as exc:
            await _send_refusal(send, _unavailable(exc))
            return
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            inbox.put_nowait(None)

        stream = _Stream(core, sub, last)
        try:
            opening = await asyncio.to_thread(stream.opening)
        except Exception as exc:
            core.hub.unsubscribe(subscriber)
            await _send_refusal(send, _unavailable(exc))
            return
        watcher = asyncio.ensure_future(watch())
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                    for k, v in _STREAM_HEADERS]})
            await send({"type": "http.response.body", "body": opening, "more_body": True})
            next_beat = loop.time() + core.heartbeat
            while not gone.is_set():
                reason = stream.ended()
                if reason is not None:
                    await send({"type": "http.response.body",
                                "body": f": closed {reason}\n\n".encode(), "more_body": False})
                    return
                wait = next_beat - loop.time()
                if wait <= 0:
                    next_beat = loop.time() + core.heartbeat
                    await send({"type": "http.response.body", "body": HEARTBEAT,
                                "more_body": True})
                    continue
                try:
                    item = await asyncio.wait_for(inbox.get(), timeout=wait)
                except TimeoutError:
                    continue
                if item is None:
                    return
                out = (await asyncio.to_thread(stream.frame, item) if isinstance(item, str)
                       else stream.frame(item))
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        except OSError:  # a server that raises on a closed connection
            return
        finally:
            core.hub.unsubscribe(subscriber)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def _unavailable(exc: Exception) -> _Refused:
    """The 503 for a stream that could not start (no listener, or the snapshot read failed);
    logged with the error's class only."""
    log.warning("rindle.web.events: a stream could not start: %s", type(exc).__name__)
    code = exc.code if isinstance(exc, TransientError) else "events_unavailable"
    return _Refused(503, code, "the live progress stream cannot start now; try again later",
                    headers=[("Retry-After", "5")])


async def _send_refusal(send: Send, refused: _Refused) -> None:
    status, out, body = refused.answer()
    await send({"type": "http.response.start", "status": int(status.split(" ", 1)[0]),
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                            for k, v in out]})
    await send({"type": "http.response.body", "body": body})


# --- mounting -------------------------------------------------------------------------------


def wsgi_app(app: AppContext, *, mount: str = "", **options: Any) -> EventsWSGIApp:
    """The live progress stream as a WSGI app: ``GET <mount>/events?token=...`` (see the
    module docstring). ``options`` (each overrides the app's ``[events]`` setting of the
    same name, whose defaults are given): ``heartbeat`` (seconds, 15), ``max_streams``
    (100), ``max_lifetime`` (seconds, 3600), ``poll_interval`` (seconds between reads on
    SQLite, 1); and ``retry_ms`` (3000), ``clock`` (default: the app's). Serve it from a threaded
    server: each open stream holds a thread. Under ``rindle serve`` (or gunicorn) a stream
    whose browser went away ends within :data:`GONE_CHECK` seconds; under another server,
    at the first write that fails (up to two heartbeats). :class:`ConfigError` without
    ``secret_key`` or for an option out of range."""
    return EventsWSGIApp(EventsCore(app, mount=mount, **options))


def asgi_app(app: AppContext, *, mount: str = "", **options: Any) -> EventsASGIApp:
    """The live progress stream as a native ASGI app (a stream waits on the event loop,
    holding no thread). Same route, answers and options as :func:`wsgi_app`."""
    return EventsASGIApp(EventsCore(app, mount=mount, **options))


def events_url(app: AppContext, base: str, asset_ids: Iterable[uuid.UUID | str], *,
               expires_in: int | None = None) -> str:
    """``<base>/events?token=<subscribe token>`` for ``asset_ids`` (``base``: the URL or
    path of the events mount; ``expires_in`` None: ``[events] token_ttl``)."""
    token = subscribe_token(app, asset_ids, expires_in=expires_in)
    return f"{base.rstrip('/')}/events?token={quote(token, safe='')}"
