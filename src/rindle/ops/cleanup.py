"""``cleanup-orphans``: remove what expired upload sessions left behind.

For every ``expired`` session: delete the staged object from storage first (abort the
multipart upload if one is open; for a tus upload also its part file or buffered tail),
then, in one transaction, the session row and its
asset row if that asset never got past ``staged``. A storage failure keeps the rows for
the next run, so an interrupted pass loses nothing and a rerun finishes it. Dry run by
default: it reports what it would delete and changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from rindle.domain.models import Asset, UploadSession
from rindle.ops.batches import DEFAULT_BATCH, as_uuid, keyset_batches, raw_id, raw_ids_match
from rindle.ops.progress import Progress
from rindle.ops.report import Report, log_failure
from rindle.upload import tus_backing

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.jobs import JobContext

__all__ = ["CleanupReport", "cleanup_orphans"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _TusFacts:
    """The columns :func:`rindle.upload.tus_backing.discard` reads."""

    id: uuid.UUID
    upload_key: str
    multipart_upload_id: str | None
    protocol_state: dict[str, Any] | None


@dataclass
class CleanupReport(Report):
    """Counters of one ``cleanup-orphans`` pass."""

    dry_run: bool = True
    sessions_found: int = 0
    sessions_deleted: int = 0
    assets_deleted: int = 0
    objects_deleted: int = 0
    storage_errors: int = 0
    storage_skipped: int = 0
    resumable_skipped: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.storage_errors else 0


def cleanup_orphans(app: AppContext, *, dry_run: bool = True, batch_size: int = DEFAULT_BATCH,
                    progress: bool | None = None) -> CleanupReport:
    """Delete expired sessions' staged objects, then their rows (dry run by default)."""
    report = CleanupReport(dry_run=dry_run)
    # ids travel as the driver reads them: no UUID is built or formatted per row
    stmt = (select(raw_id(UploadSession.id), raw_id(UploadSession.asset_id, "asset_id"),
                   UploadSession.upload_key,
                   UploadSession.upload_strategy, UploadSession.multipart_upload_id,
                   UploadSession.session_uri, UploadSession.protocol_state, Asset.profile,
                   Asset.state.label("asset_state"))
            .join(Asset, Asset.id == UploadSession.asset_id)
            .where(UploadSession.state == "expired"))
    bar = Progress("cleanup-orphans", enabled=progress)
    for rows in keyset_batches(app.db.engine.connect, stmt, UploadSession.id,
                               batch_size=batch_size):
        cleaned: list[Any] = []
        try:
            report.sessions_found += len(rows)
            live = []
            for row in rows:
                if row.upload_strategy == "resumable" and row.session_uri:
                    report.resumable_skipped += 1  # still cancellable: abort it first
                else:
                    live.append(row)
            if not dry_run:
                _delete_objects(app, live, report, cleaned)
        finally:  # even when interrupted: forget the sessions whose objects are gone
            _delete_rows(app, cleaned, report)
        bar.advance(len(rows), deleted=report.sessions_deleted)
    bar.close()
    return report


def _delete_objects(app: AppContext, rows: list[Any], report: CleanupReport,
                    cleaned: list[Any]) -> None:
    """Remove the rows' staged objects; rows whose object is gone go to ``cleaned``.

    A row whose deletion failed stays out of ``cleaned``, so its session survives for the
    next run. Plain objects go to the backend in one ``delete_many`` per profile; open
    multipart uploads are aborted one by one.
    """
    by_profile: dict[str, list[Any]] = {}
    for row in rows:
        by_profile.setdefault(row.profile, []).append(row)
    for profile, members in by_profile.items():
        try:
            storage = app.storage_for(profile)
        except Exception:
            report.storage_skipped += len(members)  # its storage is gone: nothing to delete
            cleaned.extend(members)
            continue
        plain = []
        for row in members:
            if row.upload_strategy == "tus" or row.multipart_upload_id:
                try:
                    if row.upload_strategy == "tus":  # part file or multipart + tail, object
                        tus_backing.discard(storage, _TusFacts(
                            as_uuid(row.id), row.upload_key, row.multipart_upload_id,
                            row.protocol_state))
                    else:
                        storage.abort_multipart(row.upload_key, row.multipart_upload_id)
                except Exception as exc:
                    report.storage_errors += 1
                    log_failure(log, "cleanup-orphans", exc, "upload session", as_uuid(row.id))
                    continue
                report.objects_deleted += 1
                cleaned.append(row)
            else:
                plain.append(row)
        outcomes = storage.delete_many([row.upload_key for row in plain])
        for row, error in zip(plain, outcomes, strict=True):
            if error is None:
                report.objects_deleted += 1
                cleaned.append(row)
            else:
                report.storage_errors += 1
                log_failure(log, "cleanup-orphans", error, "upload session", as_uuid(row.id))


def _delete_rows(app: AppContext, rows: list[Any], report: CleanupReport) -> None:
    """Delete the sessions (and their never-uploaded staged assets) in one transaction."""
    if not rows:
        return
    staged = [r.asset_id for r in rows if r.asset_state == "staged"]
    with app.db.transaction() as s:
        conn = s.connection()  # DML straight on the connection: its result has a rowcount
        dialect = conn.dialect.name
        conn.execute(delete(UploadSession).where(
            raw_ids_match(UploadSession.id, [r.id for r in rows], dialect)))
        if staged:
            gone = conn.execute(delete(Asset).where(raw_ids_match(Asset.id, staged, dialect),
                                                 Asset.state == "staged"))
            report.assets_deleted += gone.rowcount
    report.sessions_deleted += len(rows)


def handle(app: AppContext, job: JobContext) -> None:
    """Job handler for ``rindle.maintenance.cleanup_orphans`` (args: ``dry_run``)."""
    dry_run = bool(job.args.get("dry_run", True))
    report = cleanup_orphans(app, dry_run=dry_run, progress=False)
    app.telemetry.emit("rindle.cleanup.run",
                       {"sessions_deleted": report.sessions_deleted,
                        "objects_deleted": report.objects_deleted,
                        "errors": report.storage_errors},
                       {"profile": "unknown", "adapter": "unknown", "worker": "cleanup_orphans",
                        "dry_run": dry_run})
    if report.storage_errors:
        from rindle.jobs import Retry

        raise Retry(f"{report.storage_errors} storage deletion(s) failed")
