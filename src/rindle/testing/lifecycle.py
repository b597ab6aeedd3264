"""The lifecycle contract: a whole image lifecycle on one storage backend, end to end.

Where :class:`rindle.testing.storage.StorageContract` checks a backend's methods one by
one, :class:`LifecycleContract` runs rindle over it: a client PUTs to the signed upload
URL, verify pins the object, the worker renders variants into the storage, delivery hands
out URLs a client can GET, the Day-2 verbs reconcile an object removed behind rindle's
back, and cleanup deletes expired staged uploads. A backend's suite subclasses it and
provides a ``storage_settings`` fixture (the ``[storages.default]`` table, ``backend``
included)::

    from rindle.testing.lifecycle import LifecycleContract

    class TestS3Lifecycle(LifecycleContract):
        backend_name = "s3"

        @pytest.fixture
        def storage_settings(self, moto_endpoint, bucket):
            return {"backend": "s3", "bucket": bucket, "endpoint_url": moto_endpoint, ...}

Each test needs an empty storage (it counts the objects it finds). Requires pytest.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest
from PIL import Image
from sqlalchemy import update

from rindle import Delivery, Profile, Rindle, variants
from rindle.database import Database
from rindle.domain.models import UploadSession, utcnow
from rindle.storage.base import PresignedRequest, Storage
from rindle.testing.servers import http

__all__ = ["LifecycleContract", "LifecyclePhoto", "StoredObjects", "jpeg"]


class LifecyclePhoto(Profile):
    """The profile the contract uploads to: private images with two variants."""

    name = "photo"
    allow_mime = ("image/jpeg", "image/png")
    max_bytes = 2 * 1024 * 1024
    variants = {
        "thumb": variants.Image(mode="fill", width=48, height=48, format="webp"),
        "large": variants.Image(mode="fit", width=320, format="jpeg"),
    }
    delivery = Delivery(public=False, signed_url_ttl=300)


def jpeg(size: tuple[int, int] = (400, 300)) -> bytes:
    """The bytes of a plain JPEG of ``size`` pixels."""
    buf = io.BytesIO()
    Image.new("RGB", size, "purple").save(buf, "JPEG")
    return buf.getvalue()


class StoredObjects(Protocol):
    """The storage seen from outside rindle: what is there, and removing an object."""

    def keys(self) -> list[str]:
        """Every object's key (as the service names it), sorted."""

    def remove(self, key: str) -> None:
        """Delete the object at ``key`` (a key from :meth:`keys`)."""


