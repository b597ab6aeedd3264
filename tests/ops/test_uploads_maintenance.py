"""abort-incomplete-uploads, cleanup-orphans (incl. interruption), sweep, erase-owners."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from rindle import Rindle
from rindle.domain.models import Asset, Job, UploadSession, utcnow
from rindle.errors import ObjectNotFound, StorageError, UsageError
from rindle.processing.rundir import run_directory
from rindle.storage.local import LocalStorage
from tests.apps import local_storage


def expire(app: Rindle) -> None:
    with app.db.transaction() as s:
        s.execute(update(UploadSession).values(expires_at=utcnow() - dt.timedelta(hours=1)))


def sessions(app: Rindle) -> dict[str, int]:
    with app.db.sessionmaker() as s:
        return dict(s.execute(select(UploadSession.state, func.count())
                              .group_by(UploadSession.state)).all())


def staged_upload(app: Rindle, *, put: bool = True) -> UploadSession:
    session = app.initiate_upload("gallery", filename="x.jpg")
    app.sign_upload(session.id)
    if put:
        app.storage().put(session.upload_key, io.BytesIO(b"partial"))
    return session


def test_abort_expires_timed_out_sessions_only(opsapp: Rindle) -> None:
    old = [staged_upload(opsapp) for _ in range(3)]
    opsapp.initiate_upload("gallery", filename="never.jpg")  # initialized, also timed out
    expire(opsapp)
    fresh = staged_upload(opsapp)
    report = opsapp.ops.abort_incomplete_uploads()
    assert (report.sessions_found, report.sessions_aborted) == (4, 4)
    assert report.presigned_put_aborts == 4 and report.exit_code == 0
    assert sessions(opsapp) == {"expired": 4, "signed": 1}
    assert opsapp.ops.abort_incomplete_uploads().sessions_found == 0
    assert fresh.state == "initialized" and len(old) == 3


def test_cleanup_is_a_dry_run_by_default_then_deletes_objects_before_rows(opsapp: Rindle
                                                                          ) -> None:
    made = [staged_upload(opsapp) for _ in range(3)]
    expire(opsapp)
    opsapp.ops.abort_incomplete_uploads()
    preview = opsapp.ops.cleanup_orphans()
    assert preview.dry_run and preview.sessions_found == 3 and preview.sessions_deleted == 0
    assert sessions(opsapp) == {"expired": 3}
    live = opsapp.ops.cleanup_orphans(dry_run=False)
    assert (live.sessions_deleted, live.objects_deleted, live.assets_deleted) == (3, 3, 3)
    assert sessions(opsapp) == {}
    for session in made:
        with pytest.raises(ObjectNotFound):
            opsapp.storage().head(session.upload_key)
    with opsapp.db.sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Asset)) == 0


class DiesAfter(LocalStorage):
    """Real local storage whose process "dies" (KeyboardInterrupt) on the n-th delete,
    or fails like a network error for keys in ``broken``."""

    def __init__(self, *args: Any, die_on: int | None = None, broken: tuple[str, ...] = (),
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.die_on, self.broken, self.deletes = die_on, broken, 0

    def delete(self, key: str) -> None:
        self.deletes += 1
        if self.die_on is not None and self.deletes == self.die_on:
            raise KeyboardInterrupt
        if any(b in key for b in self.broken):
            raise StorageError("access denied")
        super().delete(key)


def test_interrupted_cleanup_finishes_on_the_next_run(opsapp: Rindle) -> None:
    made = [staged_upload(opsapp) for _ in range(5)]
    expire(opsapp)
    opsapp.ops.abort_incomplete_uploads()
    real = local_storage(opsapp)
    opsapp._storages["default"] = DiesAfter(name="default", root=real.root,
                                            secret_key="x", die_on=3)
    with pytest.raises(KeyboardInterrupt):
        opsapp.ops.cleanup_orphans(dry_run=False)
    with opsapp.db.sessionmaker() as s:
        kept = set(s.scalars(select(UploadSession.id)))
    assert sum(not (real.root / m.upload_key).exists() for m in made) == 2
    for m in made:  # nothing half-done: a row is only ever gone after its object
        if m.id not in kept:
            assert not (real.root / m.upload_key).exists()
    opsapp._storages["default"] = real
    report = opsapp.ops.cleanup_orphans(dry_run=False)
    assert report.sessions_deleted == len(kept) and sessions(opsapp) == {}
    assert not any((real.root / s.upload_key).exists() for s in made)


def test_storage_failures_keep_rows_for_the_next_run(opsapp: Rindle) -> None:
    made = [staged_upload(opsapp) for _ in range(2)]
    expire(opsapp)
    opsapp.ops.abort_incomplete_uploads()
    real = local_storage(opsapp)
    opsapp._storages["default"] = DiesAfter(name="default", root=real.root,
                                            secret_key="x", broken=(made[0].upload_key,))
    report = opsapp.ops.cleanup_orphans(dry_run=False)
    assert (report.sessions_deleted, report.storage_errors, report.exit_code) == (1, 1, 1)
    assert sessions(opsapp) == {"expired": 1}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_old_unowned_entries(opsapp: Rindle) -> None:
    root = opsapp.settings.resolved_tmp_dir
    runs = root / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    old = time.time() - 20_000

    def make(name: str, pid: int | None) -> Path:
        d = runs / name
        d.mkdir()
        (d / "data.bin").write_bytes(b"x" * 100)
        if pid is not None:
            (d / ".rindle-run").write_text(f'{{"pid": {pid}, "host": "{os.uname().nodename}"}}')
        os.utime(d, (old, old))
        return d

    dead = make("dead", _dead_pid())
    unmarked = make("unmarked", None)
    live = make("live", os.getpid())
    young = runs / "young"
    young.mkdir()
    preview = opsapp.ops.sweep_orphaned_temp_files()
    assert preview.dry_run and preview.removed == 2 and dead.exists()
    report = opsapp.ops.sweep_orphaned_temp_files(dry_run=False)
    assert (report.removed, report.kept_in_use, report.kept_young) == (2, 1, 1)
    assert report.bytes_freed >= 200
    assert not dead.exists() and not unmarked.exists() and live.exists() and young.exists()
    with run_directory(root, "inuse") as busy:  # a running pipeline's directory survives
        os.utime(busy, (old, old))
        opsapp.ops.sweep_orphaned_temp_files(dry_run=False, threshold_sec=0)
        assert busy.exists()


def test_erase_owners_preview_then_execute(opsapp: Rindle, seed: Callable[..., Any]) -> None:
    mine, shared, other = seed(3)
    opsapp.attach(mine.id, ("user", 1), "avatar")
    opsapp.attach(shared.id, ("user", 1), "cover")
    opsapp.attach(shared.id, ("team", 7), "logo")
    opsapp.attach(other.id, ("user", 2), "avatar")
    preview = opsapp.erase_owners([("user", 1), ("user", "1")])
    assert preview.mode == "preview" and preview.owners == 1
    assert preview.purged == [str(mine.id)] and preview.retained == [
        {"asset_id": str(shared.id), "survivors": 1}]
    assert opsapp.get_asset(mine.id).state == "ready"
    done = opsapp.erase_owners([("user", 1)], dry_run=False)
    assert done.purge_enqueued == 1 and len(done.detached) == 2
    opsapp.jobs.drain()
    assert opsapp.get_asset(shared.id).state == "ready"
    assert opsapp.get_asset(other.id).state == "ready"
    from rindle.errors import NotFound

    with pytest.raises(NotFound):
        opsapp.get_asset(mine.id)
    again = opsapp.erase_owners([("user", 1)], dry_run=False)
    assert (len(again.detached), again.purge_enqueued, again.purged) == (0, 0, [])
    with pytest.raises(UsageError, match="empty_batch"):
        opsapp.erase_owners([])
    with pytest.raises(UsageError, match="batch_too_large"):
        opsapp.erase_owners([("user", i) for i in range(101)])
    with opsapp.db.sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(
            Job.kind == "rindle.purge")) == 1
