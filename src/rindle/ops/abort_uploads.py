"""``abort-incomplete-uploads``: expire direct-upload sessions whose time ran out.

Selected: sessions past ``expires_at`` in ``initialized``, ``signed``, ``uploading`` or
``resuming``. A session whose write lease (``locked_until``) is still held by the app's
clock (a tus final concatenation reading a partial upload's bytes, a termination, a leased
chunk write) is not touched: it is counted ``sessions_busy`` and tried again next run. A
tus session is taken over before its bytes are touched: the sweep takes its lease with a
guarded UPDATE, matched only while no lease is held (none, or one that has ended: a
process that died holding it) and the session is still in the state read; when it
matches nothing (a concatenation took the lease after the read, or the session moved on)
the session is counted busy and left as it is. A local tus upload's part file is then
removed and the session expired under the part file's lock; a chunk being written holds
it, and the session is counted busy too. The expiry commit clears the lease.

Multipart uploads are aborted, resumable sessions cancelled and tus uploads' bytes (a part
file, or a multipart upload and its buffered tail) removed at the backend first (a failure
is counted, the sweep's lease released and the session retried next run; a resumable
session's URI is forgotten only once cancelled). Sessions then move to ``expired`` through
the FSM; ``cleanup-orphans`` later removes their staged objects and rows.

Unlike the reference, expired ``initialized`` presigned sessions are expired too: a client
that never uploaded leaves nothing in storage, but the session and its staged asset would
otherwise stay forever.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from rindle.domain.fsm import upload_session as session_fsm
from rindle.domain.models import Asset, UploadSession
from rindle.errors import InvalidTransition, UploadRejected
from rindle.ops.batches import DEFAULT_BATCH, walk_states
from rindle.ops.progress import Progress
from rindle.ops.report import Report, log_failure
from rindle.telemetry import Telemetry
from rindle.upload import tus, tus_backing

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.jobs import JobContext

__all__ = ["AbortReport", "abort_incomplete_uploads"]

log = logging.getLogger(__name__)

OPEN_STATES = ("initialized", "signed", "uploading", "resuming")


@dataclass
class AbortReport(Report):
    """Counters of one ``abort-incomplete-uploads`` pass."""

    sessions_found: int = 0
    sessions_aborted: int = 0
    sessions_busy: int = 0
    abort_errors: int = 0
    multipart_aborts: int = 0
    resumable_aborts: int = 0
    tus_aborts: int = 0
    presigned_put_aborts: int = 0
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.abort_errors else 0


def abort_incomplete_uploads(app: AppContext, *, dry_run: bool = False,
                             batch_size: int = DEFAULT_BATCH,
                             progress: bool | None = None) -> AbortReport:
    """Expire every timed-out open session; returns the counters.

    A session whose write lease is held (``locked_until`` after ``app.clock()``, read
    once per run) is counted ``sessions_busy`` and left as it is. With ``dry_run`` only
    ``sessions_found`` is counted: no backend is called and no session changes.
    """
    report = AbortReport(dry_run=dry_run)
    now = app.clock()
    stmt = (select(UploadSession.id, UploadSession.state, UploadSession.upload_strategy,
                   UploadSession.upload_key, UploadSession.multipart_upload_id,
                   UploadSession.session_uri, UploadSession.protocol_state,
                   UploadSession.locked_until, Asset.profile)
            .join(Asset, Asset.id == UploadSession.asset_id)
            .where(UploadSession.expires_at < now))
    bar = Progress("abort-incomplete-uploads", enabled=progress)
    for rows in walk_states(app.db.engine.connect, stmt, UploadSession.state, OPEN_STATES,
                            UploadSession.id, batch_size=batch_size):
        for row in rows:
            report.sessions_found += 1
            if dry_run:
                continue
            if row.locked_until is not None and row.locked_until > now:
                report.sessions_busy += 1
                continue
            if row.upload_strategy == "tus" and not tus.take_lease(app, row.id, now,
                                                                   state=row.state):
                report.sessions_busy += 1  # leased (or moved on) since it was read
                continue
            if row.upload_strategy == "multipart" and row.multipart_upload_id:
                try:
                    app.storage_for(row.profile).abort_multipart(row.upload_key,
                                                                 row.multipart_upload_id)
                except Exception as exc:
                    report.abort_errors += 1
                    log_failure(log, "abort-incomplete-uploads", exc, "upload session", row.id)
                    continue
            with contextlib.ExitStack() as held:
                if row.upload_strategy == "tus":
                    try:  # a local part file is removed under its lock, as termination does
                        storage = app.storage_for(row.profile)
                        held.enter_context(tus_backing.removal_lock(storage, row))
                        # the part file, or the multipart upload and its buffered tail
                        tus_backing.discard(storage, row)
                    except UploadRejected:
                        tus.release_lease(app, row.id)
                        report.sessions_busy += 1  # a chunk is being written right now
                        continue
                    except Exception as exc:
                        tus.release_lease(app, row.id)
                        report.abort_errors += 1
                        log_failure(log, "abort-incomplete-uploads", exc, "upload session",
                                    row.id)
                        continue
                if row.upload_strategy == "resumable" and row.session_uri:
                    try:  # the backend session first: its URI is forgotten once cancelled
                        app.storage_for(row.profile).cancel_resumable_upload(
                            row.upload_key, row.session_uri)
                    except Exception as exc:
                        report.abort_errors += 1
                        log_failure(log, "abort-incomplete-uploads", exc, "upload session",
                                    row.id)
                        continue
                try:
                    with app.db.transaction() as s:
                        session_fsm.transition(s, row.id, row.state, "expired",
                                               telemetry=app.telemetry, profile=row.profile,
                                               values={"session_uri": None,
                                                       "locked_until": None})
                except InvalidTransition:
                    if row.upload_strategy == "tus":
                        tus.release_lease(app, row.id)
                    continue  # moved on meanwhile (completed or aborted): nothing to expire
            report.sessions_aborted += 1
            counter = {"multipart": "multipart_aborts", "resumable": "resumable_aborts",
                       "tus": "tus_aborts"}.get(
                row.upload_strategy, "presigned_put_aborts")
            setattr(report, counter, getattr(report, counter) + 1)
        bar.advance(len(rows), aborted=report.sessions_aborted)
    bar.close()
    return report


def _emit(telemetry: Telemetry, report: AbortReport, *, worker: str) -> None:
    telemetry.emit("rindle.cleanup.run",
                   {"sessions_aborted": report.sessions_aborted,
                    "resumable_aborts": report.resumable_aborts,
                    "errors": report.abort_errors},
                   {"profile": "unknown", "adapter": "unknown", "worker": worker})


def handle(app: AppContext, job: JobContext) -> None:
    """Job handler for ``rindle.maintenance.abort_incomplete_uploads``."""
    report = abort_incomplete_uploads(app, progress=False)
    _emit(app.telemetry, report, worker="abort_incomplete_uploads")
    if report.abort_errors:
        from rindle.jobs import Retry

        raise Retry(f"{report.abort_errors} backend abort(s) failed")
