"""``backfill-metadata``: re-run the probe and analyzers for live assets.

Walks ``available``/``ready``/``degraded`` assets in keyset batches; per asset it downloads
the original into a run directory, probes it and merges every ``rindle_analyze`` answer
into ``metadata``. Lifecycle state and variants are never touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from rindle.domain.models import Asset, utcnow
from rindle.errors import OriginalChanged
from rindle.media.mime import sniff
from rindle.ops.batches import DEFAULT_BATCH, walk_states
from rindle.ops.progress import Progress
from rindle.ops.report import Report, log_failure, repair_span
from rindle.ops.scope import profiles_in_scope
from rindle.processing.original import fetch_original, quarantine_changed
from rindle.processing.rundir import run_directory

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.jobs import JobContext

__all__ = ["BackfillReport", "backfill_metadata"]

log = logging.getLogger(__name__)

LIVE = ("available", "ready", "degraded")


@dataclass
class BackfillReport(Report):
    """Counters of one backfill pass."""

    assets_found: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0


def backfill_metadata(app: AppContext, *, profile: str | None = None,
                      batch_size: int = DEFAULT_BATCH, progress: bool | None = None
                      ) -> BackfillReport:
    """Refresh analyzer metadata of every live asset in scope."""
    report = BackfillReport()
    names = [p.name for p in profiles_in_scope(app, profile)]
    bar = Progress("backfill-metadata", enabled=progress)
    scope = "profile" if profile else "all"
    with repair_span(app.telemetry, "backfill_metadata", scope=scope, dry_run=False,
                     when_committed=app.db.when_committed,
                     if_rolled_back=app.db.if_rolled_back) as span:
        for rows in walk_states(app.db.sessionmaker, select(Asset).where(
                Asset.profile.in_(names)), Asset.state, LIVE, Asset.id, batch_size=batch_size):
            for (asset,) in rows:
                report.assets_found += 1
                try:
                    meta = _analyze(app, asset)
                except Exception as exc:
                    report.errors += 1
                    log_failure(log, "backfill-metadata", exc, "asset", asset.id)
                    continue
                if meta == (asset.meta or {}):
                    report.unchanged += 1
                    continue
                with app.db.transaction() as s:
                    s.execute(update(Asset).where(Asset.id == asset.id)
                              .values(meta=meta, updated_at=utcnow()))
                report.updated += 1
            bar.advance(len(rows), updated=report.updated, errors=report.errors)
        bar.close()
        span["result"] = "partial" if report.errors else "ok"
    return report


def _analyze(app: AppContext, asset: Asset) -> dict[str, Any]:
    storage = app.storage_for(asset.profile)
    with run_directory(app.settings.resolved_tmp_dir, "backfill") as run:
        local = run / ("original" + Path(asset.storage_key).suffix)
        try:
            fetch_original(storage, asset, local)
        except OriginalChanged:
            quarantine_changed(app.db, asset.id, storage=storage,
                               tmp_dir=app.settings.resolved_tmp_dir,
                               telemetry=app.telemetry, profile=asset.profile)
            raise
        mime = sniff(local) or asset.content_type or ""
        probe = app.hooks.probe(local, mime)  # None: the analyzers get an empty probe
        meta: dict[str, Any] = dict(asset.meta or {})
        meta.update(app.hooks.analyze(local, asset, probe))
    return meta


def handle(app: AppContext, job: JobContext) -> None:
    """Job handler for ``rindle.maintenance.backfill_metadata``."""
    backfill_metadata(app, profile=job.args.get("profile"), progress=False)
