"""The provider-neutral webhook edge with a provider that signs with rindle's HMAC."""

from __future__ import annotations

import io
import json
import time
from typing import Any

from rindle import Rindle
from rindle.delivery import wsgi_app
from rindle.streaming import sign

from .conftest import SECRET, add_row


def _signed(payload: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    ts = int(time.time())
    return body, {"X-Loop-Signature": f"t={ts},v1={sign(body, secret, ts)}"}


def test_dispatch_enqueue_dedupe_and_ingest(stream_app: Rindle) -> None:
    row = add_row(stream_app, state="processing")
    body, headers = _signed({"type": "ready", "id": "evt-1", "asset": row.provider_asset_id})
    assert stream_app.streaming.handle_webhook("loop", body, headers).status == 202
    again = stream_app.streaming.handle_webhook("loop", body, headers)
    assert (again.status, again.reason) == (200, "duplicate")  # id already seen
    assert stream_app.jobs.drain(["provider"]) == 1  # one job for two deliveries
    assert stream_app.get_asset(row.asset_id) is not None
    fresh = stream_app.streaming.provider_asset(row.asset_id)
    assert fresh is not None and fresh.state == "ready" and fresh.last_event_id == "evt-1"
    dropped, h2 = _signed({"type": "updated", "id": "evt-2"})
    assert stream_app.streaming.handle_webhook("loop", dropped, h2).status == 200
    bad, _ = _signed({"type": "ready", "id": "evt-3"})
    assert stream_app.streaming.handle_webhook("loop", bad, h2).status == 400


def test_a_raising_verifier_is_400_not_500(stream_app: Rindle) -> None:
    ts = int(time.time())
    answer = stream_app.streaming.handle_webhook("loop", b"not json", {
        "x-loop-signature": f"t={ts},v1={sign(b'not json', SECRET, ts)}"})
    assert (answer.status, answer.reason) == (400, "provider_callback_raised")


def _wsgi(app: Rindle, method: str, path: str, body: bytes = b"",
          headers: dict[str, str] | None = None) -> str:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path,
                               "wsgi.input": io.BytesIO(body),
                               "CONTENT_LENGTH": str(len(body))}
    for k, v in (headers or {}).items():
        environ["HTTP_" + k.upper().replace("-", "_")] = v
    status: list[str] = []
    b"".join(wsgi_app(app)(environ, lambda s, h, exc=None: status.append(s)))  # type: ignore
    return status[0]


def test_wsgi_routes(stream_app: Rindle) -> None:
    body, headers = _signed({"type": "updated", "id": "evt-9"})
    assert _wsgi(stream_app, "POST", "/webhooks/loop", body, headers).startswith("200")
    assert _wsgi(stream_app, "PUT", "/webhooks/loop", body, headers).startswith("405")
    assert _wsgi(stream_app, "POST", "/webhooks/mux", body, headers).startswith("404")
    assert _wsgi(stream_app, "POST", "/webhooks/loop",
                 b"x" * (1024 * 1024 + 1), headers).startswith("413")
