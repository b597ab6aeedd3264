"""Direct creator upload against the loopback Mux, through to the webhook that links it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from muxkit import FakeMux, KeyPair, mux_settings, sign_header
from sqlalchemy import func, select

import rindle_mux.plugin
from rindle import Delivery, Profile, Rindle, variants
from rindle.domain.models import Asset, ProviderAsset
from rindle.errors import ProviderSyncFailed, RindleError, StreamingNotConfigured
from rindle.plugins import make_plugin_manager


class Upload(Profile):
    name = "upload_clip"
    variants = {"web_720p": variants.Video(preset="web_720p")}
    delivery = Delivery(streaming={"provider": "mux", "playback_policy": "signed",
                                   "ingest_mode": "direct_creator_upload",
                                   "source_variant": "web_720p"})


@pytest.fixture
def app(make_app: Any, mux: FakeMux, keypair: KeyPair) -> Rindle:
    from muxkit import Clip

    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(rindle_mux.plugin, name="mux")
    built: Rindle = make_app(plugin_manager=pm, profiles=[Upload, Clip],
                             streaming=mux_settings(mux, keypair))
    return built


def _row(app: Rindle, asset_id: Any) -> ProviderAsset:
    with app.db.sessionmaker() as s:
        return s.execute(select(ProviderAsset).where(ProviderAsset.asset_id == asset_id)
                         ).scalar_one()


def test_create_link_and_cancel(app: Rindle, mux: FakeMux) -> None:
    ticket = app.streaming.create_direct_upload("upload_clip", cors_origin="https://a.example",
                                                filename="holiday.mov")
    assert ticket.upload_url.startswith("https://") and "upload_url" in repr(ticket)
    row = _row(app, ticket.asset_id)
    assert row.state == "uploading" and row.provider_upload_id in mux.uploads
    [call] = mux.calls("POST")
    assert call.body["new_asset_settings"]["passthrough"] == row.mux_passthrough
    asset = app.get_asset(ticket.asset_id)
    assert asset.storage_key == f"streaming/mux/direct_upload/{ticket.asset_id}"
    assert asset.meta == {"streaming_provider": "mux", "ingest_mode": "direct_creator_upload"}
    # Mux reports the asset it created from the upload
    envelope = {"type": "video.upload.asset_created", "id": "evt-up-1",
                "data": {"id": row.provider_upload_id, "asset_id": "mux-asset-from-upload-9f3A",
                         "new_asset_settings": {"passthrough": row.mux_passthrough}}}
    body = json.dumps(envelope).encode()
    assert app.streaming.handle_webhook("mux", body, {"mux-signature": sign_header(body)}
                                        ).status == 202
    app.jobs.drain(["provider"])
    linked = _row(app, ticket.asset_id)
    assert (linked.state, linked.provider_asset_id) == ("processing",
                                                        "mux-asset-from-upload-9f3A")
    with pytest.raises(RindleError) as info:
        app.streaming.cancel_direct_upload(ticket.asset_id)
    assert info.value.code == "not_cancellable"


def test_cancel_marks_deleted_then_tells_mux(app: Rindle, mux: FakeMux) -> None:
    ticket = app.streaming.create_direct_upload("upload_clip", cors_origin="https://a.example")
    assert app.streaming.cancel_direct_upload(ticket.asset_id) == "deleted"
    row = _row(app, ticket.asset_id)
    assert row.state == "deleted" and mux.uploads[str(row.provider_upload_id)]["status"] == (
        "cancelled")
    assert app.streaming.cancel_direct_upload(ticket.asset_id) == "deleted"  # idempotent


def test_refusals(app: Rindle, mux: FakeMux) -> None:
    with pytest.raises(ProviderSyncFailed, match="cors_origin"):
        app.streaming.create_direct_upload("upload_clip", cors_origin="")
    with pytest.raises(StreamingNotConfigured):
        app.streaming.create_direct_upload("clip", cors_origin="https://a.example")
    mux.then("POST", "/video/v1/uploads", 400, {"error": {}})
    with pytest.raises(ProviderSyncFailed):
        app.streaming.create_direct_upload("upload_clip", cors_origin="https://a.example")
    with app.db.sessionmaker() as s:  # the refused upload left nothing behind
        assert s.execute(select(func.count()).select_from(Asset)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(ProviderAsset)).scalar_one() == 0
