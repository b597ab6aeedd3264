"""``requeue ASSET_ID [--variant NAME]...``: retry an asset's failed or cancelled variants.

Enqueue-only: each failed/cancelled variant moves to ``queued`` with its unique process job
in one transaction; ready, queued, processing, stale and missing siblings are untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select

from rindle.domain.fsm import variant as variant_fsm
from rindle.domain.models import Asset, Variant
from rindle.errors import InvalidTransition, NotFound, UsageError
from rindle.ids import parse_id
from rindle.jobs.kinds import PROCESS_VARIANT, process_unique_key
from rindle.ops.report import Report, repair_span

if TYPE_CHECKING:
    from rindle.context import AppContext

__all__ = ["RequeueReport", "requeue_variants"]

REQUEUEABLE = ("failed", "cancelled")


@dataclass
class RequeueReport(Report):
    """Which variants were requeued, and which were left alone."""

    asset_id: str = ""
    requeued: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: int = 0


def requeue_variants(app: AppContext, asset_id: uuid.UUID | str,
                     variant_names: Sequence[str] | None = None) -> RequeueReport:
    """Requeue the asset's failed/cancelled variants (optionally only those named)."""
    aid = parse_id(asset_id, "asset")
    report = RequeueReport(asset_id=str(aid))
    with repair_span(app.telemetry, "requeue_variants", scope="asset", dry_run=False,
                     when_committed=app.db.when_committed,
                     if_rolled_back=app.db.if_rolled_back) as span:
        with app.db.transaction() as s:
            asset = s.get(Asset, aid)
            if asset is None:
                raise NotFound("asset", asset_id)
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
        span["result"] = "ok" if report.requeued else "noop"
    return report
