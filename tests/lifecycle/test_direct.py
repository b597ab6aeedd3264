"""Direct uploads over real HTTP: initiate, presigned PUT, verify, promotion policy."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from rindle import Rindle
from rindle.errors import InvalidTransition, ObjectNotFound, UploadRejected
from rindle.signing import SignedClaims, sign
from tests.lifecycle.conftest import jpeg_bytes, png_bytes


def put(url: str, data: bytes, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(url, data=data, method="PUT", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""


def test_presigned_put_then_verify_then_promote(served_app: tuple[Rindle, str]) -> None:
    app, _ = served_app
    data = jpeg_bytes((500, 300))
    session = app.initiate_upload("photo", filename="cam.jpg", byte_size=len(data))
    assert session.state == "initialized"
    request = app.sign_upload(session.id)
    assert request.method == "PUT"
    assert put(request.url, data, dict(request.headers)) in (200, 201)
    asset = app.verify_upload(session.id)
    assert asset.state == "validating" and asset.byte_size == len(data)
    with pytest.raises(InvalidTransition) as err:
        app.verify_upload(session.id)
    assert err.value.code == "invalid_transition"
    app.jobs.drain()
    fresh = app.get_asset(asset.id)
    assert fresh.state == "ready" and (fresh.width, fresh.height) == (500, 300)
    status, body = get(app.url(asset.id, "thumb"))
    assert status == 200 and body[:4] == b"RIFF"


def test_verify_before_any_put_is_storage_object_missing(served_app: tuple[Rindle, str]) -> None:
    app, _ = served_app
    session = app.initiate_upload("photo", filename="x.jpg")
    app.sign_upload(session.id)
    with pytest.raises(ObjectNotFound) as err:
        app.verify_upload(session.id)
    assert err.value.code == "storage_object_missing"
    assert app.get_asset(session.asset_id).state == "staged"


def test_presigned_put_over_the_cap_is_refused(served_app: tuple[Rindle, str]) -> None:
    app, _ = served_app
    data = jpeg_bytes()
    session = app.initiate_upload("photo", filename="x.jpg", byte_size=len(data))
    request = app.sign_upload(session.id)
    assert put(request.url, data + b"\0" * 1024, dict(request.headers)) == 413
    with pytest.raises(ObjectNotFound):
        app.verify_upload(session.id)


def test_tampered_and_expired_urls_are_refused(served_app: tuple[Rindle, str]) -> None:
    app, base = served_app
    session = app.initiate_upload("photo", filename="x.jpg")
    request = app.sign_upload(session.id)
    token = request.url.split("token=")[1]
    tampered = request.url.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert put(tampered, jpeg_bytes()) == 403
    expired = sign("test-secret", SignedClaims("PUT", session.upload_key, int(time.time()) - 5))
    assert put(f"{base}/media/{session.upload_key}?token={expired}", jpeg_bytes()) == 403


def test_declared_size_over_max_bytes_is_refused_up_front(served_app: tuple[Rindle, str]) -> None:
    app, _ = served_app
    with pytest.raises(UploadRejected) as err:
        app.initiate_upload("photo", filename="x.jpg", byte_size=50 * 1024 * 1024)
    assert err.value.code == "max_bytes_exceeded"


def test_direct_png_into_jpeg_only_profile_is_quarantined(served_app: tuple[Rindle, str]
                                                         ) -> None:
    app, _ = served_app
    session = app.initiate_upload("jpeg_only", filename="sneaky.jpg")
    request = app.sign_upload(session.id)
    assert put(request.url, png_bytes(), dict(request.headers)) in (200, 201)
    asset = app.verify_upload(session.id)
    app.jobs.drain()
    fresh = app.get_asset(asset.id)
    assert fresh.state == "quarantined"
    assert fresh.error_reason is not None and "mime_not_allowed" in fresh.error_reason
    assert fresh.variants == {}


def test_abort_removes_the_staged_object(served_app: tuple[Rindle, str]) -> None:
    app, _ = served_app
    session = app.initiate_upload("photo", filename="x.jpg")
    request = app.sign_upload(session.id)
    assert put(request.url, jpeg_bytes(), dict(request.headers)) in (200, 201)
    aborted = app.abort_upload(session.id)
    assert aborted.state == "aborted"
    with pytest.raises(ObjectNotFound):
        app.storage().head(session.upload_key)


def test_unsupported_strategy_is_never_downgraded(served_app: tuple[Rindle, str]) -> None:
    from rindle.errors import UploadUnsupported

    app, _ = served_app
    with pytest.raises(UploadUnsupported, match="multipart"):
        app.initiate_upload("photo", filename="x.jpg", strategy="multipart")
    with pytest.raises(UploadUnsupported, match="resumable") as err:
        app.initiate_upload("photo", filename="x.jpg", strategy="resumable")
    assert err.value.code == "upload_unsupported"
    session = app.initiate_upload("photo", filename="x.jpg")  # presigned PUT
    with pytest.raises(UploadUnsupported, match="not resumable"):
        app.resumable_upload_status(session.id)


def test_unknown_session_is_not_found(served_app: tuple[Rindle, str]) -> None:
    from rindle.errors import NotFound

    app, _ = served_app
    with pytest.raises(NotFound):
        app.verify_upload("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound):
        app.sign_upload("not-a-uuid")


