"""``requeue ASSET_ID [--variant NAME]...``: retry an asset's given-up promotion, or its
failed or cancelled variants.

Enqueue-only: an asset still before ``available`` (validating, analyzing, promoting) whose
promotion job gave up gets a fresh promotion job (the given-up job's arguments, its unique
key, so a live one is never duplicated; promotion resumes from the state the asset
reached). Each failed/cancelled variant moves to ``queued`` with its unique process job in
one transaction; ready, queued, processing, stale and missing siblings are untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from rindle.domain.fsm import variant as variant_fsm
from rindle.domain.models import Asset, Job, Variant
from rindle.errors import InvalidTransition, NotFound, UsageError
from rindle.ids import parse_id
from rindle.jobs.kinds import PROCESS_VARIANT, PROMOTE, process_unique_key, promote_unique_key
from rindle.ops.report import Report, repair_span

if TYPE_CHECKING:
    from rindle.context import AppContext

__all__ = ["RequeueReport", "requeue_variants"]

REQUEUEABLE = ("failed", "cancelled")
#: Asset states a promotion job carries forward (``promote_asset`` resumes from each).
PROMOTABLE = ("validating", "analyzing", "promoting")


@dataclass
class RequeueReport(Report):
    """Which variants were requeued, and which were left alone."""

    asset_id: str = ""
    #: ``requeued`` (a fresh promotion job), ``already_queued`` (a live one exists),
    #: ``no_job`` (no given-up promotion job on record) or ``""`` (past promotion).
    promotion: str = ""
    requeued: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: int = 0


def requeue_variants(app: AppContext, asset_id: uuid.UUID | str,
                     variant_names: Sequence[str] | None = None) -> RequeueReport:
    """Re-run the asset's promotion when it stopped before ``available``, and requeue its
    failed/cancelled variants (optionally only those named).

    Idempotent: a second call finds the promotion job live (``already_queued``) or the asset
    past promotion, and variants no longer failed.
    """
    aid = parse_id(asset_id, "asset")
    report = RequeueReport(asset_id=str(aid))
    with repair_span(app.telemetry, "requeue_variants", scope="asset", dry_run=False,
                     when_committed=app.db.when_committed,
                     if_rolled_back=app.db.if_rolled_back) as span:
        with app.db.transaction() as s:
            asset = s.get(Asset, aid)
            if asset is None:
                raise NotFound("asset", asset_id)
            if asset.state in PROMOTABLE:
                report.promotion = _requeue_promotion(app, s, aid)
            rows = {v.name: v for v in s.scalars(select(Variant).where(Variant.asset_id == aid))}
            wanted = list(variant_names) if variant_names else sorted(rows)
            unknown = sorted(set(wanted) - set(rows))
            if unknown:
                raise UsageError(f"unknown variant(s) {', '.join(unknown)} for asset {aid}; "
                                 f"it has: {', '.join(sorted(rows)) or 'none'}",
                                 code="unknown_variant")
            for name in wanted:
                row = rows[name]
                if row.state not in REQUEUEABLE:
                    report.skipped[name] = row.state
                    continue
                try:
                    variant_fsm.transition(s, row.id, row.state, "queued",
                                           telemetry=app.telemetry, profile=asset.profile)
                except InvalidTransition:
                    report.skipped[name] = "moved"
                    continue
                app.jobs.enqueue(s, PROCESS_VARIANT, {"asset_id": str(aid), "variant": name},
                                 unique_key=process_unique_key(aid, name))
                report.requeued.append(name)
        span["result"] = ("ok" if report.requeued or report.promotion == "requeued"
                          else "noop")
    return report


def _requeue_promotion(app: AppContext, session: Session, aid: uuid.UUID) -> str:
    """Enqueue a fresh promotion job with the latest promotion job's arguments (a direct
    upload's ``direct``/``max_bytes`` included) under its unique key; says what happened."""
    key = promote_unique_key(aid)
    last = session.scalars(select(Job).where(Job.unique_key == key, Job.kind == PROMOTE)
                           .order_by(Job.id.desc()).limit(1)).first()
    if last is None or last.state in ("completed", "cancelled"):
        return "no_job"  # nothing gave up: promotion finished or refused the asset
    if last.state != "discarded":  # available, executing, retryable: on its way
        return "already_queued"
    result = app.jobs.enqueue(session, PROMOTE, dict(last.args), unique_key=key)
    return "already_queued" if result.skipped else "requeued"
