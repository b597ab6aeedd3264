"""rindle's browser surfaces on S3 (moto over HTTP, SQLite and PostgreSQL): the upload API's
multipart flow as Uppy drives it, and the tus server streaming into a multipart upload
with the bytes below S3's 5 MiB part minimum buffered in the bucket, resumed by a new app."""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Callable
from typing import Any

import boto3
import requests
from sqlalchemy import select
from tests.web.conftest import header_actor, serve_wsgi
from tusclient import client as tus_client

from rindle import Profile, Rindle
from rindle.domain.models import UploadSession
from rindle.web import tus_wsgi, upload_api_wsgi

MIB = 1024 * 1024


class Big(Profile):
    name = "big"
    allow_mime = ("image/jpeg",)
    max_bytes = 32 * MIB


def _app(make_app: Callable[..., Rindle], settings: dict[str, str]) -> Rindle:
    return make_app(storages={"default": settings}, profiles=[Big], load_entrypoints=True)


def _bucket(settings: dict[str, str]) -> tuple[object, str]:
    client = boto3.client("s3", endpoint_url=settings["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    return client, settings["bucket"]


def _keys(settings: dict[str, str]) -> list[str]:
    client, bucket = _bucket(settings)
    listed = client.list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _body(settings: dict[str, str], key: str) -> bytes:
    client, bucket = _bucket(settings)
    got = client.get_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    return bytes(got["Body"].read())


def _open_uploads(settings: dict[str, str]) -> int:
    client, bucket = _bucket(settings)
    listed = client.list_multipart_uploads(Bucket=bucket)  # type: ignore[attr-defined]
    return len(listed.get("Uploads", []))


def _uploader(base: str, size: int) -> Any:
    """A tuspy uploader of ``size`` random bytes in 6 MiB chunks, as alice."""
    return tus_client.TusClient(base + "/", headers={"X-Actor": "alice"}).uploader(
        file_stream=io.BytesIO(os.urandom(size)), chunk_size=6 * MIB,
        metadata={"filename": "big.jpg", "profile": "big"})


def test_api_multipart_flow_as_uppy_drives_it(make_app: Callable[..., Rindle],
                                              s3_settings: dict[str, str]) -> None:
    app = _app(make_app, s3_settings)
    data = os.urandom(5 * MIB) + os.urandom(1000)
    with serve_wsgi(upload_api_wsgi(app, authorize=header_actor,
                                    multipart_threshold=5 * MIB)) as base:
        alice = {"X-Actor": "alice"}
        made = requests.post(f"{base}/uploads", headers=alice, timeout=30, json={
            "profile": "big", "filename": "big.jpg", "content_type": "image/jpeg",
            "size": len(data)}).json()
        assert made["strategy"] == "multipart"  # size >= multipart_threshold
        sid = made["uploadId"]
        for number, chunk in ((1, data[:5 * MIB]), (2, data[5 * MIB:])):
            signed = requests.post(f"{base}/uploads/{sid}/parts/{number}", headers=alice,
                                   timeout=30).json()
            assert set(signed) == {"url", "method", "headers", "expires_at"}
            assert requests.put(signed["url"], data=chunk, headers=signed["headers"],
                                timeout=60).status_code == 200
        listed = requests.get(f"{base}/uploads/{sid}/parts", headers=alice, timeout=30)
        parts = listed.json()
        assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MIB), (2, 1000)]
        assert all(p["ETag"].startswith('"') for p in parts)
        other = requests.get(f"{base}/uploads/{sid}/parts", headers={"X-Actor": "bob"},
                             timeout=30)
        assert other.status_code == 404
        done = requests.post(f"{base}/uploads/{sid}/complete", headers=alice, timeout=60,
                             json={"parts": [{"PartNumber": p["PartNumber"],
                                              "ETag": p["ETag"]} for p in parts]})
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "validating"
    assert _body(s3_settings, made["key"]) == data


