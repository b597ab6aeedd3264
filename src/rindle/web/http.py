"""One request/response shape for rindle's web surfaces, served as WSGI and as ASGI.

A surface is a function ``handle(request) -> Response`` on a :class:`Request`;
:class:`WSGIApp` and :class:`ASGIApp` serve it. The ASGI app is native (no WSGI bridge):
it reads the body from ``receive`` and runs the handler, which talks to the database and
storage synchronously, in a worker thread of rindle's pool
(:func:`rindle.delivery.asgi.run_blocking`); the handler's body reads are forwarded to the
event loop as they happen, so a large PATCH streams, never buffered whole, and a body that
sends nothing for ``body_timeout`` seconds is cut (the handler sees it end early).

Both strip ``mount`` (a path prefix, for hosts that route a sub-path without setting
``SCRIPT_NAME``/``root_path``) and answer 404 outside it; the ASGI app also strips
``root_path`` when the path carries it (Starlette's and FastAPI's ``Mount``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import IO, Any, cast
from wsgiref.types import StartResponse, WSGIEnvironment

from rindle.delivery.asgi import (
    BODY_TIMEOUT,
    Receive,
    ReceiveStream,
    Scope,
    Send,
    run_blocking,
    scope_headers,
    serve_lifespan,
)
from rindle.delivery.body import RequestBody
from rindle.delivery.headers import SECURITY_HEADERS

__all__ = ["ASGIApp", "Handler", "Refusal", "Request", "Response", "WSGIApp", "json_error",
           "json_response", "status_line"]

log = logging.getLogger(__name__)

#: Reason phrases for statuses :class:`http.HTTPStatus` does not know (tus's 460).
EXTRA_REASONS = {460: "Checksum Mismatch"}


def status_line(code: int) -> str:
    """``"404 Not Found"``; 460 is ``"460 Checksum Mismatch"``."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} {EXTRA_REASONS.get(code, 'Unknown')}"


@dataclass
class Request:
    """One request: ``path`` is the part after the mount (starts with ``/``), ``headers``
    have lower-case names, ``body`` is a capped ``read(n)`` stream, ``native`` is the WSGI
    environ or ASGI scope (what the host's ``authorize`` receives) and ``base_url`` is the
    absolute URL of the mount (``scheme://host/root/mount``, no trailing slash)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: RequestBody
    native: Any
    base_url: str


@dataclass
class Response:
    """What a handler answers; :data:`SECURITY_HEADERS` and ``Cache-Control: no-store``
    are added by the servers unless ``headers`` set them."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def finished_headers(self, method: str) -> list[tuple[str, str]]:
        """The headers to send: ours, ``Content-Length``, the defaults not overridden."""
        names = {k.lower() for k, _ in self.headers}
        out = list(self.headers)
        if "content-length" not in names and self.status not in (204, 304):
            out.append(("Content-Length", str(len(self.body))))
        if "cache-control" not in names:
            out.append(("Cache-Control", "no-store"))
        out.extend(h for h in SECURITY_HEADERS if h[0].lower() not in names)
        return out


Handler = Callable[[Request], Response]


class Refusal(Exception):
    """A handler's refusal, raised and answered as :func:`json_error`: ``status``, a
    rindle-style ``code``, a ``message`` saying what to do, and extra ``headers``."""

    def __init__(self, status: int, code: str, message: str,
                 headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or []

    def response(self) -> Response:
        """The JSON error answer."""
        return json_error(self.status, self.code, self.message, self.headers)


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None
                  ) -> Response:
    """``payload`` as compact JSON (``Content-Type: application/json``)."""
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return Response(status, [("Content-Type", "application/json"), *(headers or [])], body)


def json_error(status: int, code: str, message: str,
               headers: list[tuple[str, str]] | None = None) -> Response:
    """``{"error": {"code": code, "message": message}}`` with ``status``."""
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


