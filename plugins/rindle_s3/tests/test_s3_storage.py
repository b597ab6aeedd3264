"""S3Storage beyond the shared contract: configuration, error mapping, batch deletes,
presigned requests used over real HTTP (moto server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

import rindle_s3.storage
from rindle import Rindle
from rindle.errors import (
    ConfigError,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    TransientError,
)
from rindle.plugins import make_plugin_manager
from rindle.storage import BackendContext
from rindle.testing.servers import http
from rindle_s3 import S3Storage


def test_the_entry_point_registers_the_backend() -> None:
    pm = make_plugin_manager(load_entrypoints=True)
    assert "rindle_s3.plugin" in {getattr(p, "__name__", "") for p in pm.get_plugins()}


@pytest.mark.parametrize("settings, message", [
    ({}, "[storages.media] needs 'bucket' (the S3 bucket name)"),
    ({"bucket": ""}, "[storages.media] needs 'bucket' (the S3 bucket name)"),
    ({"bucket": "b", "access_key_id": "AKIA"}, "set both access_key_id"),
    ({"bucket": "b", "acl": "public-read"}, "unknown setting(s) ['acl']"),
])
def test_bad_settings_are_config_errors(settings: dict[str, str], message: str,
                                        tmp_path: Path) -> None:
    context = BackendContext(secret_key="k", tmp_dir=tmp_path, base_dir=tmp_path)
    with pytest.raises(ConfigError) as err:
        S3Storage.from_settings("media", settings, context)
    assert message in str(err.value)



def test_a_missing_bucket_through_the_app_names_table_and_key() -> None:
    app = Rindle(database_url="sqlite://", secret_key="k" * 40, load_entrypoints=True,
                 storages={"media": {"backend": "s3", "region": "us-east-1"}})
    with pytest.raises(ConfigError) as err:
        app.storage("media")
    assert err.value.message == ("[storages.media] needs 'bucket' (the S3 bucket name): the "
                                 "s3 backend cannot work without it; add it to that table "
                                 "in rindle.toml")
    assert err.value.code == "config_error"

def test_a_missing_bucket_is_an_infrastructure_error_never_a_missing_object(
        moto_endpoint: str) -> None:
    """verify-storage must not flip variants to missing because a bucket is gone."""
    store = S3Storage(name="default", bucket="no-such-bucket", endpoint_url=moto_endpoint,
                      region="us-east-1", access_key_id="testing",
                      secret_access_key="SECRET-NEVER-SHOWN")
    with pytest.raises(StorageError) as err:
        list(store.list("a/"))
    assert not isinstance(err.value, ObjectNotFound) and "NoSuchBucket" in str(err.value)
    [answer] = store.exists_many(["a/b.jpg"])
    assert isinstance(answer, StorageError)
    assert "SECRET-NEVER-SHOWN" not in repr(store.describe()) + str(err.value)


def test_an_unreachable_endpoint_is_storage_unavailable(moto_endpoint: str) -> None:
    closed = S3Storage(name="default", bucket="b", endpoint_url="http://127.0.0.1:9",
                       region="us-east-1", access_key_id="testing",
                       secret_access_key="SECRET-NEVER-SHOWN")
    with pytest.raises(StorageUnavailable) as err:
        closed.head("a/b.jpg")
    assert isinstance(err.value, TransientError) and err.value.code == "storage_unavailable"
    assert "EndpointConnectionError" in str(err.value)
    assert "SECRET-NEVER-SHOWN" not in str(err.value)
    [answer] = closed.exists_many(["a/b.jpg"])
    assert isinstance(answer, StorageUnavailable)


@pytest.mark.parametrize("code, status", [
    ("SlowDown", 503), ("ServiceUnavailable", 503), ("InternalError", 500),
    ("RequestTimeout", 400), ("Throttling", 400), ("503", 503), ("BadGateway", 502),
    ("GatewayTimeout", 504),
])
def test_throttling_and_server_errors_are_storage_unavailable(
        s3: S3Storage, code: str, status: int) -> None:
    with Stubber(s3.client) as stub:
        stub.add_client_error("head_object", service_error_code=code,
                              http_status_code=status)
        with pytest.raises(StorageUnavailable) as err:
            s3.head("a/b.jpg")
    assert err.value.code == "storage_unavailable" and f"({code}: " in str(err.value)


def test_other_service_errors_stay_plain_storage_errors(s3: S3Storage) -> None:
    with Stubber(s3.client) as stub:
        stub.add_client_error("head_object", service_error_code="AccessDenied",
                              http_status_code=403)
        stub.add_client_error("head_object", service_error_code="NotImplemented",
                              http_status_code=501)
        stub.add_response("delete_objects", {"Errors": [
            {"Key": "x/1", "Code": "SlowDown", "Message": "slow down"},
            {"Key": "x/2", "Code": "AccessDenied", "Message": "no"}]})
        with pytest.raises(StorageError) as err:
            s3.head("a/b.jpg")
        with pytest.raises(StorageError) as unimplemented:
            s3.head("a/b.jpg")
        failures = s3._delete_objects(["x/1", "x/2"])
    assert type(err.value) is StorageError and err.value.code == "storage_error"
    assert type(unimplemented.value) is StorageError  # a 501 is not transient
    assert type(failures["x/1"]) is StorageUnavailable
    assert type(failures["x/2"]) is StorageError


def test_delete_many_batches_requests_and_reports_per_key(
        s3: S3Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rindle_s3.storage, "DELETE_BATCH", 3)
    calls = []
    real = s3.client.delete_objects

    def counting(**kwargs: Any) -> Any:
        calls.append(len(kwargs["Delete"]["Objects"]))
        return real(**kwargs)

    monkeypatch.setattr(s3.client, "delete_objects", counting)
    keys = [f"batch/{i}.bin" for i in range(7)]
    for key in keys[:5]:
        s3.put(key, Path(__file__))
    outcomes = s3.delete_many([*keys, "/absolute", keys[0]])
    assert outcomes[:7] == [None] * 7 and outcomes[8] is None
    assert isinstance(outcomes[7], StorageError)  # an invalid key, reported in place
    assert calls == [3, 3, 1]                     # the duplicate key is sent once
    assert list(s3.exists_many(keys)) == [False] * 7


def test_presigned_put_then_signed_get_with_disposition(s3: S3Storage) -> None:
    request = s3.presign_put("up/cat.png", expires_in=60, content_type="image/png")
    status, _, _ = http("PUT", request.url, b"\x89PNG-bytes", dict(request.headers))
    assert status == 200
    info = s3.head("up/cat.png")
    assert info.size == 10 and info.content_type == "image/png" and info.etag
    status, body, headers = http("GET", s3.url("up/cat.png", expires_in=60,
                                               disposition='attachment; filename="cat.png"'))
    assert status == 200 and body == b"\x89PNG-bytes"
    assert headers["Content-Disposition"] == 'attachment; filename="cat.png"'


def test_public_base_url_gives_plain_urls_only_when_nothing_is_asked(
        moto_endpoint: str, s3: S3Storage) -> None:
    public = S3Storage(name="cdn", bucket=s3.bucket, prefix="p",
                       public_base_url="https://cdn.example.com/", endpoint_url=moto_endpoint,
                       region="us-east-1", access_key_id="testing",
                       secret_access_key="testing")
    assert public.url("a b.jpg") == "https://cdn.example.com/p/a%20b.jpg"
    assert "X-Amz-Signature" in public.url("a.jpg", expires_in=30)
