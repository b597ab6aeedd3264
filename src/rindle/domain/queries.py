"""Read queries the services share (no writes, no jobs).

The :class:`rindle.Rindle` facade answers the same questions (``app.get_asset``) by calling
these, so a service asks the query instead of going back through the facade.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy.orm import selectinload

from rindle.domain.models import Asset
from rindle.errors import NotFound
from rindle.ids import parse_id

if TYPE_CHECKING:
    from rindle.database import Database

__all__ = ["get_asset"]


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