def _strip(path: str, mount: str) -> str | None:
    if not mount:
        return path or "/"
    if path == mount:
        return "/"
    if path.startswith(mount + "/"):
        return path[len(mount):]
    return None


def _not_found() -> Response:
    return Response(404, [("Content-Type", "application/json")],
                    b'{"error": {"code": "not_found", "message": "no such endpoint"}}')


class WSGIApp:
    """A PEP 3333 callable serving ``handler`` under ``mount``."""

    def __init__(self, handler: Handler, *, mount: str = "") -> None:
        self.handler = handler
        self.mount = mount.rstrip("/")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        """Answer one request; a handler's unexpected exception is logged and is a 500."""
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = _strip(str(environ.get("PATH_INFO") or "/"), self.mount)
        body = RequestBody.from_environ(environ)
        if body.error and body.error[0] == 411:  # no framing at all: an empty body
            body = RequestBody(cast(IO[bytes], environ["wsgi.input"]), length=0, chunked=False)
        if path is None:
            response = _not_found()
        else:
            headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items()
                       if k.startswith("HTTP_")}
            if environ.get("CONTENT_TYPE"):
                headers["content-type"] = str(environ["CONTENT_TYPE"])
            if environ.get("CONTENT_LENGTH"):
                headers["content-length"] = str(environ["CONTENT_LENGTH"])
            scheme = str(environ.get("wsgi.url_scheme", "http"))
            host = headers.get("host") or (f"{environ.get('SERVER_NAME', 'localhost')}:"
                                           f"{environ.get('SERVER_PORT', '80')}")
            base = f"{scheme}://{host}{environ.get('SCRIPT_NAME', '')}{self.mount}"
            request = Request(method, path, str(environ.get("QUERY_STRING", "")), headers,
                              body, environ, base)
            response = _run(self.handler, request)
        if not body.finished:
            body.discard()
        start_response(status_line(response.status), response.finished_headers(method))
        return [] if method == "HEAD" else [response.body]


def _run(handler: Handler, request: Request) -> Response:
    try:
        return handler(request)
    except Exception:
        log.exception("rindle.web: unexpected error answering %s %s", request.method,
                      request.path)
        return Response(500, [("Content-Type", "application/json")],
                        b'{"error": {"code": "internal_error", "message": '
                        b'"the server failed; try again later"}}')


class ASGIApp:
    """An ASGI 3 callable serving ``handler`` under ``mount`` (``http`` and ``lifespan``);
    a request body silent for ``body_timeout`` seconds ends early."""

    def __init__(self, handler: Handler, *, mount: str = "",
                 body_timeout: float = BODY_TIMEOUT) -> None:
        self.handler = handler
        self.mount = mount.rstrip("/")
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ``http`` request, or a lifespan's startup and shutdown."""
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = str(scope["method"]).upper()
        headers = scope_headers(scope)
        full, root = str(scope.get("path") or "/"), str(scope.get("root_path") or "")
        if root and (full == root or full.startswith(root + "/")):  # mounted (Starlette)
            full = full[len(root):] or "/"
        path = _strip(full, self.mount)
        stream = ReceiveStream(receive, asyncio.get_running_loop(), self.body_timeout)
        body = RequestBody.from_headers(
            cast(IO[bytes], stream), transfer_encoding=headers.get("transfer-encoding", ""),
            content_length=headers.get("content-length", ""), terminated=True)
        if body.error and body.error[0] == 411:  # no framing at all: an empty body
            body = RequestBody(cast(IO[bytes], stream), length=0, chunked=False)
        if path is None:
            response = _not_found()
        else:
            server = scope.get("server") or ("localhost", 80)
            host = headers.get("host") or f"{server[0]}:{server[1]}"
            base = f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{self.mount}"
            query = scope.get("query_string", b"").decode("latin-1")
            request = Request(method, path, query, headers, body, scope, base)
            response = await run_blocking(_run, self.handler, request)
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                for k, v in response.finished_headers(method)]})
        await send({"type": "http.response.body",
                    "body": b"" if method == "HEAD" else response.body})
