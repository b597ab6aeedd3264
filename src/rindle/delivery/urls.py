"""Delivery URLs for assets and variants, honouring each profile's delivery policy."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import select

from rindle.domain.models import Asset, Variant
from rindle.errors import AssetNotReady, DeliveryUnsupported, NotFound
from rindle.ids import parse_id
from rindle.media.mime import ACTIVE_CONTENT as ACTIVE_TYPES
from rindle.storage.base import Capability

if TYPE_CHECKING:
    from rindle.context import AppContext

__all__ = ["asset_url"]

#: States before promotion finished: the bytes have not passed the trust gate yet.
_NOT_YET = ("staged", "validating", "analyzing", "promoting")


def asset_url(app: AppContext, asset_id: uuid.UUID | str, variant: str | None = None, *,
              expires_in: int | None = None, disposition: str | None = None) -> str:
    """A URL for the original, or for ``variant`` when it is ready (else the original).

    Signed and expiring unless the profile's delivery is public. The URL carries the
    content type recorded for what it serves (sniffed at promotion or set by the variant's
    processor); HTML, XHTML and SVG are always delivered as ``attachment``.

    Raises :class:`AssetNotReady` (``asset_not_ready``) for an asset that has not passed
    promotion (staged, validating, analyzing, promoting) or failed it (quarantined), and
    :class:`NotFound` for a missing or deleted one.
    """
    aid = parse_id(asset_id, "asset")
    with app.db.sessionmaker() as s:
        asset = s.get(Asset, aid)
        if asset is None or asset.state == "deleted":
            raise NotFound("asset", asset_id)
        if asset.state in _NOT_YET or asset.state == "quarantined":
            raise AssetNotReady(asset_id, asset.state)
        prof = app.profile(asset.profile)
        key, served, content_type = asset.storage_key, "original", asset.content_type
        if variant is not None:
            if variant not in dict(prof.variant_specs()):
                raise NotFound(f"variant of profile {prof.name}", variant)
            row = s.execute(select(Variant).where(Variant.asset_id == aid,
                                                  Variant.name == variant)).scalar_one_or_none()
            if row is not None and row.state == "ready" and row.storage_key:
                key, served, content_type = row.storage_key, "variant", row.content_type
    if content_type in ACTIVE_TYPES:
        disposition = "attachment"
    storage = app.storage(prof.storage)
    public = prof.delivery.public
    if public:
        # A public URL stays plain (a CDN or bucket URL): the stored type is the one rindle
        # sniffed (proxied) or the declared type initiate checked against the profile.
        url = storage.url(key, expires_in=None, disposition=disposition)
    else:
        if not storage.supports(Capability.SIGNED_URL):
            raise DeliveryUnsupported(
                f"storage {storage.name!r} cannot sign URLs and profile {prof.name!r} is "
                "private; make the profile public or use a storage that signs URLs")
        ttl = expires_in if expires_in is not None else prof.delivery.signed_url_ttl
        url = storage.url(key, expires_in=ttl, disposition=disposition,
                          content_type=content_type)
    app.telemetry.emit("rindle.delivery.signed", {"system_time": time.time_ns()},
                       {"profile": prof.name, "adapter": storage.backend_name,
                        "mode": "public" if public else "private", "served": served})
    return url
