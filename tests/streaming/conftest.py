"""A minimal provider for the core streaming tests, and apps (both dialects) that use it.

:class:`LoopProvider` is a complete (if tiny) provider: it verifies webhooks with rindle's
own timestamped HMAC and reads a JSON body. It has no remote asset API; the core tests here
only exercise paths that must not call one (stuck check, coordinator, webhooks).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from rindle import Delivery, Profile, Rindle, hookimpl, variants
from rindle.domain.models import Asset, ProviderAsset, utcnow
from rindle.plugins import make_plugin_manager
from rindle.streaming import LiveAsset, Provider, ProviderEvent, verify_signature

SECRET = "loop-secret-0123456789abcdef0123456789"


class LoopProvider(Provider):
    capabilities = frozenset({"webhook_ingest"})

    def __init__(self, name: str, *, secret: str = SECRET) -> None:
        super().__init__(name)
        self.secret = secret
        self.asked: list[str] = []

    def get_asset(self, provider_asset_id: str) -> LiveAsset:
        self.asked.append(provider_asset_id)
        raise AssertionError("this path must not call the provider")

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        verify_signature(body, headers.get("x-loop-signature"), [self.secret])
        payload = json.loads(body)
        return ProviderEvent(type=payload.get("type", "unknown"),
                             event_type=payload.get("type", ""), event_id=payload.get("id"),
                             provider_asset_id=payload.get("asset"), raw=payload)

    def dispatch_kind(self, event_type: str) -> str:
        return "dispatch" if event_type in ("ready", "errored") else "drop"


class _Plugin:
    @hookimpl
    def register_streaming_providers(self, register: Callable[[str, type], None]) -> None:
        register("loop", LoopProvider)


class Stream(Profile):
    name = "stream"
    allow_mime = ("video/mp4",)
    variants = {"web_720p": variants.Video(preset="web_720p")}
    delivery = Delivery(streaming={"provider": "loop", "playback_policy": "signed",
                                   "ingest_mode": "server_push", "source_variant": "web_720p"})


@pytest.fixture
def make_stream_app(make_app: Callable[..., Rindle]) -> Callable[..., Rindle]:
    def factory(**table: Any) -> Rindle:
        pm = make_plugin_manager(load_entrypoints=False)
        pm.register(_Plugin(), name="loop-plugin")
        return make_app(plugin_manager=pm, profiles=[Stream], streaming={"loop": table})

    return factory


@pytest.fixture
def stream_app(make_stream_app: Callable[..., Rindle]) -> Rindle:
    return make_stream_app()


def add_row(app: Rindle, *, state: str = "processing", provider_asset_id: str | None = "auto",
            age: dt.timedelta = dt.timedelta(seconds=120), provider_name: str = "loop",
            now: dt.datetime | None = None) -> ProviderAsset:
    """Insert a ``stream`` asset and its provider row, last updated ``age`` before ``now``
    (default: the current time)."""
    when = (now or utcnow()) - age
    with app.db.transaction() as s:
        asset = Asset(profile="stream", storage_key=f"stream/{uuid.uuid4()}/o.mp4",
                      state="ready", kind="video")
        s.add(asset)
        s.flush()
        pid = f"pa-{uuid.uuid4().hex}" if provider_asset_id == "auto" else provider_asset_id
        row = ProviderAsset(asset_id=asset.id, profile="stream", provider_name=provider_name,
                            provider_asset_id=pid,
                            state=state, inserted_at=when, updated_at=when)
        s.add(row)
    return row
