"""Rendering one variant: queued -> processing -> ready (or failed / cancelled).

Storage writes are deterministic (the key carries the recipe digest), so a retried or
taken-over job overwrites the same object and nothing is stored twice. The final write
re-checks, under a row lock, that the variant still wants this digest: a stale job never
overwrites a newer result. The transaction that marks a variant ready also runs the app's
``on_variant_ready`` callbacks, so what they enqueue commits with the ready state.

A run whose job was cancelled (``app.cancel_processing``) stops: before rendering, the job
row is no longer ``executing``; after it, the variant is no longer ``processing``.
"""

from __future__ import annotations

import functools
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from rindle.database import after_commit
from rindle.domain import aggregate
from rindle.domain.fsm import variant as variant_fsm
from rindle.domain.models import Asset, Job, ProcessingRun, Variant, utcnow
from rindle.errors import InvalidTransition, ObjectNotFound, OriginalChanged, RindleError
from rindle.jobs.outcomes import Cancel
from rindle.processing.cancel import CANCELLED_REASON
from rindle.processing.original import ORIGINAL_CHANGED, fetch_original, quarantine_changed
from rindle.processing.rundir import run_directory
from rindle.upload.keys import variant_key

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from rindle.context import AppContext
    from rindle.hooks import Rendition
    from rindle.jobs import JobContext

__all__ = ["process_variant"]

_STARTABLE = ("planned", "stale", "missing", "failed", "cancelled")


def handle(app: AppContext, job: JobContext) -> None:
    """Job handler for ``rindle.process_variant``."""
    process_variant(app, uuid.UUID(job.args["asset_id"]), job.args["variant"],
                    attempt=job.attempt, worker=job.worker_id or "inline", job_id=job.id)


def _lock_variant(s: Session, asset_id: uuid.UUID, name: str) -> Variant | None:
    stmt = select(Variant).where(Variant.asset_id == asset_id, Variant.name == name)
    if s.bind is not None and s.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return s.execute(stmt).scalar_one_or_none()


def _start(app: AppContext, asset: Asset, name: str, digest: str, attempt: int, worker: str,
           job_id: uuid.UUID | None = None) -> uuid.UUID | None:
    """Move the variant to ``processing`` and open a run row; None when already ready.

    Raises :class:`Cancel` when the variant is gone or the job ``job_id`` is no longer
    ``executing`` (``app.cancel_processing`` cancelled it), checked under the variant's lock.
    """
    tel, profile = app.telemetry, asset.profile
    with app.db.transaction() as s:
        row = _lock_variant(s, asset.id, name)
        if row is None:
            raise Cancel("variant_source_not_found")
        if job_id is not None and s.scalar(
                select(Job.state).where(Job.id == job_id)) != "executing":
            raise Cancel(CANCELLED_REASON)
        if row.state == "ready" and row.recipe_digest == digest:
            return None
        if row.state == "processing":  # a previous worker died mid-run (lease expired)
            variant_fsm.transition(s, row.id, "processing", "failed", telemetry=tel,
                                   profile=profile, values={"error_reason": "worker_lost"})
            s.query(ProcessingRun).filter(
                ProcessingRun.asset_id == asset.id, ProcessingRun.variant_name == name,
                ProcessingRun.state == "processing",
            ).update({"state": "failed", "error_reason": "worker_lost",
                      "finished_at": utcnow()}, synchronize_session=False)
            current = "failed"
        else:
            current = row.state
        if current == "ready":  # ready under an older digest: regenerate it
            variant_fsm.transition(s, row.id, "ready", "stale", telemetry=tel, profile=profile)
            current = "stale"
        if current in _STARTABLE:
            variant_fsm.transition(s, row.id, current, "queued", telemetry=tel, profile=profile)
            current = "queued"
        values: dict[str, Any] = {"error_reason": None}
        if row.recipe_digest != digest:
            values["recipe_digest"] = digest
        variant_fsm.transition(s, row.id, current, "processing", telemetry=tel, profile=profile,
                               values=values)
        run = ProcessingRun(asset_id=asset.id, variant_name=name, worker=worker,
                            state="processing", attempt=attempt, started_at=utcnow())
        s.add(run)
        s.flush()
        aggregate.recompute(s, asset.id, telemetry=tel)
        return run.id


