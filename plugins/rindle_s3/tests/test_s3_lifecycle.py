"""The whole image lifecycle on S3: rindle finds the plugin through its entry point, a
client PUTs to a presigned URL, the worker renders variants into the bucket, delivery
hands out presigned GETs, and the Day-2 verbs reconcile the bucket (SQLite and
PostgreSQL, moto over HTTP)."""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest

from rindle import Rindle
from rindle.errors import UploadRejected
from rindle.testing.lifecycle import LifecycleContract, LifecyclePhoto, jpeg
from rindle.testing.servers import http


class BucketObjects:
    """The bucket through boto3, behind rindle's back."""

    def __init__(self, settings: dict[str, str]) -> None:
        self.bucket = settings["bucket"]
        self.client = boto3.client("s3", endpoint_url=settings["endpoint_url"],
                                   region_name="us-east-1", aws_access_key_id="testing",
                                   aws_secret_access_key="testing")

    def keys(self) -> list[str]:
        return sorted(o["Key"] for o in self.client.list_objects_v2(
            Bucket=self.bucket)["Contents"])

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


class TestS3Lifecycle(LifecycleContract):
    """Direct upload, variants, presigned delivery, reconcile and cleanup on a bucket; the
    app finds the backend through the `rindle` entry point."""

    backend_name = "s3"

    @pytest.fixture
    def database_url(self, db_url: str) -> str:
        return db_url

    @pytest.fixture
    def storage_settings(self, s3_settings: dict[str, str]) -> dict[str, str]:
        return s3_settings

    @pytest.fixture
    def stored_objects(self, s3_settings: dict[str, str]) -> BucketObjects:
        return BucketObjects(s3_settings)


def s3_app(make_app: Callable[..., Rindle], settings: dict[str, str]) -> Rindle:
    return make_app(storages={"default": settings}, profiles=[LifecyclePhoto],
                    load_entrypoints=True)


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
