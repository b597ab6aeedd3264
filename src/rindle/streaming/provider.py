"""The :class:`Provider` protocol every streaming backend implements, and its value types.

A provider class is registered through the ``register_streaming_providers`` hook and built
from a ``[streaming.NAME]`` settings table by :meth:`Provider.from_settings`. Provider ids
(asset, upload, passthrough) are secrets: the value types below never show them in their
``repr`` (security rule: only playback ids of public policies may appear in URLs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rindle.telemetry import redact_id

__all__ = [
    "CAPABILITIES",
    "CreatedAsset",
    "DirectUpload",
    "LiveAsset",
    "PlaybackURL",
    "Provider",
    "ProviderEvent",
    "normalise_playback_ids",
    "normalize_playback_ids",
]

#: Every capability a provider may advertise; a provider's ``capabilities`` is a subset.
CAPABILITIES: frozenset[str] = frozenset({
    "signed_playback", "public_playback", "webhook_ingest", "server_push_ingest",
    "direct_creator_upload",
})


def normalize_playback_ids(value: object) -> list[str]:
    """Playback ids from a provider answer: ``{"id": str}`` items and bare strings, in
    order; anything else dropped; a non-list (``None`` included) is ``[]``."""
    if not isinstance(value, list):
        return []
    out: list[str] = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("id"), str):
            out.append(item["id"])
    return out


#: Deprecated spelling of :func:`normalize_playback_ids`, kept so existing imports work.
normalise_playback_ids = normalize_playback_ids


@dataclass(frozen=True)
class CreatedAsset:
    """What ``create_asset`` returns: the provider's asset id (secret) and playback ids."""

    provider_asset_id: str
    playback_ids: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"CreatedAsset(provider_asset_id={redact_id(self.provider_asset_id)!r}, "
                f"playback_ids=[{len(self.playback_ids)} id(s)])")


@dataclass(frozen=True)
class LiveAsset:
    """What ``get_asset`` returns: the normalised live state (``None`` when unknown),
    playback ids, the provider's error message when errored, and the provider's raw
    object (secret; never logged)."""

    state: str | None
    playback_ids: list[str] = field(default_factory=list)
    raw: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    def __repr__(self) -> str:
        return (f"LiveAsset(state={self.state!r}, playback_ids=[{len(self.playback_ids)} "
                "id(s)], raw={redacted})")


@dataclass(frozen=True)
class DirectUpload:
    """What ``create_direct_upload`` returns: where the browser uploads, and the upload id."""

    upload_url: str
    upload_id: str

    def __repr__(self) -> str:
        return f"DirectUpload(upload_url='<redacted>', upload_id={redact_id(self.upload_id)!r})"


@dataclass(frozen=True)
class PlaybackURL:
    """A playback URL: ``kind`` is ``"hls"`` for provider playback; ``str()`` is the URL."""

    url: str
    kind: str = "hls"
    mime: str = "application/vnd.apple.mpegurl"

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"PlaybackURL(url='<redacted>', kind={self.kind!r}, mime={self.mime!r})"


