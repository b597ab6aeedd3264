"""Every counted failure of a Day-2 operation is logged once, at WARNING, with its stable
code and the id it hit, and never with a secret the failure's message carried."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import select, update

from rindle import Rindle
from rindle.domain.models import UploadSession, Variant, utcnow
from rindle.errors import StorageError
from rindle.storage.local import LocalStorage
from tests.apps import local_storage

#: What a careless backend might put in an exception message: a presigned URL's token.
LEAKY = "GET https://bucket.example/x?token=s3cr3t-t0ken failed; key test-secret"


def warnings_of(caplog: pytest.LogCaptureFixture, module: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == f"rindle.ops.{module}" and r.levelno == logging.WARNING]


def assert_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = record.getMessage()
        assert "test-secret" not in text and "token=" not in text, text
        assert record.exc_info is None


class BrokenStorage(LocalStorage):
    """Local storage whose every call on a key containing 'boom' fails with a leaky message."""

    def exists_many(self, keys: Sequence[str]) -> Sequence[bool | Exception]:
        answers = list(super().exists_many(keys))
        return [StorageError(LEAKY) if "boom" in key else answer
                for key, answer in zip(keys, answers, strict=True)]

    def delete(self, key: str) -> None:
        if "boom" in key:
            raise StorageError(LEAKY)
        super().delete(key)


def broken(app: Rindle) -> BrokenStorage:
    real = local_storage(app)
    storage = BrokenStorage(name="default", root=real.root,
                            secret_key="test-secret")
    app._storages["default"] = storage
    return storage


def test_verify_storage_logs_each_unknowable_key(opsapp: Rindle, seed: Callable[..., Any],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    assets = seed(2)
    broken(opsapp)
    with opsapp.db.transaction() as s:
        ids = []
        for v in s.scalars(select(Variant).where(Variant.asset_id == assets[0].id)):
            v.storage_key = f"gallery/boom/{v.name}.jpg"
            ids.append(str(v.id))
    caplog.set_level(logging.WARNING, logger="rindle.ops")
    report = opsapp.ops.verify_storage()
    records = warnings_of(caplog, "verify_storage")
    assert report.errors == len(records) == 2
    for record in records:
        assert "[storage_error]" in record.getMessage()
        assert record.rindle_code == "storage_error"  # type: ignore[attr-defined]
    assert sorted(i for r in records for i in ids if i in r.getMessage()) == sorted(ids)
    assert_no_secret(caplog)


def test_cleanup_orphans_logs_each_failed_delete(opsapp: Rindle,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    made = []
    for name in ("ok.jpg", "boom.jpg"):
        session = opsapp.initiate_upload("gallery", filename=name)
        opsapp.sign_upload(session.id)
        opsapp.storage().put(session.upload_key, io.BytesIO(b"partial"))
        made.append(session)
    with opsapp.db.transaction() as s:
        s.execute(update(UploadSession).values(state="expired", expires_at=utcnow()))
    storage = broken(opsapp)
    with opsapp.db.transaction() as s:  # route one session's object through the failing path
        s.execute(update(UploadSession).where(UploadSession.id == made[1].id)
                  .values(upload_key=f"gallery/boom/{made[1].id}.jpg"))
    storage.put(f"gallery/boom/{made[1].id}.jpg", io.BytesIO(b"partial"))
    caplog.set_level(logging.WARNING, logger="rindle.ops")
    report = opsapp.ops.cleanup_orphans(dry_run=False)
    records = warnings_of(caplog, "cleanup")
    assert report.storage_errors == len(records) == 1
    assert "[storage_error]" in records[0].getMessage()
    assert str(made[1].id) in records[0].getMessage()
    assert_no_secret(caplog)


def test_regenerate_logs_a_failed_enqueue_once(opsapp: Rindle, seed: Callable[..., Any],
                                               caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    seed(1, state="missing")

    def refuse(*args: Any, **kwargs: Any) -> int:
        raise ConnectionError(LEAKY)

    monkeypatch.setattr(opsapp.jobs, "enqueue_unique_batch", refuse)
    caplog.set_level(logging.WARNING, logger="rindle.ops")
    report = opsapp.ops.regenerate_variants(profile="gallery", variant="thumb")
    records = warnings_of(caplog, "regenerate")
    assert report.errors == 1 and len(records) == 1
    assert "[ConnectionError]" in records[0].getMessage()
    assert_no_secret(caplog)
