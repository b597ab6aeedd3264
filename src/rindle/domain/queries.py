"""Read queries the services share (no writes, no jobs).

The :class:`rindle.Rindle` facade answers the same questions (``app.get_asset``) by calling
these, so a service asks the query instead of going back through the facade.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import and_, select
from sqlalchemy.orm import joinedload, selectinload

from rindle.domain.attachments import Owner, check_slot, to_owner
from rindle.domain.models import Asset, Attachment, Variant
from rindle.errors import NotFound, UsageError
from rindle.ids import parse_id

if TYPE_CHECKING:
    from sqlalchemy import Select

    from rindle.database import Database

__all__ = ["SlotValue", "attachment", "attachments", "get_asset", "ready_variants"]

#: What one slot holds in :func:`attachments`: the asset of a single slot, or the assets of
#: a collection slot as a list in position order.
SlotValue = Asset | list[Asset]


def get_asset(db: Database, asset_id: uuid.UUID | str) -> Asset:
    """The asset with its variants loaded (``asset.variants``: name -> Variant).

    Raises :class:`~rindle.errors.NotFound` when ``asset_id`` is not a UUID or names no asset.
    """
    aid = parse_id(asset_id, "asset")
    with db.sessionmaker() as s:
        asset = s.get(Asset, aid, options=[selectinload(Asset.variant_rows)])
        if asset is None:
            raise NotFound("asset", asset_id)
        return asset


def _held(owner: Owner | tuple[str, object]) -> Select[tuple[Attachment]]:
    """The owner's attachment rows with their assets and the assets' variants joined in
    (one statement), in slot then position order."""
    who = to_owner(owner)
    return (select(Attachment)
            .options(joinedload(Attachment.asset, innerjoin=True)
                     .joinedload(Asset.variant_rows))
            .where(Attachment.owner_type == who.type, Attachment.owner_id == who.id)
            .order_by(Attachment.slot, Attachment.position))


def attachment(db: Database, owner: Owner | tuple[str, object], slot: str) -> Asset | None:
    """The asset in ``owner``'s single ``slot`` with its variants loaded, or None when the
    slot is empty. One SQL statement.

    Raises :class:`~rindle.errors.UsageError` (code ``slot_is_collection``) when the slot
    holds a collection: read those with :func:`attachments`; ``invalid_owner`` and
    ``invalid_slot`` as :func:`~rindle.domain.attachments.to_owner` and
    :func:`~rindle.domain.attachments.check_slot` say.
    """
    with db.sessionmaker() as s:
        rows = s.execute(_held(owner).where(Attachment.slot == check_slot(slot))
                         ).unique().scalars().all()
    if not rows:
        return None
    if rows[0].collection:
        raise UsageError(f"slot {slot!r} holds a collection; read it with "
                         "app.attachments(owner)[slot] (a list in position order)",
                         code="slot_is_collection")
    return rows[0].asset


def attachments(db: Database, owner: Owner | tuple[str, object]) -> dict[str, SlotValue]:
    """Everything ``owner`` holds, by slot name (slots in name order), with variants
    loaded; one SQL statement.

    A single slot maps to its :class:`~rindle.domain.models.Asset`; a collection slot to a
    ``list[Asset]`` in position order (never empty: an emptied slot is absent).
    """
    with db.sessionmaker() as s:
        rows = s.execute(_held(owner)).unique().scalars().all()
    out: dict[str, SlotValue] = {}
    lists: dict[str, list[Asset]] = {}
    for row in rows:
        if row.collection:
            out[row.slot] = lists.setdefault(row.slot, [])
            lists[row.slot].append(row.asset)
        else:
            out[row.slot] = row.asset
    return out


def ready_variants(db: Database, asset_id: uuid.UUID | str) -> dict[str, Variant]:
    """The asset's ``ready`` variants by name (name order), in one SQL statement; empty
    when none is ready yet.

    Raises :class:`~rindle.errors.NotFound` when ``asset_id`` is not a UUID or names no
    asset.
    """
    aid = parse_id(asset_id, "asset")
    stmt = (select(Asset.id, Variant)
            .outerjoin(Variant, and_(Variant.asset_id == Asset.id, Variant.state == "ready"))
            .where(Asset.id == aid).order_by(Variant.name))
    with db.sessionmaker() as s:
        rows = s.execute(stmt).all()
    if not rows:
        raise NotFound("asset", asset_id)
    return {v.name: v for _, v in rows if v is not None}
