"""Delivery through Django (headers, Range, refusals) and attacks on every outside input
of the plugin: delivery paths and tokens, the direct-upload endpoints, form tokens."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.core import signing
from django.test import Client
from djgallery.models import Photo
from djgallery.views import DirectPhotoForm
from rindle_django.forms import ASSET_TOKEN_MAX_AGE, asset_token, grant_token

from rindle import Rindle

SECURITY = {"Content-Security-Policy": "default-src 'none'; sandbox",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _body(response: object) -> bytes:
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


def _secured(response: object) -> None:
    for key, value in SECURITY.items():
        assert response[key] == value, key  # type: ignore[index]


@pytest.fixture
def delivered(rindle_app: Rindle, make_image: Callable[..., bytes],
              drain: Callable[[], object]) -> tuple[str, bytes]:
    """(URL, bytes) of a promoted original."""
    data = make_image(50, 40)
    asset = rindle_app.upload("photo", data, filename="o.png")
    drain()
    return rindle_app.url(asset.id), data


@pytest.mark.django_db
def test_signed_get_head_and_ranges_keep_the_security_headers(
        client: Client, delivered: tuple[str, bytes]) -> None:
    url, data = delivered
    full = client.get(url)
    assert (full.status_code, full["Content-Type"], _body(full)) == (200, "image/png", data)
    assert full["Content-Length"] == str(len(data))
    _secured(full)
    part = client.get(url, HTTP_RANGE="bytes=0-9")
    assert (part.status_code, part["Content-Range"], _body(part)) == (
        206, f"bytes 0-9/{len(data)}", data[:10])
    _secured(part)
    last = client.get(url, HTTP_RANGE=f"bytes={len(data) - 1}-{len(data) - 1}")
    assert (last.status_code, _body(last)) == (206, data[-1:])
    beyond = client.get(url, HTTP_RANGE=f"bytes={len(data)}-")
    assert beyond.status_code == 416
    head = client.head(url)
    assert (head.status_code, _body(head)) == (200, b"")


@pytest.mark.django_db
@pytest.mark.parametrize(("mutate", "status"), [
    (lambda u: u[:-3] + ("AAA" if not u.endswith("AAA") else "BBB"), 403),  # tampered
    (lambda u: u.split("?")[0], 403),                                        # no token
    (lambda u: u.replace("/media/photo/", "/media/photo/../../../etc/"), 400),
    (lambda u: "/rindle/nowhere/x", 404),
])
def test_delivery_refusals(client: Client, delivered: tuple[str, bytes],
                           mutate: Callable[[str], str], status: int) -> None:
    response = client.get(mutate(delivered[0]))
    assert response.status_code == status
    _secured(response)


@pytest.mark.django_db
def test_delivery_needs_no_csrf_but_refuses_other_methods_and_unknown_webhooks(
        delivered: tuple[str, bytes]) -> None:
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(delivered[0], b"x", content_type="image/png").status_code == 405
    hook = strict.post("/rindle/webhooks/nope", b"{}", content_type="application/json")
    assert hook.status_code == 404


def _post(client: Client, path: str, body: object, **extra: object) -> object:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, payload, content_type="application/json", **extra)


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "status", "code"), [
    ({"filename": "a.png"}, 403, "forbidden"),
    ({"grant": grant_token("photo") + "x", "filename": "a.png"}, 403, "forbidden"),
    ({"grant": signing.dumps({"p": "photo"}, salt="other"), "filename": "a.png"}, 403,
     "forbidden"),
    (b"[1, 2]", 400, "invalid_json"),
    (b"{not json", 400, "invalid_json"),
    (b'{"pad": "' + b"x" * (16 * 1024) + b'"}', 413, "body_too_large"),
])
def test_direct_initiate_refusals(client: Client, rindle_app: Rindle, body: object,
                                  status: int, code: str) -> None:
    response = _post(client, "/rindle/direct/initiate", body)
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.json()["error"]["code"] == code  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_direct_endpoints_need_json_post_and_csrf(client: Client, rindle_app: Rindle) -> None:
    grant = grant_token("photo")
    form = client.post("/rindle/direct/initiate", {"grant": grant, "filename": "a.png"})
    assert form.status_code == 415
    assert client.get("/rindle/direct/initiate").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    refused = _post(strict, "/rindle/direct/initiate", {"grant": grant, "filename": "a.png"})
    assert refused.status_code == 403  # type: ignore[attr-defined]
    rejected = _post(client, "/rindle/direct/initiate", {"grant": grant, "filename": "a.exe"})
    assert rejected.status_code == 400  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_direct_complete_refuses_foreign_and_forged_sessions(
        client: Client, rindle_app: Rindle) -> None:
    started = _post(client, "/rindle/direct/initiate", {
        "grant": grant_token("photo"), "filename": "a.png", "content_type": "image/png"})
    session = started.json()["session"]  # type: ignore[attr-defined]
    other = _post(client, "/rindle/direct/complete",
                  {"grant": grant_token("shot"), "session": session})
    assert other.status_code == 403  # type: ignore[attr-defined]
    forged = signing.dumps({"s": str(uuid.uuid4()), "p": "photo"}, salt="nope")
    bad = _post(client, "/rindle/direct/complete",
                {"grant": grant_token("photo"), "session": forged})
    assert bad.status_code == 403  # type: ignore[attr-defined]
    unstored = _post(client, "/rindle/direct/complete",
                     {"grant": grant_token("photo"), "session": session})
    assert unstored.status_code == 400  # type: ignore[attr-defined]
    assert Photo.objects.count() == 0


@pytest.mark.django_db
def test_form_accepts_only_its_own_fresh_tokens(rindle_app: Rindle,
                                                make_image: Callable[..., bytes]) -> None:
    asset = rindle_app.upload("photo", make_image(), filename="mine.png")

    def errors(token: str) -> list[str]:
        form = DirectPhotoForm({"title": "t", "image": token})
        form.is_valid()
        return [e.code or "" for e in form.errors.as_data().get("image", [])]

    assert errors(asset_token(asset.id, "photo")) == []
    assert errors(str(asset.id)) == ["invalid_upload_token"]  # a bare id is not proof
    assert errors(asset_token(asset.id, "shot")) == ["invalid_upload_token"]
    assert errors(asset_token(asset.id, "photo")[:-2] + "xx") == ["invalid_upload_token"]
    now = time.time()
    with mock.patch("django.core.signing.time.time", return_value=now - ASSET_TOKEN_MAX_AGE + 60):
        fresh_enough = asset_token(asset.id, "photo")
    with mock.patch("django.core.signing.time.time", return_value=now - ASSET_TOKEN_MAX_AGE - 60):
        expired = asset_token(asset.id, "photo")
    assert errors(fresh_enough) == []
    assert errors(expired) == ["invalid_upload_token"]


@pytest.mark.django_db
def test_delivery_under_asgi_serves_ranges_and_takes_a_presigned_put(
        rindle_app: Rindle, delivered: tuple[str, bytes],
        make_image: Callable[..., bytes]) -> None:
    """Django's ASGI handler (AsyncClient): no ``wsgi.input`` in META, same answers."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    url, data = delivered
    client = AsyncClient()

    async def body(response: Any) -> bytes:
        content = response.streaming_content
        if hasattr(content, "__aiter__"):
            return b"".join([chunk async for chunk in content])
        return b"".join(content)  # a sync iterator (Django serves it from a thread)

    upload = make_image(30, 20)
    session = rindle_app.initiate_upload("photo", filename="a.png", byte_size=len(upload),
                                         content_type="image/png")
    signed = rindle_app.sign_upload(session.id)

    async def run() -> tuple[Any, bytes, Any, bytes]:
        part = await client.get(url, headers={"Range": "bytes=2-5"})
        part_body = await body(part)
        put = await client.generic("PUT", signed.url, upload, content_type="image/png")
        return part, part_body, put, await body(put)

    part, part_body, put, put_body = async_to_sync(run)()
    assert (part.status_code, part_body) == (206, data[2:6])
    _secured(part)
    assert put.status_code == 201, put_body
