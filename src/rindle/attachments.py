"""Attaching and detaching assets: the service that changes which owner's slot holds what.

Replacing or detaching the last attachment of an asset marks it ``deleted`` and queues
its purge in the same transaction, so there is never a deleted asset without a purge.
The owner type and the rule of which assets can be attached live in
:mod:`rindle.domain.attachments`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from rindle.domain.attachments import ATTACHABLE, Owner, to_owner
from rindle.domain.fsm import asset as asset_fsm
from rindle.domain.models import Asset, Attachment
from rindle.errors import InvalidTransition, NotFound
from rindle.ids import parse_id
from rindle.jobs.kinds import PURGE, purge_unique_key

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from rindle.context import AppContext

__all__ = ["attach", "detach", "release"]


def release(app: AppContext, s: Session, asset_id: uuid.UUID) -> bool:
    """If nothing else attaches ``asset_id``, mark it deleted and queue its purge in ``s``.

    Returns True when the purge was queued; False when the asset is still attached
    elsewhere, is gone, or cannot move to ``deleted``.
    """
    others = s.scalar(select(func.count()).select_from(Attachment)
                      .where(Attachment.asset_id == asset_id))
    if others:
        return False
    asset = s.get(Asset, asset_id)
    if asset is None:
        return False
    if asset.state != "deleted":
        try:
            asset_fsm.transition(s, asset_id, asset.state, "deleted",
                                 telemetry=app.telemetry, profile=asset.profile)
        except InvalidTransition:
            return False
    app.jobs.enqueue(s, PURGE, {"asset_id": str(asset_id)}, unique_key=purge_unique_key(asset_id))
    return True


def attach(app: AppContext, asset_id: uuid.UUID | str, owner: Owner | tuple[str, object],
           slot: str) -> Attachment:
    """Put ``asset_id`` in ``owner``'s ``slot``, replacing (and releasing) what was there."""
    who = to_owner(owner)
    aid = parse_id(asset_id, "asset")
    for attempt in range(3):
        try:
            with app.db.transaction() as s:
                asset = s.get(Asset, aid)
                if asset is None or asset.state not in ATTACHABLE:
                    if asset is None:
                        raise NotFound("asset", aid)
                    raise InvalidTransition("asset", asset.state, "attached",
                                            detail="only live assets can be attached")
                current = s.execute(select(Attachment).where(
                    Attachment.owner_type == who.type, Attachment.owner_id == who.id,
                    Attachment.slot == slot)).scalar_one_or_none()
                if current is not None and current.asset_id == aid:
                    return current
                old_asset = current.asset_id if current is not None else None
                if current is not None:
                    s.delete(current)
                    s.flush()
                row = Attachment(asset_id=aid, owner_type=who.type, owner_id=who.id, slot=slot)
                s.add(row)
                s.flush()
                if old_asset is not None:
                    release(app, s, old_asset)
                return row
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def detach(app: AppContext, owner: Owner | tuple[str, object], slot: str) -> bool:
    """Empty ``owner``'s ``slot``; returns False when it was already empty."""
    who = to_owner(owner)
    with app.db.transaction() as s:
        current = s.execute(select(Attachment).where(
            Attachment.owner_type == who.type, Attachment.owner_id == who.id,
            Attachment.slot == slot)).scalar_one_or_none()
        if current is None:
            return False
        asset_id = current.asset_id
        s.delete(current)
        s.flush()
        release(app, s, asset_id)
        return True
