"""Direct creator upload: the browser uploads straight to the provider.

:func:`create_direct_upload` records a placeholder asset (``ready``, kind ``video``, key
``streaming/<provider>/direct_upload/<asset id>``, no object is ever written there) and a
``pending`` provider row carrying a fresh passthrough token, commits, then asks the provider
for an upload URL **outside** any transaction (the reference called it inside one) and moves
the row to ``uploading`` with the upload id. If the provider refuses, the placeholder rows
are removed again. The provider's ``video.upload.asset_created`` webhook later links the
asset (``uploading`` -> ``processing``), and ``ready`` follows as for server push.

:func:`cancel_direct_upload` marks the row ``deleted`` first (locally cancelled: hide the
upload UI, retrying is safe) and then tells the provider; a provider failure is raised
but the row stays ``deleted``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from rindle.domain.fsm import provider_asset as fsm
from rindle.domain.models import Asset, ProviderAsset
from rindle.errors import (
    InvalidTransition,
    NotFound,
    ProviderSyncFailed,
    StreamingError,
    StreamingNotConfigured,
)
from rindle.ids import parse_id, uuid7

if TYPE_CHECKING:
    from rindle.domain.profile import Profile
    from rindle.streaming.service import Streaming

__all__ = ["DirectUploadTicket", "cancel_direct_upload", "create_direct_upload"]


@dataclass(frozen=True)
class DirectUploadTicket:
    """What the browser needs: where to upload, and the rindle asset it will become.
    No provider identifier is included."""

    upload_url: str
    asset_id: uuid.UUID

    def __repr__(self) -> str:
        return f"DirectUploadTicket(upload_url='<redacted>', asset_id={self.asset_id})"


def create_direct_upload(streaming: Streaming, profile: type[Profile] | str, *,
                         cors_origin: str, filename: str | None = None,
                         timeout: int | None = None, test: bool = False) -> DirectUploadTicket:
    """Create a provider upload URL for a ``direct_creator_upload`` streaming profile.

    Raises :class:`StreamingNotConfigured` when the profile does not stream this way or its
    provider lacks ``direct_creator_upload``; :class:`ProviderSyncFailed` without
    ``cors_origin`` (no provider call) or when the provider refuses.
    """
    app = streaming.app
    klass = app.profile(profile)
    cfg = streaming.streaming_config(klass)
    if cfg.get("ingest_mode") != "direct_creator_upload":
        raise StreamingNotConfigured(
            f"profile {klass.name!r} streams with ingest_mode {cfg.get('ingest_mode')!r}; "
            "direct uploads need ingest_mode 'direct_creator_upload'")
    provider_name = str(cfg["provider"])
    provider = streaming.provider(provider_name)
    if "direct_creator_upload" not in provider.capabilities:
        raise StreamingNotConfigured(
            f"streaming provider {provider_name!r} has no direct creator upload")
    if not cors_origin:
        raise ProviderSyncFailed("direct upload needs cors_origin (the page's origin)")
    asset_id, passthrough = uuid7(), str(uuid.uuid4())
    policy = str(cfg["playback_policy"])
    with app.db.transaction() as s:
        s.add(Asset(id=asset_id, profile=klass.name, state="ready", kind="video",
                    storage_key=f"streaming/{provider_name}/direct_upload/{asset_id}",
                    filename=filename,
                    meta={"streaming_provider": provider_name,
                          "ingest_mode": "direct_creator_upload"}))
        s.flush()
        row = ProviderAsset(asset_id=asset_id, profile=klass.name, provider_name=provider_name,
                            state="pending", playback_policy=policy,
                            ingest_mode="direct_creator_upload", mux_passthrough=passthrough)
        s.add(row)
    try:
        upload = provider.create_direct_upload(cors_origin=cors_origin, playback_policy=policy,
                                               passthrough=passthrough, timeout=timeout,
                                               test=test)
        with app.db.transaction() as s:
            fsm.transition(s, row.id, "pending", "uploading", telemetry=app.telemetry,
                           values={"provider_upload_id": upload.upload_id})
    except BaseException:
        with app.db.transaction() as s:  # compensate: no half-made upload remains
            s.execute(delete(ProviderAsset).where(ProviderAsset.id == row.id))
            s.execute(delete(Asset).where(Asset.id == asset_id))
        raise
    return DirectUploadTicket(upload.upload_url, asset_id)


def cancel_direct_upload(streaming: Streaming, asset_id: uuid.UUID | str) -> str:
    """Cancel a direct upload that has not produced an asset; returns ``"deleted"``.

    Raises :class:`NotFound` (no direct-upload row for ``asset_id``) and
    :class:`StreamingError` with code ``not_cancellable`` (no upload id yet, or the
    provider asset already exists: delete that instead).
    """
    app = streaming.app
    aid = parse_id(asset_id, "direct upload")
    with app.db.sessionmaker() as s:
        row = s.execute(select(ProviderAsset).where(
            ProviderAsset.asset_id == aid,
            ProviderAsset.ingest_mode == "direct_creator_upload")).scalars().first()
    if row is None:
        raise NotFound("direct upload", aid)
    if not row.provider_upload_id:
        raise StreamingError("the upload has no provider upload id yet; retry shortly",
                             code="not_cancellable")
    if row.state in ("pending", "uploading"):
        try:
            with app.db.transaction() as s:
                fsm.transition(s, row.id, row.state, "deleted", telemetry=app.telemetry)
        except InvalidTransition:
            return cancel_direct_upload(streaming, aid)  # it moved: decide again
    elif row.state != "deleted":
        raise StreamingError(f"the upload already became an asset (state {row.state!r}); "
                             "delete the asset instead", code="not_cancellable")
    provider = streaming.provider(row.provider_name)
    provider.cancel_direct_upload(row.provider_upload_id)
    return "deleted"
