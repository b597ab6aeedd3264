"""The whole image lifecycle on GCS: rindle finds the plugin through its entry point, a
client PUTs to a V4 signed URL, the worker renders variants into the bucket, delivery hands
out signed GETs, and the Day-2 verbs reconcile the bucket (SQLite and PostgreSQL,
gcp-storage-emulator over HTTP)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

import pytest
from google.cloud import storage as gcs
from PIL import Image
from sqlalchemy import update

from rindle import Delivery, Profile, Rindle, variants
from rindle.domain.models import UploadSession, utcnow
from rindle.errors import DeliveryUnsupported, UploadUnsupported
from rindle.testing.servers import http


class Photo(Profile):
    name = "photo"
    allow_mime = ("image/jpeg", "image/png")
    max_bytes = 2 * 1024 * 1024
    variants = {
        "thumb": variants.Image(mode="fill", width=48, height=48, format="webp"),
        "large": variants.Image(mode="fit", width=320, format="jpeg"),
    }
    delivery = Delivery(public=False, signed_url_ttl=300)


def jpeg(size: tuple[int, int] = (400, 300)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "purple").save(buf, "JPEG")
    return buf.getvalue()



def gcs_app(make_app: Callable[..., Rindle], settings: dict[str, str]) -> Rindle:
    return make_app(storages={"default": settings}, profiles=[Photo], load_entrypoints=True)


def test_direct_upload_process_deliver_and_reconcile(make_app: Callable[..., Rindle],
                                                     gcs_settings: dict[str, str],
                                                     admin_client: gcs.Client) -> None:
    app = gcs_app(make_app, gcs_settings)
    assert app.storage().backend_name == "gcs"  # found through the `rindle` entry point
    data = jpeg()
    session = app.initiate_upload("photo", filename="holiday.jpg", byte_size=len(data))
    request = app.sign_upload(session.id)
    assert request.headers["x-goog-content-length-range"] == f"0,{len(data)}"
    status, _, _ = http("PUT", request.url, data, dict(request.headers))
    assert status == 200
    asset = app.verify_upload(session.id)
    assert asset.byte_size == len(data)
    app.jobs.drain()
    asset = app.get_asset(asset.id)
    assert asset.state == "ready" and (asset.width, asset.height) == (400, 300)

    url = app.url(asset.id, "thumb")
    assert "X-Goog-Signature=" in url and "X-Goog-Expires=300" in url
    status, body, _ = http("GET", url)
    assert status == 200 and body[:4] == b"RIFF" and body[8:12] == b"WEBP"

    bucket = admin_client.bucket(gcs_settings["bucket"])
    keys = sorted(b.name for b in admin_client.list_blobs(bucket))
    assert len(keys) == 3  # the original and two variants
    thumb_key = next(k for k in keys if "/thumb" in k)
    bucket.blob(thumb_key).delete()

    report = app.ops.verify_storage()
    assert (report.checked, report.present, report.missing, report.errors) == (2, 1, 1, 0)
    assert report.originals_checked == 1 and report.originals_missing == 0
    assert app.ops.regenerate_variants().enqueued == 1
    app.jobs.drain()
    assert app.storage().head(thumb_key).size > 0  # re-rendered into the bucket


def test_verify_storage_counts_errors_not_missing_when_the_bucket_is_gone(
        make_app: Callable[..., Rindle], gcs_settings: dict[str, str],
        admin_client: gcs.Client) -> None:
    app = gcs_app(make_app, gcs_settings)
    asset = app.upload("photo", io.BytesIO(jpeg((64, 48))), filename="a.jpg")
    app.jobs.drain()
    assert app.get_asset(asset.id).state == "ready"
    bucket = admin_client.bucket(gcs_settings["bucket"])
    for blob in list(admin_client.list_blobs(bucket)):
        blob.delete()
    bucket.delete()
    report = app.ops.verify_storage()
    assert report.missing == 0 and report.errors > 0  # nothing flipped to missing
    assert app.get_asset(asset.id).state == "ready"


def test_cleanup_deletes_expired_staged_objects_from_the_bucket(
        make_app: Callable[..., Rindle], gcs_settings: dict[str, str]) -> None:
    app = gcs_app(make_app, gcs_settings)
    sessions = []
    for i in range(3):
        session = app.initiate_upload("photo", filename=f"{i}.jpg")
        request = app.sign_upload(session.id)
        assert http("PUT", request.url, jpeg((10, 10)), dict(request.headers))[0] == 200
        sessions.append(session)
    with app.db.transaction() as s:  # an hour later: every session has timed out
        s.execute(update(UploadSession).values(
            expires_at=utcnow() - dt.timedelta(hours=1)))
    assert app.ops.abort_incomplete_uploads().sessions_aborted == 3
    report = app.ops.cleanup_orphans(dry_run=False)
    assert report.sessions_deleted == 3 and report.objects_deleted == 3
    assert list(app.storage().exists_many([s.upload_key for s in sessions])) == [False] * 3


def test_without_a_key_private_delivery_and_direct_uploads_are_refused(
        make_app: Callable[..., Rindle], gcs_settings: dict[str, str]) -> None:
    settings = {k: v for k, v in gcs_settings.items() if k != "credentials_file"}
    app = gcs_app(make_app, settings)
    asset = app.upload("photo", io.BytesIO(jpeg((64, 48))), filename="a.jpg")
    app.jobs.drain()
    assert app.get_asset(asset.id).state == "ready"  # proxied upload needs no key
    with pytest.raises(DeliveryUnsupported):
        app.url(asset.id, "thumb")
    with pytest.raises(UploadUnsupported) as err:
        app.initiate_upload("photo", filename="b.jpg")
    assert err.value.code == "upload_unsupported" and "presigned_put" in str(err.value)


def test_doctor_runs_the_plugin_checks(make_app: Callable[..., Rindle],
                                       gcs_settings: dict[str, str]) -> None:
    app = make_app(storages={"default": gcs_settings,
                             "unsigned": {**{k: v for k, v in gcs_settings.items()
                                             if k != "credentials_file"}},
                             "gone": {**gcs_settings, "bucket": "no-such-bucket"}},
                   profiles=[Photo], load_entrypoints=True)
    checks = {c.name: c for c in app.ops.doctor().checks}
    assert checks["gcs.default.bucket"].status == "ok"
    assert checks["gcs.default.signing"].status == "ok"
    assert checks["gcs.unsigned.signing"].status == "warn"
    assert "credentials_file" in (checks["gcs.unsigned.signing"].fix or "")
    assert checks["gcs.gone.bucket"].status == "error"
    assert "no-such-bucket" in checks["gcs.gone.bucket"].message
