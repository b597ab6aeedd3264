"""Delivery URLs for assets and variants, honouring each profile's delivery policy.

Signed URLs are stable: their expiry is rounded up to the next multiple of ``[delivery]
signed_url_bucket`` seconds (Unix time, see :func:`bucket_expiry`), so one asset's URL
stays byte-identical until that moment passes and a page rendered twice points browsers
and CDNs at the same, cacheable URL. The time is read from ``app.jobs.clock`` (an
injectable :mod:`rindle.clock` clock).

Before a private URL is signed, the app's ``[delivery] authorizer`` (if any) is asked
``authorizer(actor, asset, variant)``; anything but ``True`` raises
:class:`~rindle.errors.Forbidden` and signs nothing. Public profiles skip it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, inspect, select

from rindle.domain.fsm.asset import BEFORE_PROMOTION
from rindle.domain.models import Asset, Variant
from rindle.domain.profile import unknown_variant
from rindle.errors import AssetNotReady, DeliveryUnsupported, Forbidden, NotFound
from rindle.ids import parse_id
from rindle.media.mime import ACTIVE_CONTENT as ACTIVE_TYPES
from rindle.storage.base import Capability

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.domain.profile import Profile
    from rindle.storage.base import Storage

__all__ = ["MAX_IDS_PER_QUERY", "asset_url", "asset_urls", "authorize", "bucket_expiry"]

#: :func:`asset_urls` asks for at most this many ids per query (SQLite binds at most 32766
#: parameters in one statement); a gallery of any usual size is one query.
MAX_IDS_PER_QUERY = 5000


def bucket_expiry(now: int, ttl: int, bucket: int) -> int:
    """The expiry of a URL signed at Unix time ``now`` for at least ``ttl`` seconds: the
    first multiple of ``bucket`` at or after ``now + ttl``.

    So every call within one bucket gets the same expiry, a URL lives between ``ttl`` and
    ``ttl + bucket - 1`` seconds, and plain Unix arithmetic decides (no calendar, no time
    zone, no leap-second table): ``bucket_expiry(0, 900, 300) == 900``,
    ``bucket_expiry(1, 900, 300) == 1200``.
    """
    if ttl < 1 or bucket < 1:
        raise ValueError(f"ttl and bucket must be >= 1 second, got {ttl} and {bucket}")
    return -(-(now + ttl) // bucket) * bucket


@dataclass(frozen=True)
class _Found:
    """An asset and the named variant's row (None: no such row, or none asked for)."""

    asset: Asset
    variant: Variant | None


def _carries(asset: Asset, variant: str | None) -> bool:
    """Whether an Asset object already holds what a URL needs (its variants, when one is
    asked for), so no query is needed for it. An object caught before promotion finished
    (what ``app.upload`` returns, ``analyzing``) never does: the asset may have been
    promoted since, so it is read again rather than left out of the answer."""
    if asset.state in BEFORE_PROMOTION:
        return False
    return variant is None or "variant_rows" not in inspect(asset).unloaded


def _load(app: AppContext, ids: list[uuid.UUID], variant: str | None
          ) -> dict[uuid.UUID, _Found]:
    """The assets ``ids`` with their ``variant`` row: one query per
    :data:`MAX_IDS_PER_QUERY` ids (an outer join when a variant is asked for)."""
    found: dict[uuid.UUID, _Found] = {}
    with app.db.sessionmaker() as s:
        for start in range(0, len(ids), MAX_IDS_PER_QUERY):
            chunk = ids[start:start + MAX_IDS_PER_QUERY]
            if variant is None:
                for asset in s.execute(select(Asset).where(Asset.id.in_(chunk))).scalars():
                    found[asset.id] = _Found(asset, None)
                continue
            rows = s.execute(
                select(Asset, Variant).outerjoin(Variant, and_(
                    Variant.asset_id == Asset.id, Variant.name == variant))
                .where(Asset.id.in_(chunk))).all()
            for asset, row in rows:
                found[asset.id] = _Found(asset, row)
    return found


def _from_object(asset: Asset, variant: str | None) -> _Found:
    return _Found(asset, asset.variants.get(variant) if variant is not None else None)


def _refusal(found: _Found | None, asked: object) -> NotFound | None:
    """Why ``found`` gets no URL (missing, deleted, not promoted, quarantined), or None."""
    if found is None or found.asset.state == "deleted":
        return NotFound("asset", asked)
    if found.asset.state in BEFORE_PROMOTION or found.asset.state == "quarantined":
        return AssetNotReady(asked, found.asset.state)
    return None


