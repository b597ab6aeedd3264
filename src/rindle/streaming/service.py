"""``app.streaming``: configured providers and the provider-neutral streaming services.

Settings: one ``[streaming.NAME]`` table per provider. ``backend`` names the registered
provider class (default: ``NAME``); rindle reads its own keys from the table and hands the
rest to :meth:`Provider.from_settings`:

``provider_polling_floor_seconds`` (30)
    the sync coordinator only looks at rows untouched for at least this long;
``provider_polling_batch_size`` (1000)
    at most this many rows per coordinator run and provider;
``provider_stuck_threshold_seconds`` (7200)
    a row in ``uploading``/``processing`` untouched for longer is marked ``errored``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from rindle.config import STREAMING_CORE_KEYS, StreamingProviderSettings
from rindle.domain.models import ProviderAsset
from rindle.domain.queries import get_asset
from rindle.errors import ConfigError, PluginError, StreamingNotConfigured
from rindle.ids import parse_id
from rindle.plugins import BackendRegistry
from rindle.streaming import direct as _direct
from rindle.streaming import playback as _playback
from rindle.streaming import sync as _sync
from rindle.streaming import webhooks as _webhooks
from rindle.streaming.direct import DirectUploadTicket
from rindle.streaming.provider import PlaybackURL, Provider, ProviderEvent
from rindle.streaming.sync import SyncDueReport, SyncResult
from rindle.streaming.webhooks import WebhookResponse

if TYPE_CHECKING:
    import datetime as dt

    from rindle.context import AppContext
    from rindle.domain.profile import Profile

__all__ = ["CORE_KEYS", "ProviderConfig", "Streaming"]

#: Keys of ``[streaming.NAME]`` that rindle reads itself (not passed to the provider).
CORE_KEYS = STREAMING_CORE_KEYS

#: One ``[streaming.NAME]`` table as rindle reads it (``settings`` go to the provider);
#: validated when the settings load.
ProviderConfig = StreamingProviderSettings


class Streaming:
    """The streaming services of one app; reach it as ``app.streaming``.

    Construction validates every ``[streaming.NAME]`` table and checks that its backend is
    installed (:class:`~rindle.errors.UnknownBackend` otherwise); providers themselves are
    built on first use.
    """

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.registry = BackendRegistry.collect(app.pm, "register_streaming_providers",
                                                "streaming provider", Provider)
        self.configs: dict[str, ProviderConfig] = dict(app.settings.streaming)  # validated
        for cfg in self.configs.values():
            self.registry.get(cfg.backend)
        for profile_name, provider_name in self.streaming_profiles().items():
            if provider_name not in self.configs:
                raise ConfigError(
                    f"profile {profile_name!r} streams through {provider_name!r}, which is not "
                    f"configured; add a [streaming.{provider_name}] table (configured: "
                    f"{', '.join(sorted(self.configs)) or 'none'})")
        self._providers: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Streaming providers={sorted(self.configs)}>"

    # --- providers ----------------------------------------------------------------------

    @property
    def backends(self) -> dict[str, type]:
        """Installed provider classes by backend name."""
        return dict(self.registry.classes)

    def config(self, name: str) -> ProviderConfig:
        """The parsed ``[streaming.NAME]`` table; :class:`StreamingNotConfigured` if absent."""
        try:
            return self.configs[name]
        except KeyError:
            raise StreamingNotConfigured(
                f"streaming provider {name!r} is not configured; add a [streaming.{name}] "
                f"table (configured: {', '.join(sorted(self.configs)) or 'none'})") from None

    def provider(self, name: str) -> Provider:
        """The provider configured as ``[streaming.NAME]``, built on first use."""
        with self._lock:
            if name in self._providers:
                return self._providers[name]
            cfg = self.config(name)
            klass = self.registry.get(cfg.backend)
            if not issubclass(klass, Provider):  # the registry admits Provider subclasses only
                raise PluginError(f"streaming backend {klass!r} is not a rindle Provider")
            provider = klass.from_settings(name, dict(cfg.settings))
            if not isinstance(provider, Provider):
                raise ConfigError(f"{klass!r}.from_settings did not return a Provider")
            self._providers[name] = provider
            return provider

    def streaming_config(self, profile: type[Profile] | str) -> Mapping[str, Any]:
        """The profile's ``delivery.streaming`` mapping; :class:`StreamingNotConfigured` if none."""
        klass = self.app.profile(profile)
        cfg = klass.delivery.streaming
        if cfg is None:
            raise StreamingNotConfigured(
                f"profile {klass.name!r} does not stream; give it "
                "Delivery(streaming={...}) to use a streaming provider")
        return cfg

    def provider_for(self, profile: type[Profile] | str) -> Provider:
        """The provider a streaming profile names in ``delivery.streaming["provider"]``."""
        return self.provider(str(self.streaming_config(profile)["provider"]))

    def streaming_profiles(self) -> dict[str, str]:
        """Profile name -> provider name, for every profile that streams."""
        return {name: str(p.delivery.streaming["provider"])
                for name, p in self.app.profiles.items() if p.delivery.streaming is not None}

    # --- rows ---------------------------------------------------------------------------

    def provider_asset(self, asset_id: uuid.UUID | str, profile: type[Profile] | str | None
                       = None) -> ProviderAsset | None:
        """The provider row of ``asset_id`` (for ``profile``, default the asset's own)."""
        aid = parse_id(asset_id, "asset")
        if profile is None:
            profile = get_asset(self.app.db, aid).profile
        klass = self.app.profile(profile)
        provider_name = str(self.streaming_config(klass)["provider"])
        with self.app.db.sessionmaker() as s:
            return s.execute(select(ProviderAsset).where(
                ProviderAsset.asset_id == aid, ProviderAsset.profile == klass.name,
                ProviderAsset.provider_name == provider_name)).scalar_one_or_none()

    # --- services (one module each) ---------------------------------------------------

    def sync_provider_asset(self, provider_asset_id: uuid.UUID | str, *,
                            now: dt.datetime | None = None) -> SyncResult:
        """Per-row defensive sync (see :func:`rindle.streaming.sync.sync_provider_asset`)."""
        return _sync.sync_provider_asset(self, provider_asset_id, now=now)

    def sync_due(self, *, now: dt.datetime | None = None) -> SyncDueReport:
        """The sync coordinator (see :func:`rindle.streaming.sync.sync_due`)."""
        return _sync.sync_due(self, now=now)

    def handle_webhook(self, provider: str, body: bytes, headers: Mapping[str, str]
                       ) -> WebhookResponse:
        """The webhook endpoint (see :func:`rindle.streaming.webhooks.handle_webhook`)."""
        return _webhooks.handle_webhook(self, provider, body, headers)

    def ingest_event(self, provider: str, event: ProviderEvent, *, attempt: int = 1) -> str:
        """Apply one verified event (see :func:`rindle.streaming.webhooks.ingest_event`)."""
        return _webhooks.ingest_event(self, provider, event, attempt=attempt)

    def playback_url(self, asset_id: uuid.UUID | str, *, expires_in: int | None = None,
                     strict: bool = True) -> PlaybackURL:
        """The playback URL of a streaming asset (see :mod:`rindle.streaming.playback`)."""
        return _playback.playback_url(self, asset_id, expires_in=expires_in, strict=strict)

    def create_direct_upload(self, profile: type[Profile] | str, *, cors_origin: str,
                             filename: str | None = None, timeout: int | None = None,
                             test: bool = False) -> DirectUploadTicket:
        """A browser upload URL plus the asset it becomes (see :mod:`rindle.streaming.direct`)."""
        return _direct.create_direct_upload(self, profile, cors_origin=cors_origin,
                                            filename=filename, timeout=timeout, test=test)

    def cancel_direct_upload(self, asset_id: uuid.UUID | str) -> str:
        """Cancel a direct upload (see :func:`rindle.streaming.direct.cancel_direct_upload`)."""
        return _direct.cancel_direct_upload(self, asset_id)
