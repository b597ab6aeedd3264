"""The webhook endpoint as a delivery route handler: ``POST /webhooks/<provider>``.

Mounted by :func:`rindle.delivery.wsgi_app` and :func:`rindle.delivery.asgi_app`. The raw
body is read (and capped) here, before anything parses it; the provider verifies it;
:func:`rindle.streaming.webhooks.handle_webhook` decides the status. A provider with no
``[streaming.NAME]`` is 404 (any method); non-POST to a configured one is 405.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from rindle.delivery.body import BodyIncomplete, BodyTooLarge
from rindle.delivery.messages import Handler, Request, Response, plain
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

__all__ = ["webhook_handler"]


def _answer(status: int, text: str, extra: Iterable[tuple[str, str]] = ()) -> Response:
    return plain(status, text, extra)


def webhook_handler(app: WebhookHost) -> Handler:
    """The route handler ``(request, rest)`` for ``/webhooks/<rest>``."""

    def handle(request: Request, rest: str) -> Response:
        provider = rest.strip("/")
        if not provider or "/" in provider or provider not in app.streaming.configs:
            return _answer(404, "no webhook endpoint for this provider")
        if request.method != "POST":
            app.telemetry.emit("rindle.provider.webhook.rejected", {"system_time": time.time_ns()},
                               {"reason": "method_not_allowed"})
            return _answer(405, "method not allowed", [("Allow", "POST")])
        body = request.open_body()
        if body.error is not None:
            return _answer(body.error[0], body.error[1])
        if body.length is not None and body.length > MAX_BODY:
            app.telemetry.emit("rindle.provider.webhook.rejected", {"system_time": time.time_ns()},
                               {"reason": "too_large", "provider": provider})
            # Bounded (1 MiB) so the provider reads the answer instead of a reset; a client
            # that declares more and stalls is dropped by the server's idle timeout.
            body.drain()
            return _answer(413, "payload too large")
        body.cap = MAX_BODY
        try:
            raw = body.read()
        except BodyTooLarge:
            app.telemetry.emit("rindle.provider.webhook.rejected", {"system_time": time.time_ns()},
                               {"reason": "too_large", "provider": provider})
            body.drain()
            return _answer(413, "payload too large")
        except BodyIncomplete:
            return _answer(400, "request body incomplete")
        result = app.streaming.handle_webhook(provider, raw, dict(request.headers))
        return _answer(result.status, result.body)

    return handle
