"""The storage contract: behaviour every :class:`rindle.storage.Storage` backend promises.

A backend's test suite subclasses :class:`StorageContract` and provides a ``storage``
fixture; pytest then runs every contract test against it::

    from rindle.testing.storage import StorageContract

    class TestS3Contract(StorageContract):
        @pytest.fixture
        def storage(self, moto_server):
            return S3Storage(name="default", bucket="contract", endpoint_url=moto_server)

The fixture may share one bucket or root between tests: every test writes under its own
random prefix and reads back only what it wrote. Requires pytest.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from rindle.errors import ObjectNotFound, UploadUnsupported
from rindle.storage.base import Capability, PresignedRequest, Storage

__all__ = ["StorageContract"]


class StorageContract:
    """Contract tests for a storage backend; subclass it and define a ``storage`` fixture."""

    @pytest.fixture
    def prefix(self) -> str:
        """A folder no other test uses."""
        return f"contract/{uuid.uuid4().hex}/"

    @staticmethod
    def _source(tmp_path: Path, data: bytes, name: str = "src.bin") -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    def test_put_then_head_and_download_round_trip(self, storage: Storage, prefix: str,
                                                   tmp_path: Path) -> None:
        key = f"{prefix}a/one.jpg"
        info = storage.put(key, self._source(tmp_path, b"\xff\xd8rindle"),
                           content_type="image/jpeg")
        assert info.key == key and info.size == 8
        head = storage.head(key)
        assert head.key == key and head.size == 8
        out = storage.download(key, tmp_path / "out.bin")
        assert out.read_bytes() == b"\xff\xd8rindle"

    def test_put_accepts_a_file_object_and_replaces(self, storage: Storage, prefix: str,
                                                    tmp_path: Path) -> None:
        key = f"{prefix}replaced.bin"
        storage.put(key, io.BytesIO(b"first version"))
        storage.put(key, io.BytesIO(b"second"))
        assert storage.head(key).size == 6
        assert storage.download(key, tmp_path / "o").read_bytes() == b"second"

    def test_a_missing_object_is_not_found(self, storage: Storage, prefix: str,
                                           tmp_path: Path) -> None:
        with pytest.raises(ObjectNotFound):
            storage.head(f"{prefix}never-written.bin")
        with pytest.raises(ObjectNotFound):
            storage.download(f"{prefix}never-written.bin", tmp_path / "o")

    def test_delete_removes_and_is_idempotent(self, storage: Storage, prefix: str) -> None:
        key = f"{prefix}doomed.bin"
        storage.put(key, io.BytesIO(b"x"))
        storage.delete(key)
        with pytest.raises(ObjectNotFound):
            storage.head(key)
        storage.delete(key)  # already gone: success
        storage.delete(f"{prefix}never-written.bin")

    def test_exists_many_answers_each_key_in_order(self, storage: Storage, prefix: str) -> None:
        present = [f"{prefix}p/{i}.bin" for i in range(3)]
        for key in present:
            storage.put(key, io.BytesIO(b"x"))
        asked = [present[0], f"{prefix}p/gone.bin", present[2], f"{prefix}q/gone.bin",
                 present[1]]
        assert list(storage.exists_many(asked)) == [True, False, True, False, True]
        assert list(storage.exists_many([])) == []

    def test_delete_many_removes_every_key(self, storage: Storage, prefix: str) -> None:
        keys = [f"{prefix}d/{i}.bin" for i in range(4)]
        for key in keys[:3]:
            storage.put(key, io.BytesIO(b"x"))
        assert list(storage.delete_many(keys)) == [None] * 4  # the 4th never existed
        assert list(storage.exists_many(keys)) == [False] * 4

    def test_list_streams_exactly_the_prefix(self, storage: Storage, prefix: str) -> None:
        if not storage.supports(Capability.LIST):
            with pytest.raises(Exception):  # noqa: B017 - any refusal, never a silent []
                list(storage.list(prefix))
            return
        inside = [f"{prefix}l/a.bin", f"{prefix}l/sub/b.bin"]
        beside = [f"{prefix}lx/c.bin", f"{prefix}other.bin"]
        for key in inside + beside:
            storage.put(key, io.BytesIO(b"xy"))
        listed = {info.key: info.size for info in storage.list(f"{prefix}l/")}
        assert listed == {key: 2 for key in inside}
        assert {i.key for i in storage.list(f"{prefix}l")} == set(inside) | {beside[0]}

    def test_url_names_the_object(self, storage: Storage, prefix: str) -> None:
        key = f"{prefix}u/pic.jpg"
        storage.put(key, io.BytesIO(b"x"))
        url = storage.url(key, expires_in=60)
        assert isinstance(url, str) and "pic.jpg" in url

    def test_presign_put_is_offered_or_refused(self, storage: Storage, prefix: str) -> None:
        key = f"{prefix}direct/upload.jpg"
        if not storage.supports(Capability.PRESIGNED_PUT):
            with pytest.raises(UploadUnsupported):
                storage.presign_put(key, expires_in=60)
            return
        request = storage.presign_put(key, expires_in=60, content_type="image/jpeg",
                                      max_bytes=1024)
        assert isinstance(request, PresignedRequest)
        assert request.method == "PUT" and request.url.startswith(("http://", "https://"))

    def test_multipart_is_offered_or_refused(self, storage: Storage, prefix: str) -> None:
        key = f"{prefix}multi/big.bin"
        if not storage.supports(Capability.MULTIPART_UPLOAD):
            with pytest.raises(UploadUnsupported):
                storage.initiate_multipart(key)
            return
        upload_id = storage.initiate_multipart(key, content_type="application/octet-stream")
        assert upload_id
        part = storage.presign_part(key, upload_id, 1, expires_in=60)
        assert part.url.startswith(("http://", "https://"))
        storage.abort_multipart(key, upload_id)
        storage.abort_multipart(key, upload_id)  # already aborted: success
        with pytest.raises(ObjectNotFound):
            storage.head(key)
