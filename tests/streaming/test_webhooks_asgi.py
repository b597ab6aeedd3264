"""Provider webhooks through the native ASGI delivery app under uvicorn (both dialects):
the same statuses as the WSGI route, the 1 MiB cap at its boundary, a chunked body."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rindle import Rindle
from rindle.delivery import asgi_app
from rindle.streaming import sign
from rindle.streaming.webhooks import MAX_BODY
from tests.uvicorn_server import UvicornThread

from .conftest import SECRET, add_row


def _signed(payload: dict[str, Any], size: int | None = None) -> tuple[bytes, dict[str, str]]:
    """``payload`` as JSON (padded to exactly ``size`` bytes when given), signed."""
    body = json.dumps(payload).encode()
    if size is not None:
        payload = {**payload, "pad": ""}
        body = json.dumps({**payload, "pad": "x" * (size - len(json.dumps(payload)))}).encode()
        assert len(body) == size
    ts = int(time.time())
    return body, {"X-Loop-Signature": f"t={ts},v1={sign(body, SECRET, ts)}"}


@pytest.fixture
def client(stream_app: Rindle) -> Iterator[httpx.Client]:
    server = UvicornThread()
    server.start(asgi_app(stream_app))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as c:
            yield c
    finally:
        server.stop()


def test_a_signed_event_is_enqueued_once(stream_app: Rindle, client: httpx.Client) -> None:
    row = add_row(stream_app, state="processing")
    body, headers = _signed({"type": "ready", "id": "evt-1", "asset": row.provider_asset_id})
    first = client.post("/webhooks/loop", content=body, headers=headers)
    assert first.status_code == 202
    assert first.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert client.post("/webhooks/loop", content=body, headers=headers).status_code == 200
    assert stream_app.jobs.drain(["provider"]) == 1
    forged = dict(headers, **{"X-Loop-Signature": headers["X-Loop-Signature"][:-2] + "00"})
    assert client.post("/webhooks/loop", content=body, headers=forged).status_code == 400


def test_methods_and_unknown_providers(client: httpx.Client) -> None:
    body, headers = _signed({"type": "updated", "id": "evt-9"})
    assert client.put("/webhooks/loop", content=body, headers=headers).status_code == 405
    assert client.put("/webhooks/loop", content=body, headers=headers).headers["allow"] == "POST"
    assert client.post("/webhooks/mux", content=body, headers=headers).status_code == 404


@pytest.mark.parametrize(("size", "status"), [(MAX_BODY, 200), (MAX_BODY + 1, 413)])
def test_the_body_cap_at_its_boundary(client: httpx.Client, size: int, status: int) -> None:
    body, headers = _signed({"type": "updated", "id": f"evt-{size}"}, size)
    assert client.post("/webhooks/loop", content=body, headers=headers).status_code == status


@pytest.mark.parametrize(("size", "status"), [(MAX_BODY, 200), (MAX_BODY + 1, 413)])
def test_a_chunked_body_is_capped_while_read(client: httpx.Client, size: int, status: int
                                             ) -> None:
    body, headers = _signed({"type": "updated", "id": f"evt-c{size}"}, size)

    def chunks() -> Iterator[bytes]:  # no length known: httpx sends it chunked
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    answer = client.post("/webhooks/loop", content=chunks(), headers=headers)
    assert answer.status_code == status
