"""Purge: delete an unattached asset's objects from storage, then its rows.

Storage goes first and a storage failure fails the job (it retries), so a row is never
deleted while its objects may still exist. Idempotent: a second run finds nothing to do.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select

from rindle.domain.models import Asset, Attachment, Variant
from rindle.errors import UnknownProfile

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.jobs import JobContext

__all__ = ["purge_asset"]


def handle(app: AppContext, job: JobContext) -> None:
    """Job handler for ``rindle.purge``."""
    purge_asset(app, uuid.UUID(job.args["asset_id"]))


def purge_asset(app: AppContext, asset_id: uuid.UUID) -> bool:
    """Delete the asset's stored objects and rows unless something still attaches it.

    Returns True when the asset was purged, False when it was kept (still attached) or
    was already gone.
    """
    with app.db.sessionmaker() as s:
        asset = s.get(Asset, asset_id)
        if asset is None:
            return False
        attached = s.scalar(select(func.count()).select_from(Attachment)
                            .where(Attachment.asset_id == asset_id))
        if attached:
            return False
        keys = [k for k in s.scalars(select(Variant.storage_key)
                                     .where(Variant.asset_id == asset_id)) if k]
        profile_name, original = asset.profile, asset.storage_key
    try:
        storage = app.storage_for(profile_name)
    except UnknownProfile:
        storage = app.storage("default")
    for key in [*keys, original]:
        storage.delete(key)  # idempotent; a failure raises and the job retries
    with app.db.transaction() as s:
        still = s.scalar(select(func.count()).select_from(Attachment)
                         .where(Attachment.asset_id == asset_id))
        if still:  # re-attached while we deleted: keep the row so an operator can see it
            return False
        s.execute(delete(Asset).where(Asset.id == asset_id))
    app.telemetry.emit("rindle.asset.purged", {"objects_deleted": len(keys) + 1},
                       {"profile": profile_name})
    return True
