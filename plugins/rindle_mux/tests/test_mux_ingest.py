"""Server-push ingest against the loopback Mux: a ready source variant becomes a Mux asset
created from a signed URL of it, on both dialects."""

from __future__ import annotations

from typing import Any

from muxkit import Clip, FakeMux, ready_clip
from sqlalchemy import select

from rindle import Rindle
from rindle.domain.models import Asset, Job, ProviderAsset, Variant
from rindle.streaming.ingest import INGEST, enqueue_server_push


def _row(app: Rindle, asset: Asset) -> ProviderAsset | None:
    with app.db.sessionmaker() as s:
        return s.execute(select(ProviderAsset).where(ProviderAsset.asset_id == asset.id)
                         ).scalar_one_or_none()


def test_ready_source_variant_is_pushed_to_mux(mux_app: Rindle, mux: FakeMux,
                                               events: list[Any]) -> None:
    asset, variant = ready_clip(mux_app)
    assert mux_app.jobs.drain(["provider"]) == 1
    [call] = mux.calls("POST")
    source = call.body["inputs"][0]["url"]
    assert variant.storage_key is not None and variant.storage_key in source
    assert "token=" in source or "sig" in source  # a signed delivery URL
    assert call.body["playback_policies"] == ["signed"]
    row = _row(mux_app, asset)
    assert row is not None and row.state == "processing"
    assert row.provider_asset_id in mux.assets and row.playback_ids
    assert (row.playback_policy, row.ingest_mode) == ("signed", "server_push")
    stops = [m for e, _, m in events if e == "rindle.provider.ingest.stop"]
    assert stops and stops[0]["asset_id"] == "..." + str(row.provider_asset_id)[-4:]
    # a re-run is idempotent: no second Mux asset
    with mux_app.db.transaction() as s:
        enqueue_server_push(mux_app, s, asset, "web_720p", variant.recipe_digest)
    mux_app.jobs.drain(["provider"])
    assert len(mux.calls("POST")) == 1


def _ingest_events(events: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """The ingest's start/stop/exception events so far (name suffix and metadata), cleared."""
    out = [(e.rpartition(".")[2], m) for e, _, m in events
           if e.startswith("rindle.provider.ingest.")]
    events.clear()
    return out


def test_create_failure_is_retried_while_no_provider_id(mux_app: Rindle, mux: FakeMux,
                                                        events: list[Any]) -> None:
    for _ in range(4):
        mux.then("POST", "/video/v1/assets", 500, {"error": {}})
    asset, _ = ready_clip(mux_app)
    mux_app.jobs.drain(["provider"])
    row = _row(mux_app, asset)
    assert row is not None and row.state == "uploading" and row.provider_asset_id is None
    base = {"profile": "clip", "provider": "mux", "asset_id": None,
            "variant_name": "web_720p"}
    assert _ingest_events(events) == [("start", base), ("exception", {
        **base, "kind": "error", "reason": "provider_unavailable"})]
    mux_app.jobs.drain(["provider"], with_scheduled=True)  # the retry creates it
    row = _row(mux_app, asset)
    assert row is not None and row.state == "processing" and row.provider_asset_id
    tail = "..." + row.provider_asset_id[-4:]
    assert _ingest_events(events) == [("start", base), ("stop", {
        **base, "asset_id": tail, "state": "processing", "result": "created"})]
    with mux_app.db.transaction() as s:  # pushed already: ends unchanged, no provider call
        enqueue_server_push(mux_app, s, asset, "web_720p", Clip.recipe_digest("web_720p"))
    mux_app.jobs.drain(["provider"])
    assert _ingest_events(events) == [("start", base), ("stop", {
        **base, "asset_id": tail, "state": "processing", "result": "unchanged"})]
    assert len(mux.calls("POST")) == 5


def test_stale_source_cancels_without_calling_mux(mux_app: Rindle, mux: FakeMux,
                                                  events: list[Any]) -> None:
    _, variant = ready_clip(mux_app)
    with mux_app.db.transaction() as s:
        s.get(Variant, variant.id).recipe_digest = "0" * 64  # type: ignore[union-attr]
    mux_app.jobs.drain(["provider"])
    with mux_app.db.sessionmaker() as s:
        job = s.execute(select(Job).where(Job.kind == INGEST)).scalar_one()
    assert (job.state, job.last_error) == ("cancelled", "stale_source:recipe_changed")
    assert mux.calls("POST") == []
    assert [(name, m.get("kind"), m.get("reason")) for name, m in _ingest_events(events)] == [
        ("start", None, None), ("exception", "cancelled", "stale_source:recipe_changed")]


def test_other_variants_and_profiles_enqueue_nothing(mux_app: Rindle) -> None:
    with mux_app.db.transaction() as s:
        asset = Asset(profile="clip", storage_key="k", state="ready", kind="video")
        assert enqueue_server_push(mux_app, s, asset, "poster", "d") is False
        other = Asset(profile="nope", storage_key="k2", state="ready", kind="video")
        assert enqueue_server_push(mux_app, s, other, "web_720p", "d") is False
