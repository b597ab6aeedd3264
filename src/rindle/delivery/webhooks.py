"""The webhook endpoint as a WSGI handler: ``POST /webhooks/<provider>``.

Mounted by :func:`rindle.delivery.wsgi_app`. The raw body is read (and capped) here, before
anything parses it; the provider verifies it; :func:`rindle.streaming.webhooks.handle_webhook`
decides the status. A provider with no ``[streaming.NAME]`` is 404 (any method); non-POST
to a configured one is 405.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol
from wsgiref.types import StartResponse, WSGIEnvironment

from rindle.delivery.body import BodyIncomplete, BodyTooLarge, RequestBody
from rindle.delivery.headers import SECURITY_HEADERS
from rindle.streaming.webhooks import MAX_BODY

if TYPE_CHECKING:
    from rindle.streaming.service import Streaming
    from rindle.telemetry import Telemetry

    class WebhookHost(Protocol):
        """An app with telemetry and streaming services (a :class:`rindle.Rindle` is one)."""

        @property
        def telemetry(self) -> Telemetry:
            """Where events go."""

        @property
        def streaming(self) -> Streaming:
            """The app's streaming services."""

__all__ = ["webhook_handler", "wsgi_headers"]


def wsgi_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request headers of ``environ`` as a lower-case ``name -> value`` dict."""
    out: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out[key[5:].replace("_", "-").lower()] = str(value)
    if environ.get("CONTENT_TYPE"):
        out["content-type"] = str(environ["CONTENT_TYPE"])
    return out


def _answer(start_response: StartResponse, status: int, text: str,
            extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    body = (text + "\n").encode("utf-8") if text else b""
    start_response(f"{status} {HTTPStatus(status).phrase}", [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        *SECURITY_HEADERS,
        *extra,
    ])
    return [body]


def webhook_handler(app: WebhookHost
                    ) -> Callable[[WSGIEnvironment, StartResponse, str], Iterable[bytes]]:
    """The route handler ``(environ, start_response, rest)`` for ``/webhooks/<rest>``."""

    def handle(environ: WSGIEnvironment, start_response: StartResponse, rest: str
               ) -> Iterable[bytes]:
        provider = rest.strip("/")
        if not provider or "/" in provider or provider not in app.streaming.configs:
            return _answer(start_response, 404, "no webhook endpoint for this provider")
        if environ.get("REQUEST_METHOD") != "POST":
            app.telemetry.emit("rindle.provider.webhook.rejected", {"system_time": time.time_ns()},
                               {"reason": "method_not_allowed"})
            return _answer(start_response, 405, "method not allowed", [("Allow", "POST")])
        body = RequestBody.from_environ(environ)
        if body.error is not None:
            return _answer(start_response, body.error[0], body.error[1])
        if body.length is not None and body.length > MAX_BODY:
            app.telemetry.emit("rindle.provider.webhook.rejected", {"system_time": time.time_ns()},
                               {"reason": "too_large", "provider": provider})
            # Bounded (1 MiB) so the provider reads the answer instead of a reset; a client
            # that declares more and stalls is dropped by the server's idle timeout.
            body.drain()
            return _answer(start_response, 413, "payload too large")
        body.cap = MAX_BODY
        try:
            raw = body.read()
        except BodyTooLarge:
            app.telemetry.emit("rindle.provider.webhook.rejected", {"system_time": time.time_ns()},
                               {"reason": "too_large", "provider": provider})
            body.drain()
            return _answer(start_response, 413, "payload too large")
        except BodyIncomplete:
            return _answer(start_response, 400, "request body incomplete")
        result = app.streaming.handle_webhook(provider, raw, wsgi_headers(environ))
        return _answer(start_response, result.status, result.body)

    def handle_without_body_for_head(environ: WSGIEnvironment, start_response: StartResponse,
                                     rest: str) -> Iterable[bytes]:
        out = handle(environ, start_response, rest)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else out

    return handle_without_body_for_head
