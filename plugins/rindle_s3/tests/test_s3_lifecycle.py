"""The whole image lifecycle on S3: rindle finds the plugin through its entry point, a
client PUTs to a presigned URL, the worker renders variants into the bucket, delivery
hands out presigned GETs, and the Day-2 verbs reconcile the bucket (SQLite and
PostgreSQL, moto over HTTP)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

import boto3
import pytest
from PIL import Image
from sqlalchemy import update

from rindle import Delivery, Profile, Rindle, variants
from rindle.domain.models import UploadSession, utcnow
from rindle.errors import UploadRejected
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



def s3_app(make_app: Callable[..., Rindle], settings: dict[str, str]) -> Rindle:
    return make_app(storages={"default": settings}, profiles=[Photo], load_entrypoints=True)


def test_direct_upload_process_deliver_and_reconcile(make_app: Callable[..., Rindle],
                                                     s3_settings: dict[str, str]) -> None:
    app = s3_app(make_app, s3_settings)
    assert app.storage().backend_name == "s3"  # found through the `rindle` entry point
    data = jpeg()
    session = app.initiate_upload("photo", filename="holiday.jpg", byte_size=len(data))
    request = app.sign_upload(session.id)
    status, _, _ = http("PUT", request.url, data, dict(request.headers))
    assert status == 200
    asset = app.verify_upload(session.id)
    assert asset.byte_size == len(data)
    app.jobs.drain()
    asset = app.get_asset(asset.id)
    assert asset.state == "ready" and (asset.width, asset.height) == (400, 300)

    status, body, _ = http("GET", app.url(asset.id, "thumb"))
    assert status == 200 and body[:4] == b"RIFF" and body[8:12] == b"WEBP"

    client = boto3.client("s3", endpoint_url=s3_settings["endpoint_url"],
                          region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    keys = sorted(o["Key"] for o in client.list_objects_v2(
        Bucket=s3_settings["bucket"])["Contents"])
    assert len(keys) == 3  # the original and two variants
    thumb_key = next(k for k in keys if "/thumb" in k)
    client.delete_object(Bucket=s3_settings["bucket"], Key=thumb_key)

    report = app.ops.verify_storage()
    assert (report.checked, report.present, report.missing, report.errors) == (2, 1, 1, 0)
    assert report.originals_checked == 1 and report.originals_missing == 0
    assert app.ops.regenerate_variants().enqueued == 1
    app.jobs.drain()
    assert app.storage().head(thumb_key).size > 0  # re-rendered into the bucket


def test_multipart_upload_through_presigned_parts(make_app: Callable[..., Rindle],
                                                  s3_settings: dict[str, str]) -> None:
    app = s3_app(make_app, s3_settings)
    data = jpeg((1600, 1200)) + b"\0" * (5 * 1024 * 1024)  # JPEG ignores trailing bytes
    first, second = data[:5 * 1024 * 1024], data[5 * 1024 * 1024:]
    session = app.initiate_upload("photo", filename="big.jpg", strategy="multipart")
    parts = []
    for number, chunk in ((1, first), (2, second)):
        request = app.sign_upload_part(session.id, number)
        status, _, headers = http("PUT", request.url, chunk)
        assert status == 200
        parts.append({"part_number": number, "etag": headers["ETag"]})
    # over the profile's max_bytes: verify (right after CompleteMultipartUpload) sees the
    # stored size, deletes the object and fails the session
    with pytest.raises(UploadRejected) as err:
        app.complete_multipart_upload(session.id, parts)
    assert err.value.reason == "max_bytes_exceeded"
    assert list(app.storage().exists_many([session.upload_key])) == [False]


def test_multipart_within_the_cap_completes_create_only_and_pins_the_etag(
        make_app: Callable[..., Rindle], s3_settings: dict[str, str]) -> None:
    """One part (the last part may be small): CompleteMultipartUpload carries
    If-None-Match: *, and verify pins the multipart ETag head() reports."""
    app = s3_app(make_app, s3_settings)
    data = jpeg((40, 30))
    session = app.initiate_upload("photo", filename="small.jpg", strategy="multipart")
    request = app.sign_upload_part(session.id, 1)
    status, _, headers = http("PUT", request.url, data)
    assert status == 200
    asset = app.complete_multipart_upload(session.id, [{"part_number": 1,
                                                        "etag": headers["ETag"]}])
    assert asset.byte_size == len(data)
    etag = app.storage().head(asset.storage_key).etag
    assert etag is not None and etag.endswith("-1")
    assert asset.original_etag == etag
    app.jobs.drain()
    assert app.get_asset(asset.id).state == "ready"


def test_cleanup_deletes_expired_staged_objects_from_the_bucket(
        make_app: Callable[..., Rindle], s3_settings: dict[str, str]) -> None:
    app = s3_app(make_app, s3_settings)
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