def test_tus_streams_into_multipart_with_the_tail_in_the_bucket(
        make_app: Callable[..., Rindle], s3_settings: dict[str, str]) -> None:
    data = os.urandom(7 * MIB)
    first = _app(make_app, s3_settings)
    with serve_wsgi(tus_wsgi(first, authorize=header_actor, mount="/files")) as base:
        uploader = tus_client.TusClient(base + "/files/", headers={"X-Actor": "alice"}
                                        ).uploader(file_stream=io.BytesIO(data),
                                                   chunk_size=3 * MIB, upload_checksum=True,
                                                   metadata={"filename": "big.jpg",
                                                             "profile": "big"})
        uploader.upload_chunk()  # 3 MiB: below the part minimum, buffered in the bucket
        tails = [k for k in _keys(s3_settings) if ".tus-tail-" in k]
        assert [k.rsplit("-", 1)[1] for k in tails] == [str(3 * MIB)]
        uploader.upload_chunk()  # 6 MiB: one part; the tail object is gone
        assert not [k for k in _keys(s3_settings) if ".tus-tail-" in k]
        token = uploader.url.rsplit("/", 1)[1]
    first.close()
    second = _app(make_app, s3_settings)  # another process on the same database and bucket
    with serve_wsgi(tus_wsgi(second, authorize=header_actor, mount="/files")) as base:
        resumed = tus_client.TusClient(base + "/files/", headers={"X-Actor": "alice"}
                                       ).uploader(file_stream=io.BytesIO(data),
                                                  chunk_size=3 * MIB,
                                                  url=f"{base}/files/{token}")
        assert resumed.offset == 6 * MIB
        resumed.upload()
    keys = _keys(s3_settings)
    assert len(keys) == 1 and _body(s3_settings, keys[0]) == data


def test_tus_lease_and_termination_on_s3(make_app: Callable[..., Rindle],
                                                      s3_settings: dict[str, str]) -> None:
    app = _app(make_app, s3_settings)
    with serve_wsgi(tus_wsgi(app, authorize=header_actor)) as base:
        uploader = _uploader(base, 8 * MIB)
        uploader.upload_chunk()
        assert _open_uploads(s3_settings) == 1
        with app.db.transaction() as s:  # another process holds the upload's write lease
            row = s.execute(select(UploadSession)).scalars().one()
            row.locked_until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        busy = requests.patch(uploader.url, data=b"x", timeout=30, headers={
            "X-Actor": "alice", "Tus-Resumable": "1.0.0", "Upload-Offset": str(6 * MIB),
            "Content-Type": "application/offset+octet-stream"})
        assert busy.status_code == 423 and busy.json()["error"]["code"] == "upload_busy"
        # termination takes the same lease (4d87554): refused while it is held, bytes kept
        held = requests.delete(uploader.url, headers={"X-Actor": "alice",
                                                      "Tus-Resumable": "1.0.0"}, timeout=30)
        assert held.status_code == 423 and held.json()["error"]["code"] == "upload_busy"
        assert _open_uploads(s3_settings) == 1
        with app.db.transaction() as s:  # the holder's lease ends
            row = s.execute(select(UploadSession)).scalars().one()
            row.locked_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        gone = requests.delete(uploader.url, headers={"X-Actor": "alice",
                                                      "Tus-Resumable": "1.0.0"}, timeout=30)
        assert gone.status_code == 204
        assert _open_uploads(s3_settings) == 0
        assert _keys(s3_settings) == []


def test_expired_tus_upload_on_s3_is_cleaned_by_the_ops(make_app: Callable[..., Rindle],
                                                        s3_settings: dict[str, str]) -> None:
    app = _app(make_app, s3_settings)
    with serve_wsgi(tus_wsgi(app, authorize=header_actor)) as base:
        uploader = _uploader(base, 12 * MIB)
        uploader.upload_chunk()  # one part
        uploader.chunk_size = 1 * MIB
        uploader.upload_chunk()  # and a 1 MiB tail in the bucket
    assert [k for k in _keys(s3_settings) if ".tus-tail-" in k]
    with app.db.transaction() as s:
        for row in s.execute(select(UploadSession)).scalars():
            row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    report = app.ops.abort_incomplete_uploads()
    assert (report.tus_aborts, report.abort_errors) == (1, 0)
    assert _open_uploads(s3_settings) == 0
    assert _keys(s3_settings) == []
    cleaned = app.ops.cleanup_orphans(dry_run=False)
    assert cleaned.storage_errors == 0
    with app.db.sessionmaker() as s:
        assert s.execute(select(UploadSession)).scalars().all() == []
