"""The whole image lifecycle on GCS: rindle finds the plugin through its entry point, a
client PUTs to a V4 signed URL, the worker renders variants into the bucket, delivery hands
out signed GETs, and the Day-2 verbs reconcile the bucket (SQLite and PostgreSQL,
gcp-storage-emulator over HTTP)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import pytest
from google.cloud import storage as gcs

from rindle import Rindle
from rindle.errors import DeliveryUnsupported, UploadUnsupported
from rindle.storage import PresignedRequest
from rindle.testing.lifecycle import LifecycleContract, LifecyclePhoto, jpeg


class BucketObjects:
    """The bucket through the emulator's admin client, behind rindle's back."""

    def __init__(self, client: gcs.Client, bucket: str) -> None:
        self.client = client
        self.bucket = client.bucket(bucket)

    def keys(self) -> list[str]:
        return sorted(b.name for b in self.client.list_blobs(self.bucket))

    def remove(self, key: str) -> None:
        self.bucket.blob(key).delete()


class TestGCSLifecycle(LifecycleContract):
    """Direct upload to a V4 signed URL, variants, signed delivery, reconcile and cleanup
    on a bucket; the app finds the backend through the `rindle` entry point."""

    backend_name = "gcs"

    @pytest.fixture
    def database_url(self, db_url: str) -> str:
        return db_url

    @pytest.fixture
    def storage_settings(self, gcs_settings: dict[str, str]) -> dict[str, str]:
        return gcs_settings

    @pytest.fixture
    def stored_objects(self, gcs_settings: dict[str, str],
                       admin_client: gcs.Client) -> BucketObjects:
        return BucketObjects(admin_client, gcs_settings["bucket"])

    def check_upload_request(self, request: PresignedRequest, byte_size: int) -> None:
        assert request.headers["x-goog-content-length-range"] == f"0,{byte_size}"

    def check_delivery_url(self, url: str) -> None:
        # the profile's 300 s TTL, its expiry rounded up to the 300 s URL bucket: the URL
        # ends at a bucket boundary at least 300 s (and under 600 s) after it was signed
        query = dict(parse_qsl(urlsplit(url).query))
        assert query["X-Goog-Signature"]
        signed = dt.datetime.strptime(query["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=dt.UTC)
        expires = int(query["X-Goog-Expires"])
        assert 299 <= expires <= 600
        # (a second either way: the signer reads its own clock, in whole seconds)
        assert (int(signed.timestamp()) + expires + 1) % 300 in (0, 1, 2)


def gcs_app(make_app: Callable[..., Rindle], settings: dict[str, str]) -> Rindle:
    return make_app(storages={"default": settings}, profiles=[LifecyclePhoto],
                    load_entrypoints=True)


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
                   profiles=[LifecyclePhoto], load_entrypoints=True)
    checks = {c.name: c for c in app.ops.doctor().checks}
    assert checks["gcs.default.bucket"].status == "ok"
    assert checks["gcs.default.signing"].status == "ok"
    assert checks["gcs.unsigned.signing"].status == "warn"
    assert "credentials_file" in (checks["gcs.unsigned.signing"].fix or "")
    assert checks["gcs.gone.bucket"].status == "error"
    assert "no-such-bucket" in checks["gcs.gone.bucket"].message