@dataclass(frozen=True)
class ProviderEvent:
    """A verified, normalised webhook event (never a provider SDK object).

    ``type`` is one of ``ready``, ``errored``, ``created``, ``deleted``,
    ``upload_asset_created``, ``unknown``; ``event_type`` is the provider's own name
    (``video.asset.ready``); ``state`` is the normalised asset state or ``None``; ``error``
    the provider's message for ``errored``; ``passthrough`` the token rindle gave the
    provider with a direct upload (a secret, like the ids).
    """

    type: str
    event_type: str
    event_id: str | None
    provider_asset_id: str | None = None
    upload_id: str | None = None
    playback_ids: list[str] = field(default_factory=list)
    state: str | None = None
    occurred_at: dt.datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    passthrough: str | None = None

    def __repr__(self) -> str:
        return (f"ProviderEvent(type={self.type!r}, event_type={self.event_type!r}, "
                f"provider_asset_id={redact_id(self.provider_asset_id)!r}, "
                f"state={self.state!r}, raw={{redacted}})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (job args): string keys, ``occurred_at`` as ISO-8601."""
        return {
            "type": self.type, "event_type": self.event_type, "event_id": self.event_id,
            "provider_asset_id": self.provider_asset_id, "upload_id": self.upload_id,
            "playback_ids": list(self.playback_ids), "state": self.state,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "raw": dict(self.raw), "error": self.error, "passthrough": self.passthrough,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderEvent:
        """The inverse of :meth:`to_dict`."""
        occurred = data.get("occurred_at")
        return cls(
            type=str(data.get("type") or "unknown"),
            event_type=str(data.get("event_type") or ""),
            event_id=data.get("event_id"),
            provider_asset_id=data.get("provider_asset_id"),
            upload_id=data.get("upload_id"),
            playback_ids=normalize_playback_ids(data.get("playback_ids")),
            state=data.get("state"),
            occurred_at=dt.datetime.fromisoformat(occurred) if isinstance(occurred, str)
            else None,
            raw=dict(data.get("raw") or {}),
            error=data.get("error"),
            passthrough=data.get("passthrough"),
        )

    @property
    def data(self) -> Mapping[str, Any]:
        """The ``data`` object of the raw payload (``{}`` when absent)."""
        value = self.raw.get("data")
        return value if isinstance(value, Mapping) else {}


class Provider:
    """A streaming backend. Subclass it and register the class with
    ``register_streaming_providers``; rindle builds one instance per ``[streaming.NAME]``.

    Every call raises :class:`rindle.errors.ProviderSyncFailed` (or a subclass) on failure;
    HTTP and transport errors never escape untranslated. Implementations read their settings
    at call time where rotation matters (webhook secrets), and keep every secret out of
    ``repr``, logs and exception messages.
    """

    #: Capabilities this provider has, a subset of :data:`CAPABILITIES`.
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any]) -> Provider:
        """Build from a ``[streaming.NAME]`` table (rindle's own keys already removed)."""
        return cls(name, **settings)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # --- assets -----------------------------------------------------------------------------

    def create_asset(self, source_url: str, *, playback_policy: str = "signed",
                     passthrough: str | None = None) -> CreatedAsset:
        """Ask the provider to ingest ``source_url``; returns the new asset's id."""
        raise NotImplementedError(f"{type(self).__name__} cannot create assets")

    def get_asset(self, provider_asset_id: str) -> LiveAsset:
        """The asset's live state; raises :class:`~rindle.errors.ProviderAssetNotFound` on 404."""
        raise NotImplementedError(f"{type(self).__name__} cannot read assets")

    def delete_asset(self, provider_asset_id: str) -> None:
        """Delete the asset; an asset that is already gone is success (idempotent)."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete assets")

    # --- direct creator upload -------------------------------------------------------------

    def create_direct_upload(self, *, cors_origin: str, playback_policy: str = "signed",
                             passthrough: str | None = None, timeout: int | None = None,
                             test: bool = False) -> DirectUpload:
        """Create a browser upload URL whose asset the provider creates on completion."""
        raise NotImplementedError(f"{type(self).__name__} has no direct creator upload")

    def cancel_direct_upload(self, upload_id: str) -> None:
        """Cancel an unfinished direct upload; already finished or gone is success."""
        raise NotImplementedError(f"{type(self).__name__} has no direct creator upload")

    # --- webhooks and playback -------------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Verify ``body`` against its signature headers, then parse and normalise it.

        Verification happens before any parsing. Raises :class:`~rindle.errors.WebhookInvalid`
        for a missing or bad signature, a stale timestamp, or an unreadable payload.
        """
        raise NotImplementedError(f"{type(self).__name__} does not take webhooks")

    def dispatch_kind(self, event_type: str) -> str:
        """``"dispatch"`` for event types the ingest worker acts on, else ``"drop"``."""
        return "drop"

    def playback_url(self, playback_id: str, *, policy: str = "signed",
                     expires_in: int = 900) -> PlaybackURL:
        """A playback URL for ``playback_id``; signed policies expire after ``expires_in``."""
        raise NotImplementedError(f"{type(self).__name__} has no playback URLs")

    def doctor_checks(self) -> Sequence[Any]:
        """Operational checks (``rindle.ops.doctor.Check``) for ``rindle doctor``."""
        return []