class _Signer:
    """Signs the URLs of one request: one clock reading, the authorizer, storages."""

    def __init__(self, app: AppContext, actor: Any, expires_in: int | None,
                 disposition: str | None) -> None:
        self.app = app
        self.actor = actor
        self.expires_in = expires_in
        self.disposition = disposition
        self.now = int(app.jobs.clock().timestamp())
        self.authorizer = app.settings.delivery.authorizer

    def profile_of(self, found: _Found, variant: str | None) -> type[Profile]:
        prof = self.app.profile(found.asset.profile)
        if variant is not None and variant not in dict(prof.variant_specs()):
            raise unknown_variant(prof, variant)
        return prof

    def sign(self, found: _Found, prof: type[Profile], variant: str | None) -> str:
        asset, row = found.asset, found.variant
        key, served, content_type = asset.storage_key, "original", asset.content_type
        if row is not None and row.state == "ready" and row.storage_key:
            key, served, content_type = row.storage_key, "variant", row.content_type
        disposition = "attachment" if content_type in ACTIVE_TYPES else self.disposition
        storage = self.app.storage(prof.storage)
        public = prof.delivery.public
        if public:
            # A public URL stays plain (a CDN or bucket URL): the stored type is the one
            # rindle sniffed (proxied) or the declared type initiate checked.
            url = storage.url(key, expires_in=None, disposition=disposition)
        else:
            self.authorize(asset, variant)
            url = self._private(storage, prof, key, disposition, content_type)
        self.app.telemetry.emit("rindle.delivery.signed", {"system_time": time.time_ns()},
                                {"profile": prof.name, "adapter": storage.backend_name,
                                 "mode": "public" if public else "private", "served": served})
        return url

    def authorize(self, asset: Asset, variant: str | None) -> None:
        """Raise :class:`Forbidden` unless the authorizer allows ``actor`` this URL."""
        if self.authorizer is not None and self.authorizer(self.actor, asset, variant) is not True:
            raise Forbidden(asset.id, variant)

    def _private(self, storage: Storage, prof: type[Profile], key: str,
                 disposition: str | None, content_type: str | None) -> str:
        if not storage.supports(Capability.SIGNED_URL):
            raise DeliveryUnsupported(
                f"storage {storage.name!r} cannot sign URLs and profile {prof.name!r} is "
                "private; make the profile public or use a storage that signs URLs")
        settings = self.app.settings.delivery
        ttl = self.expires_in if self.expires_in is not None else prof.delivery.ttl(
            settings.signed_url_ttl)
        expires_at = bucket_expiry(self.now, ttl, settings.signed_url_bucket)
        return storage.url_until(key, expires_at=expires_at, now=self.now,
                                 disposition=disposition, content_type=content_type)


def asset_url(app: AppContext, asset_id: uuid.UUID | str, variant: str | None = None, *,
              expires_in: int | None = None, disposition: str | None = None,
              actor: Any = None) -> str:
    """A URL for the original, or for ``variant`` when it is ready (else the original).

    Signed and expiring unless the profile's delivery is public: valid for at least
    ``expires_in`` seconds (default: the profile's ``signed_url_ttl``, else ``[delivery]
    signed_url_ttl``), until the end of that ``[delivery] signed_url_bucket``. The URL
    carries the content type recorded for what it serves (sniffed at promotion or set by
    the variant's processor); HTML, XHTML and SVG are always delivered as ``attachment``.

    Raises :class:`AssetNotReady` (``asset_not_ready``) for an asset that has not passed
    promotion (staged, validating, analyzing, promoting) or failed it (quarantined),
    :class:`NotFound` for a missing or deleted one and for a variant its profile does not
    declare, and :class:`~rindle.errors.Forbidden` (``delivery_forbidden``) when the
    authorizer refuses ``actor`` a private URL. One database query.
    """
    aid = parse_id(asset_id, "asset")
    found = _load(app, [aid], variant).get(aid)
    refusal = _refusal(found, asset_id)
    if refusal is not None:
        raise refusal
    assert found is not None
    signer = _Signer(app, actor, expires_in, disposition)
    return signer.sign(found, signer.profile_of(found, variant), variant)


def asset_urls(app: AppContext, assets: Iterable[Asset | uuid.UUID | str],
               variant: str | None = None, *, expires_in: int | None = None,
               disposition: str | None = None, actor: Any = None) -> dict[uuid.UUID, str]:
    """URLs for many assets at once, by asset id, in the order given (duplicates once).

    ``assets`` mixes :class:`~rindle.domain.models.Asset` objects and ids. Everything
    missing is read in one query (one per :data:`MAX_IDS_PER_QUERY` ids); an Asset object
    that carries what is needed (its loaded variants, when ``variant`` is asked for, as
    :meth:`rindle.Rindle.get_asset` returns them) is used as it is, so a list of such
    objects needs no query at all; one caught before promotion finished (what
    ``app.upload`` returned) is read again. Each URL is what :func:`asset_url` would
    answer.

    Assets that cannot be delivered are left out of the answer rather than failing the
    page: an id that is malformed or names no asset, a deleted asset, and one not yet
    promoted or quarantined. A ``variant`` the profile of one of the assets does not
    declare raises :class:`NotFound`, and a refusal of the authorizer raises
    :class:`~rindle.errors.Forbidden` (no partial answer).
    """
    given: dict[uuid.UUID, _Found | None] = {}
    for item in assets:
        if isinstance(item, Asset):
            given[item.id] = _from_object(item, variant) if _carries(item, variant) else None
            continue
        try:
            given.setdefault(parse_id(item, "asset"), None)
        except NotFound:
            continue  # not an id of anything: nothing to deliver
    missing = [aid for aid, found in given.items() if found is None]
    loaded = _load(app, missing, variant) if missing else {}
    signer = _Signer(app, actor, expires_in, disposition)
    out: dict[uuid.UUID, str] = {}
    for aid, found in given.items():
        found = found or loaded.get(aid)
        if _refusal(found, aid) is not None:
            continue
        assert found is not None
        out[aid] = signer.sign(found, signer.profile_of(found, variant), variant)
    return out


def authorize(app: AppContext, asset_id: uuid.UUID | str, variant: str | None,
              actor: Any) -> None:
    """Ask the authorizer whether ``actor`` may have a URL of a private asset signed
    (streamed playback URLs, which are not signed here); nothing to do without an
    authorizer, for a public profile, or for an asset that gets no URL anyway (the URL
    call then raises its own error). One query when an authorizer is set."""
    if app.settings.delivery.authorizer is None:
        return
    try:
        aid = parse_id(asset_id, "asset")
    except NotFound:
        return
    found = _load(app, [aid], None).get(aid)
    if found is None or _refusal(found, asset_id) is not None:
        return
    prof = app.profile(found.asset.profile)
    if not prof.delivery.public:
        _Signer(app, actor, None, None).authorize(found.asset, variant)