def process_variant(app: AppContext, asset_id: uuid.UUID, name: str, *, attempt: int = 1,
                    worker: str = "inline", job_id: uuid.UUID | None = None) -> str:
    """Render variant ``name`` of an asset and store it; returns the variant's final state.

    ``job_id`` is the job running it (None: called directly); a job that is no longer
    ``executing`` when the run starts was cancelled, and the run does not start.

    Raises on a failed attempt (the job retries); :class:`Cancel` when there is nothing
    sensible to retry (the asset or variant is gone, or nothing can render the spec).
    """
    with app.db.sessionmaker() as s:
        asset = s.get(Asset, asset_id)
    if asset is None or asset.state in ("deleted", "quarantined"):
        raise Cancel("variant_source_not_found")
    prof = app.profile(asset.profile)
    specs = dict(prof.variant_specs())
    if name not in specs:
        raise Cancel(f"unknown_variant:{name}")
    spec, digest = specs[name], prof.recipe_digest(name)
    run_id = _start(app, asset, name, digest, attempt, worker, job_id)
    if run_id is None:
        return "ready"
    storage = app.storage(prof.storage)
    started = time.perf_counter()
    try:
        with run_directory(app.settings.resolved_tmp_dir, "variant") as run:
            source = run / ("source" + Path(asset.storage_key).suffix)
            try:
                fetch_original(storage, asset, source)
            except ObjectNotFound:
                raise Cancel("variant_source_not_found") from None
            except OriginalChanged:
                quarantine_changed(app.db, asset_id, storage=storage,
                                   tmp_dir=app.settings.resolved_tmp_dir,
                                   telemetry=app.telemetry, profile=prof.name)
                raise Cancel(ORIGINAL_CHANGED) from None
            workdir = run / "out"
            workdir.mkdir()
            result = app.hooks.transcode(source, spec, workdir, prof.max_pixels)
            if result is None:
                raise Cancel(f"unsupported_recipe:{spec.kind}")
            key = variant_key(prof.name, asset_id, name, digest, result.extension)
            info = storage.put(key, result.path, content_type=result.content_type)
        outcome = _finish(app, asset, name, digest, run_id, key, info.size, result)
    except Cancel as exc:
        _fail(app, asset, name, run_id, str(exc), final_state="cancelled")
        raise
    except Exception as exc:
        # a rindle error leads with its stable code (ffmpeg_failed, output_too_large, ...)
        why = (f"{exc.code}: {exc.message}" if isinstance(exc, RindleError)
               else f"{type(exc).__name__}: {exc}")
        _fail(app, asset, name, run_id, why, final_state="failed")
        raise
    app.telemetry.emit("rindle.variant.processed",
                       {"duration_ms": (time.perf_counter() - started) * 1000},
                       {"profile": prof.name, "variant": name, "outcome": outcome})
    return outcome


def _finish(app: AppContext, asset: Asset, name: str, digest: str, run_id: uuid.UUID, key: str,
            size: int, result: Rendition) -> str:
    tel = app.telemetry
    with app.db.transaction() as s:
        row = _lock_variant(s, asset.id, name)
        run = s.get(ProcessingRun, run_id)
        if row is None or row.state != "processing" or row.recipe_digest != digest:
            if run is not None and run.state == "processing":
                run.state, run.finished_at, run.error_reason = "failed", utcnow(), "stale_job"
            # The newer owner of this row will write (or has written) its own result.
            if _orphaned(row, key, digest):  # nothing will ever point at what we stored
                storage = app.storage(app.profile(asset.profile).storage)
                after_commit(s, functools.partial(storage.delete, key))
            return row.state if row is not None else "gone"
        old_key = row.storage_key
        variant_fsm.transition(s, row.id, "processing", "ready", telemetry=tel,
                               profile=asset.profile, values={
                                   "storage_key": key, "byte_size": size,
                                   "content_type": result.content_type,
                                   "width": result.width, "height": result.height,
                                   "duration_ms": result.duration_ms,
                                   "generated_at": utcnow(), "error_reason": None})
        if run is not None:
            run.state, run.finished_at = "succeeded", utcnow()
        aggregate.recompute(s, asset.id, telemetry=tel)
        for callback in app.on_variant_ready:  # e.g. streaming's server-push ingest job
            callback(app, s, asset, name, digest)
    if old_key is not None and old_key != key:
        storage = app.storage(app.profile(asset.profile).storage)
        app.db.when_committed(functools.partial(storage.delete, old_key))  # old digest
    return "ready"


def _orphaned(row: Variant | None, key: str, digest: str) -> bool:
    """Whether the object a run stored at ``key`` is left to nobody once its guarded
    ``processing -> ready`` write did not happen: the variant is gone, cancelled
    (``app.cancel_processing``) or now wants another recipe (its key differs, as the key
    holds the digest). A run of the same recipe still under way stores the same key, so it
    is never deleted then, nor when the row already points at it."""
    if row is None:
        return True
    if row.storage_key == key:
        return False
    return row.state == "cancelled" or row.recipe_digest != digest


def _fail(app: AppContext, asset: Asset, name: str, run_id: uuid.UUID, reason: str, *,
          final_state: str) -> None:
    with app.db.transaction() as s:
        row = _lock_variant(s, asset.id, name)
        run = s.get(ProcessingRun, run_id)
        if run is not None and run.state == "processing":
            run.state, run.finished_at, run.error_reason = "failed", utcnow(), reason[:2000]
        if row is None or row.state != "processing":
            return
        try:
            variant_fsm.transition(s, row.id, "processing", final_state,
                                   telemetry=app.telemetry, profile=asset.profile,
                                   values={"error_reason": reason[:2000]})
        except InvalidTransition:
            return
        aggregate.recompute(s, asset.id, telemetry=app.telemetry)
