"""Streaming providers: the :class:`Provider` protocol, provider assets, webhooks, sync.

Plugins implement :class:`Provider` and register it with ``register_streaming_providers``;
applications use ``app.streaming`` (:class:`Streaming`). Everything a provider plugin needs
is importable from here::

    from rindle.streaming import Provider, ProviderEvent, LiveAsset, CreatedAsset
"""

from __future__ import annotations

from rindle.errors import (
    ProviderAssetNotFound,
    ProviderAssetNotReady,
    ProviderQuotaExceeded,
    ProviderSyncFailed,
    StreamingError,
    StreamingNotConfigured,
    WebhookInvalid,
)
from rindle.streaming.provider import (
    CAPABILITIES,
    CreatedAsset,
    DirectUpload,
    LiveAsset,
    PlaybackURL,
    Provider,
    ProviderEvent,
    normalise_playback_ids,
    normalize_playback_ids,
)
from rindle.streaming.service import ProviderConfig, Streaming
from rindle.streaming.signatures import parse_signature_header, sign, verify_signature
from rindle.streaming.sync import SyncDueReport, SyncResult
from rindle.streaming.webhooks import MAX_BODY, WebhookResponse
from rindle.telemetry import redact_id

__all__ = [
    "CAPABILITIES",
    "MAX_BODY",
    "CreatedAsset",
    "DirectUpload",
    "LiveAsset",
    "PlaybackURL",
    "Provider",
    "ProviderAssetNotFound",
    "ProviderAssetNotReady",
    "ProviderConfig",
    "ProviderEvent",
    "ProviderQuotaExceeded",
    "ProviderSyncFailed",
    "Streaming",
    "StreamingError",
    "StreamingNotConfigured",
    "SyncDueReport",
    "SyncResult",
    "WebhookInvalid",
    "WebhookResponse",
    "normalise_playback_ids",
    "normalize_playback_ids",
    "parse_signature_header",
    "redact_id",
    "sign",
    "verify_signature",
]
