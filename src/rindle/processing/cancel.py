"""Cancelling an asset's variant processing (``app.cancel_processing``).

One transaction, with the asset's variant rows locked first and the asset row after (the
order a worker takes them in, so the two never deadlock): every live
``rindle.process_variant`` job of the asset (available, retryable or executing) becomes
``cancelled``; every variant that is planned, queued or processing, or failed with its
retry pending, moves to ``cancelled`` through the variant FSM; open processing runs close
as failed (``cancelled``); the asset's aggregate state is recomputed (a cancelled variant
makes it ``degraded``). Telemetry goes out after commit.

A job already executing sees the cancellation at its two checkpoints and never brings
the variant back: before rendering, its job row is no longer ``executing`` (the handler
stops with :class:`~rindle.jobs.Cancel`); after rendering, the variant is no longer
``processing``, so the guarded ``processing -> ready`` write does not happen, and the object
such a run already stored is deleted once that run's transaction commits (no variant row
points at it). ``app.requeue_variants`` starts cancelled variants again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from rindle.domain import aggregate
from rindle.domain.fsm import variant as variant_fsm
from rindle.domain.models import LIVE_JOB_STATES, Asset, Job, ProcessingRun, Variant, utcnow
from rindle.errors import NotFound
from rindle.ids import parse_id
from rindle.jobs.kinds import PROCESS_VARIANT, process_unique_key

if TYPE_CHECKING:
    from rindle.context import AppContext

__all__ = ["CANCELLED_REASON", "CancelledProcessing", "cancel_processing"]

#: ``error_reason`` of a cancelled variant and its closed run, and ``last_error`` of its job.
CANCELLED_REASON = "cancelled"

#: Variant states that are cancelled whatever their job's state.
_ALWAYS = ("planned", "queued", "processing")


@dataclass(frozen=True)
class CancelledProcessing:
    """What :func:`cancel_processing` did."""

    asset_id: uuid.UUID
    #: The variants moved to ``cancelled``, in name order.
    variants: tuple[str, ...]
    #: How many live process jobs were cancelled (waiting and executing ones).
    jobs: int


def cancel_processing(app: AppContext, asset_id: uuid.UUID | str) -> CancelledProcessing:
    """Stop all variant processing of ``asset_id`` (see the module docstring).

    Idempotent: a second call finds nothing live and reports no variants and no jobs.
    Raises :class:`~rindle.errors.NotFound` when ``asset_id`` is not a UUID or names no
    asset.
    """
    aid = parse_id(asset_id, "asset")
    tel = app.telemetry
    with app.db.transaction() as s:
        profile = s.scalar(select(Asset.profile).where(Asset.id == aid))
        if profile is None:
            raise NotFound("asset", asset_id)
        # FOR UPDATE (PostgreSQL): wait for a worker's open write and read what it wrote
        variants = list(s.execute(select(Variant.id, Variant.name, Variant.state)
                                  .where(Variant.asset_id == aid).order_by(Variant.name)
                                  .with_for_update()))
        keys = {process_unique_key(aid, v.name): v.name for v in variants}
        now = app.jobs.clock()
        live = s.execute(update(Job).where(
            Job.kind == PROCESS_VARIANT, Job.unique_key.in_(list(keys)),
            Job.state.in_(LIVE_JOB_STATES),
        ).values(state="cancelled", finished_at=now, updated_at=now,
                 last_error=CANCELLED_REASON).returning(Job.unique_key)
            .execution_options(synchronize_session=False)).scalars().all()
        pending = {keys[k] for k in live if k is not None}
        moved: list[str] = []
        for state in (*_ALWAYS, "failed"):
            picked = [v for v in variants if v.state == state
                      and (state in _ALWAYS or v.name in pending)]
            done = set(variant_fsm.transition_many(
                s, [v.id for v in picked], state, "cancelled", telemetry=tel,
                profile=profile, values={"error_reason": CANCELLED_REASON}))
            moved += [v.name for v in picked if v.id in done]
        s.execute(update(ProcessingRun).where(
            ProcessingRun.asset_id == aid, ProcessingRun.state == "processing",
        ).values(state="failed", finished_at=utcnow(), error_reason=CANCELLED_REASON)
            .execution_options(synchronize_session=False))
        if moved:
            aggregate.recompute(s, aid, telemetry=tel)
    result = CancelledProcessing(aid, tuple(sorted(moved)), len(live))
    app.db.when_committed(lambda: tel.emit(
        "rindle.asset.processing_cancelled",
        {"variants": len(result.variants), "jobs": result.jobs}, {"profile": profile}))
    return result
