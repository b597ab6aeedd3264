"""``regenerate-variants``: re-render variants whose recipe changed or whose object is gone.

Pass 1 flips ``ready`` variants whose ``recipe_digest`` differs from the profile's current
digest to ``stale``. Pass 2 enqueues one unique process job per ``stale`` or ``missing``
variant and moves it to ``queued`` in the same transaction, so a rerun never duplicates.
Both passes walk keyset batches; nothing but ids and digests is held in memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from rindle.domain.fsm import variant as variant_fsm
from rindle.domain.models import Asset, Variant
from rindle.jobs.kinds import PROCESS_VARIANT, process_unique_key
from rindle.ops.batches import DEFAULT_BATCH, keyset_batches
from rindle.ops.progress import Progress
from rindle.ops.report import Report, log_failure, repair_span
from rindle.ops.scope import profiles_in_scope, variant_names

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.jobs import JobContext

__all__ = ["RegenerateReport", "regenerate_variants"]

log = logging.getLogger(__name__)


@dataclass
class RegenerateReport(Report):
    """Counters of one ``regenerate-variants`` pass."""

    marked_stale: int = 0
    enqueued: int = 0
    skipped: int = 0
    errors: int = 0


def regenerate_variants(app: AppContext, *, profile: str | None = None,
                        variant: str | None = None, batch_size: int = DEFAULT_BATCH,
                        progress: bool | None = None) -> RegenerateReport:
    """Mark drifted variants stale, then enqueue every stale or missing one (enqueue-only).

    An unknown ``profile``, or a ``variant`` no profile in scope declares, raises
    :class:`~rindle.errors.UsageError` before anything is read (see
    :func:`~rindle.ops.scope.profiles_in_scope`).
    """
    report = RegenerateReport()
    scope = "profile" if profile else "all"
    profiles = profiles_in_scope(app, profile, variant)  # unknown names: UsageError, no span
    with repair_span(app.telemetry, "regenerate_variants", scope=scope, dry_run=False,
                     when_committed=app.db.when_committed,
                     if_rolled_back=app.db.if_rolled_back) as span:
        bar = Progress("regenerate-variants", enabled=progress)
        for prof in profiles:
            for name in variant_names(prof, variant):
                digest = prof.recipe_digest(name)
                drifted = (select(Variant.id).join(Asset, Asset.id == Variant.asset_id)
                           .where(Asset.profile == prof.name, Variant.name == name,
                                  Variant.state == "ready", Variant.recipe_digest != digest))
                for rows in keyset_batches(app.db.engine.connect, drifted, Variant.id,
                                           batch_size=batch_size):
                    with app.db.transaction() as s:
                        moved = variant_fsm.transition_many(
                            s, [r.id for r in rows], "ready", "stale",
                            telemetry=app.telemetry, profile=prof.name)
                    report.marked_stale += len(moved)
                    bar.advance(len(rows), stale=report.marked_stale)
                _enqueue_pass(app, prof.name, name, report, batch_size, bar)
        bar.close()
        span["result"] = "partial" if report.errors else "ok"
        span["measurements"] = {"enqueued": report.enqueued, "skipped": report.skipped,
                                "errors": report.errors}
    return report


def _enqueue_pass(app: AppContext, profile: str, name: str, report: RegenerateReport,
                  batch_size: int, bar: Progress) -> None:
    for state in ("stale", "missing"):
        stmt = (select(Variant.id, Variant.asset_id).join(Asset, Asset.id == Variant.asset_id)
                .where(Asset.profile == profile, Variant.name == name, Variant.state == state))
        for rows in keyset_batches(app.db.engine.connect, stmt, Variant.id,
                                   batch_size=batch_size):
            try:
                with app.db.transaction() as s:
                    moved = set(variant_fsm.transition_many(
                        s, [r.id for r in rows], state, "queued", telemetry=app.telemetry,
                        profile=profile))
                    items = [({"asset_id": str(r.asset_id), "variant": name},
                              process_unique_key(r.asset_id, name))
                             for r in rows if r.id in moved]
                    made = app.jobs.enqueue_unique_batch(s, PROCESS_VARIANT, items)
            except Exception as exc:
                report.errors += len(rows)
                log_failure(log, "regenerate-variants", exc,
                            f"enqueueing {len(rows)} variant(s) from", rows[0].id)
                continue
            report.enqueued += made
            report.skipped += len(rows) - made
            bar.advance(len(rows), enqueued=report.enqueued)


def handle(app: AppContext, job: JobContext) -> None:
    """Job handler for ``rindle.maintenance.regenerate_variants``."""
    args: dict[str, Any] = job.args
    regenerate_variants(app, profile=args.get("profile"), variant=args.get("variant"),
                        progress=False)
