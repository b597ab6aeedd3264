"""Playback URLs of streaming assets.

The provider row of ``(asset, profile, provider)`` decides: ``ready`` with playback ids ->
the provider's URL for the first id (signed for the ``signed`` policy, with the profile's
``signed_url_ttl``); no row yet, ``pending``/``uploading``/``processing``, ``deleted`` or no
playback id -> :class:`~rindle.errors.ProviderAssetNotReady`; ``errored`` or a row whose
stored policy no longer matches the profile -> :class:`~rindle.errors.ProviderSyncFailed`.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from rindle.domain.queries import get_asset
from rindle.errors import ProviderAssetNotReady, ProviderSyncFailed
from rindle.streaming.provider import PlaybackURL

if TYPE_CHECKING:
    from rindle.streaming.service import Streaming

__all__ = ["dispatch_url", "playback_url"]


def playback_url(streaming: Streaming, asset_id: uuid.UUID | str, *,
                 expires_in: int | None = None, strict: bool = True) -> PlaybackURL:
    """The HLS playback URL of a streaming asset; raises when it is not playable yet.

    ``strict`` is accepted for parity with the reference (a missing row always raises
    here; :meth:`rindle.Rindle.url` falls back to progressive delivery itself).
    """
    app = streaming.app
    asset = get_asset(app.db, asset_id)
    profile = app.profile(asset.profile)
    cfg = streaming.streaming_config(profile)
    row = streaming.provider_asset(asset.id, profile)
    if row is None or row.state in ("pending", "uploading", "processing", "deleted"):
        raise ProviderAssetNotReady(
            f"asset {asset.id} has no playable stream yet; retry once the provider is done")
    if row.state == "errored":
        raise ProviderSyncFailed(
            f"asset {asset.id}: the streaming provider failed it; see `rindle runtime-status "
            "--provider-stuck` and re-ingest")
    if not row.playback_ids:
        raise ProviderAssetNotReady(f"asset {asset.id} has no playback id yet")
    policy = str(cfg["playback_policy"])
    for field, expected in (("playback_policy", policy), ("ingest_mode", cfg["ingest_mode"])):
        stored = getattr(row, field)
        if stored is not None and stored != expected:
            app.telemetry.emit("rindle.delivery.streaming.config_drift",
                               {"system_time": time.time_ns()},
                               {"field": field, "row_value": stored, "expected": expected,
                                "profile": profile.name, "provider": row.provider_name})
            raise ProviderSyncFailed(
                f"asset {asset.id}: its stream was created with {field}={stored!r} but the "
                f"profile now says {expected!r}; re-ingest it")
    ttl = expires_in if expires_in is not None else profile.delivery.ttl(
        app.settings.delivery.signed_url_ttl)
    url = streaming.provider(row.provider_name).playback_url(
        row.playback_ids[0], policy=policy, expires_in=ttl)
    if not isinstance(url, PlaybackURL):
        raise ProviderSyncFailed(f"provider {row.provider_name!r} returned no playback URL")
    app.telemetry.emit("rindle.delivery.streaming.resolved", {"system_time": time.time_ns()},
                       {"profile": profile.name, "adapter": row.provider_name,
                        "mode": policy, "kind": url.kind, "mime": url.mime})
    return url


def dispatch_url(streaming: Streaming, asset_id: uuid.UUID | str, *,
                 expires_in: int | None = None) -> str | None:
    """What :meth:`rindle.Rindle.url` serves for a streaming profile's asset: the playback
    URL once the stream is playable, ``None`` (progressive fallback to the original) while
    it is not. Not a streaming profile -> ``None``. An errored stream or a drifted row
    raises :class:`~rindle.errors.ProviderSyncFailed`, as :func:`playback_url` does."""
    app = streaming.app
    asset = get_asset(app.db, asset_id)
    if app.profile(asset.profile).delivery.streaming is None or asset.state not in (
            "ready", "degraded"):
        return None  # not streaming, or nothing deliverable: asset_url decides
    try:
        return playback_url(streaming, asset.id, expires_in=expires_in).url
    except ProviderAssetNotReady:
        return None
