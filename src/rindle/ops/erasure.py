"""``erase-owners``: remove everything some owners hold (GDPR-style erasure).

Preview (the default) reports what would happen and changes nothing. Execute detaches
each owner's attachments; an asset no one else holds is marked deleted and its purge is
queued in the same transaction; shared assets are kept and reported with how many other
attachments survive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from rindle.attachments import release
from rindle.domain.attachments import Owner, to_owner
from rindle.domain.models import Attachment, Job
from rindle.errors import UsageError
from rindle.jobs.kinds import purge_unique_key
from rindle.ops.report import Report, repair_span

if TYPE_CHECKING:
    from rindle.context import AppContext

__all__ = ["MAX_OWNERS", "ErasureReport", "erase_owners"]

MAX_OWNERS = 100


@dataclass
class ErasureReport(Report):
    """What an erasure did (or, in preview, would do)."""

    mode: str = "preview"
    owners: int = 0
    detached: list[dict[str, str]] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    retained: list[dict[str, Any]] = field(default_factory=list)
    purge_enqueued: int = 0
    purge_already_queued: int = 0
    errors: int = 0


def erase_owners(app: AppContext, owners: Iterable[Owner | tuple[str, object]], *,
                 dry_run: bool = True, max_owners: int = MAX_OWNERS) -> ErasureReport:
    """Preview or execute the erasure of ``owners`` (deduplicated, at most ``max_owners``)."""
    unique: list[Owner] = list(dict.fromkeys(to_owner(o) for o in owners))
    if not unique:
        raise UsageError("no owners given (empty_batch)")
    if len(unique) > max_owners:
        raise UsageError(f"{len(unique)} owners is more than max_owners={max_owners} "
                         "(batch_too_large); split the file")
    report = ErasureReport(mode="preview" if dry_run else "execute", owners=len(unique))
    with repair_span(app.telemetry, "erase_owners", scope="owner", dry_run=dry_run,
                     when_committed=app.db.when_committed,
                     if_rolled_back=app.db.if_rolled_back) as span:
        with app.db.transaction() as s:
            for owner in unique:  # preview only reads; execute writes in this one transaction
                _erase_one(app, s, owner, report, dry_run=dry_run)
        span["result"] = "ok"
    return report


def _erase_one(app: AppContext, s: Any, owner: Owner, report: ErasureReport, *,
               dry_run: bool) -> None:
    rows: Sequence[Attachment] = s.scalars(select(Attachment).where(
        Attachment.owner_type == owner.type, Attachment.owner_id == owner.id)).all()
    touched: set[Any] = set()
    for row in rows:
        report.detached.append({"owner": f"{owner.type}:{owner.id}", "slot": row.slot,
                                "asset_id": str(row.asset_id)})
        touched.add(row.asset_id)
    if not dry_run and rows:
        s.execute(delete(Attachment).where(Attachment.id.in_([r.id for r in rows])))
        s.flush()
    for asset_id in sorted(touched, key=str):
        survivors = s.scalar(select(func.count()).select_from(Attachment).where(
            Attachment.asset_id == asset_id, ~((Attachment.owner_type == owner.type)
                                               & (Attachment.owner_id == owner.id)))) or 0
        if survivors:
            report.retained.append({"asset_id": str(asset_id), "survivors": survivors})
            continue
        report.purged.append(str(asset_id))
        if dry_run:
            continue
        queued = s.scalar(select(func.count()).select_from(Job).where(
            Job.unique_key == purge_unique_key(asset_id),
            Job.state.in_(("available", "executing", "retryable")))) or 0
        if queued:
            report.purge_already_queued += 1
        elif release(app, s, asset_id):
            report.purge_enqueued += 1