class _ThroughStorage:
    """:class:`StoredObjects` through rindle's own storage object (list and delete)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def keys(self) -> list[str]:
        return sorted(info.key for info in self.storage.list(""))

    def remove(self, key: str) -> None:
        self.storage.delete(key)


class LifecycleContract:
    """Lifecycle tests for a storage backend; subclass it and define ``storage_settings``.

    Override the fixtures and hooks below where the backend differs; the defaults suit a
    backend whose signed URLs any HTTP client can use.
    """

    #: The ``backend_name`` the app's storage must report.
    backend_name: ClassVar[str]
    #: The status a successful PUT to a signed upload URL answers.
    created_status: ClassVar[int] = 200
    #: Whether the app loads installed plugins (how it finds a plugin's backend).
    load_entrypoints: ClassVar[bool] = True

    # --- fixtures --------------------------------------------------------------------------

    @pytest.fixture
    def storage_settings(self) -> Mapping[str, Any]:
        """The ``[storages.default]`` table, ``backend`` included, on an empty storage."""
        raise NotImplementedError("define a storage_settings fixture")

    @pytest.fixture
    def database_url(self, tmp_path: Path) -> str:
        """A freshly migrated SQLite database (override to run on another database)."""
        url = f"sqlite:///{tmp_path / 'lifecycle.db'}"
        db = Database(url)
        db.migrate()
        db.dispose()
        return url

    @pytest.fixture
    def lifecycle_app(self, database_url: str, storage_settings: Mapping[str, Any],
                      tmp_path: Path) -> Iterator[Rindle]:
        """The app under test: :class:`LifecyclePhoto` on the backend (closed afterwards)."""
        app = Rindle(database_url=database_url, secret_key="lifecycle-secret",
                     storages={"default": dict(storage_settings)},
                     profiles=[LifecyclePhoto], tmp_dir=str(tmp_path / "lifecycle-tmp"),
                     load_entrypoints=self.load_entrypoints)
        try:
            yield app
        finally:
            app.close()

    @pytest.fixture
    def stored_objects(self, lifecycle_app: Rindle) -> StoredObjects:
        """The storage seen from outside rindle; override to use the service's own client
        (the default goes through the app's storage)."""
        return _ThroughStorage(lifecycle_app.storage())

    # --- hooks -----------------------------------------------------------------------------

    def put_upload(self, request: PresignedRequest, data: bytes) -> int:
        """PUT ``data`` to a signed upload, as a client would; returns the HTTP status."""
        return http("PUT", request.url, data, dict(request.headers))[0]

    def fetch(self, url: str) -> tuple[int, bytes]:
        """GET a delivery URL, as a client would; returns ``(status, body)``."""
        status, body, _ = http("GET", url)
        return status, body

    def check_upload_request(self, request: PresignedRequest, byte_size: int) -> None:
        """Backend-specific assertions about a signed upload for ``byte_size`` bytes."""

    def check_delivery_url(self, url: str) -> None:
        """Backend-specific assertions about a private delivery URL."""

    # --- the contract ----------------------------------------------------------------------

    def test_direct_upload_process_deliver_and_reconcile(
            self, lifecycle_app: Rindle, stored_objects: StoredObjects) -> None:
        app = lifecycle_app
        assert app.storage().backend_name == self.backend_name
        data = jpeg()
        session = app.initiate_upload("photo", filename="holiday.jpg", byte_size=len(data))
        request = app.sign_upload(session.id)
        self.check_upload_request(request, len(data))
        assert self.put_upload(request, data) == self.created_status
        asset = app.verify_upload(session.id)
        assert asset.byte_size == len(data)
        app.jobs.drain()
        asset = app.get_asset(asset.id)
        assert asset.state == "ready" and (asset.width, asset.height) == (400, 300)

        url = app.url(asset.id, "thumb")
        self.check_delivery_url(url)
        status, body = self.fetch(url)
        assert status == 200 and body[:4] == b"RIFF" and body[8:12] == b"WEBP"

        keys = stored_objects.keys()
        assert len(keys) == 3  # the original and two variants
        thumb_key = next(k for k in keys if "/thumb" in k)
        stored_objects.remove(thumb_key)

        report = app.ops.verify_storage()
        assert (report.checked, report.present, report.missing, report.errors) == (2, 1, 1, 0)
        assert report.originals_checked == 1 and report.originals_missing == 0
        assert app.ops.regenerate_variants().enqueued == 1
        app.jobs.drain()
        assert app.storage().head(thumb_key).size > 0  # re-rendered into the storage

    def test_cleanup_deletes_expired_staged_objects_from_the_bucket(
            self, lifecycle_app: Rindle) -> None:
        app = lifecycle_app
        sessions = []
        for i in range(3):
            session = app.initiate_upload("photo", filename=f"{i}.jpg")
            request = app.sign_upload(session.id)
            assert self.put_upload(request, jpeg((10, 10))) == self.created_status
            sessions.append(session)
        with app.db.transaction() as s:  # an hour later: every session has timed out
            s.execute(update(UploadSession).values(
                expires_at=utcnow() - dt.timedelta(hours=1)))
        assert app.ops.abort_incomplete_uploads().sessions_aborted == 3
        report = app.ops.cleanup_orphans(dry_run=False)
        assert report.sessions_deleted == 3 and report.objects_deleted == 3
        assert list(app.storage().exists_many([s.upload_key for s in sessions])) == [False] * 3
