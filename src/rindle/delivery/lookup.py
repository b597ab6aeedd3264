"""What the embedded delivery app may do with a key: the database row behind it decides.

A valid token proves rindle signed a request for a key; it does not prove that the bytes at
that key are still fit to serve, or that the upload it was issued for is still open. So
every GET and PUT of the delivery app asks the database:

* GET: the key must be the original of an asset that passed promotion, or a variant of
  one. The answer carries the Content-Type recorded for that row (the type sniffed from
  the bytes), never one guessed from the key's extension. Anything else (staged or
  quarantined assets, deleted ones, keys no row names) is not delivered, whatever the
  token says; that covers URLs signed before an asset was quarantined.
* PUT: when an upload session names the key, it must still be ``signed`` or
  ``uploading`` and unexpired.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select

from rindle.database import Database
from rindle.domain.models import Asset, UploadSession, Variant, utcnow

__all__ = ["DELIVERABLE_STATES", "Servable", "UploadGate", "servable", "upload_gate"]

#: Asset states whose bytes passed promotion (and so the trust gate).
DELIVERABLE_STATES: Final = frozenset(
    {"available", "processing", "transcoding", "ready", "degraded"})

#: Session states in which the client may still write the object.
_OPEN_SESSION_STATES: Final = frozenset({"signed", "resuming", "uploading"})


@dataclass(frozen=True)
class Servable:
    """A key the delivery app may serve, with the type recorded for it."""

    content_type: str | None
    kind: str  # "original" or "variant"


@dataclass(frozen=True)
class UploadGate:
    """Whether a PUT may write its key; ``reason`` names the refusal (None: allowed)."""

    reason: str | None
    session_state: str | None = None

    @property
    def allowed(self) -> bool:
        """True when the PUT may go ahead."""
        return self.reason is None


def servable(db: Database, key: str) -> Servable | None:
    """The row behind ``key`` if its bytes may be delivered now, else None.

    One indexed query per table (``media_assets.storage_key`` is unique;
    ``media_variants.storage_key`` is indexed).
    """
    with db.engine.connect() as conn:
        row = conn.execute(
            select(Asset.state, Asset.content_type).where(Asset.storage_key == key)
        ).first()
        if row is not None:
            return Servable(row.content_type, "original") if (
                row.state in DELIVERABLE_STATES) else None
        vrow = conn.execute(
            select(Variant.content_type, Asset.state)
            .join(Asset, Asset.id == Variant.asset_id)
            .where(Variant.storage_key == key)
        ).first()
    if vrow is None or vrow.state not in DELIVERABLE_STATES:
        return None
    return Servable(vrow.content_type, "variant")


def upload_gate(db: Database, key: str, *, now: dt.datetime | None = None) -> UploadGate:
    """Whether a presigned PUT to ``key`` may write it.

    Refused (``reason`` set) when a session names the key and it is no longer ``signed``
    or ``uploading`` (``session_closed``) or it has expired (``expired``). A key no
    session names is allowed (the storage API's own presigned PUTs); the write is then
    still create-only.
    """
    moment = now or utcnow()
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(UploadSession.state, UploadSession.expires_at)
            .where(UploadSession.upload_key == key)
        ).all()
    if not rows:
        return UploadGate(None)
    for state, expires_at in rows:
        if state not in _OPEN_SESSION_STATES:
            return UploadGate("session_closed", state)
        if expires_at is not None and _aware(expires_at) <= moment:
            return UploadGate("expired", state)
    return UploadGate(None, rows[0][0])


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
