"""Provider value types, settings parsing and registry wiring (no provider I/O)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rindle import Rindle
from rindle.errors import ConfigError, StreamingNotConfigured, UnknownBackend
from rindle.streaming import (
    CreatedAsset,
    DirectUpload,
    LiveAsset,
    PlaybackURL,
    ProviderConfig,
    ProviderEvent,
    normalize_playback_ids,
    redact_id,
)

from .conftest import LoopProvider

SECRET_ID = "AbCd1234EfGh5678IjKl9012MnOp3456QrSt"


def test_redact_id() -> None:
    assert redact_id(SECRET_ID) == "...QrSt"
    assert redact_id(None) is None
    assert redact_id("abc") == "...redacted"


def test_reprs_never_show_ids_urls_or_raw_metadata() -> None:
    items = [CreatedAsset(SECRET_ID, ["pb-secret-1"]),
             LiveAsset("ready", ["pb-secret-1"], {"passthrough": "raw-secret"}),
             DirectUpload("https://upload.example/secret-url", SECRET_ID),
             PlaybackURL("https://stream.example/pb.m3u8?token=secret-jwt"),
             ProviderEvent(type="ready", event_type="video.asset.ready", event_id="e1",
                           provider_asset_id=SECRET_ID, raw={"data": {"x": "raw-secret"}},
                           passthrough="pt-secret")]
    text = " ".join(repr(i) for i in items)
    for secret in (SECRET_ID, "pb-secret-1", "raw-secret", "secret-url", "secret-jwt",
                   "pt-secret"):
        assert secret not in text
    assert "...QrSt" in text


def test_event_round_trips_through_job_args() -> None:
    event = ProviderEvent(type="errored", event_type="video.asset.errored", event_id="e1",
                          provider_asset_id="a1", upload_id="u1", playback_ids=["p1"],
                          state="errored", occurred_at=dt.datetime(2026, 5, 6, tzinfo=dt.UTC),
                          raw={"data": {"id": "a1"}}, error="input_error: x",
                          passthrough="pt")
    assert ProviderEvent.from_dict(event.to_dict()) == event
    assert event.data == {"id": "a1"}


def test_normalize_playback_ids() -> None:
    assert normalize_playback_ids([{"id": "a", "policy": "signed"}, "b", 3, {"x": 1}]) == [
        "a", "b"]
    assert normalize_playback_ids(None) == [] and normalize_playback_ids("a") == []


def test_the_old_spelling_is_the_same_function() -> None:
    import rindle.streaming

    assert rindle.streaming.normalise_playback_ids is normalize_playback_ids


@pytest.mark.parametrize(("table", "message"), [
    ("not a table", "must be a table"),
    ({"provider_polling_floor_seconds": 0}, "provider_polling_floor_seconds"),
    ({"provider_polling_batch_size": "10"}, "provider_polling_batch_size"),
    ({"provider_stuck_threshold_seconds": True}, "provider_stuck_threshold_seconds"),
    ({"backend": ""}, "backend"),
])
def test_bad_tables_are_config_errors(table: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ProviderConfig.parse("loop", table)


def test_defaults_and_core_keys_stay_in_core() -> None:
    cfg = ProviderConfig.parse("loop", {"secret": "x" * 32, "provider_stuck_threshold_seconds": 5})
    assert (cfg.backend, cfg.polling_floor_seconds, cfg.polling_batch_size,
            cfg.stuck_threshold_seconds) == ("loop", 30, 1000, 5)
    assert cfg.settings == {"secret": "x" * 32}
    assert "x" * 32 not in repr(cfg)


def test_app_streaming_builds_providers_from_settings(make_stream_app: Any) -> None:
    app: Rindle = make_stream_app(secret="y" * 40, provider_polling_batch_size=5)
    provider = app.streaming.provider("loop")
    assert isinstance(provider, LoopProvider) and provider.secret == "y" * 40
    assert app.streaming.provider("loop") is provider
    assert app.streaming.streaming_profiles() == {"stream": "loop"}
    assert app.streaming.provider_for("stream") is provider
    with pytest.raises(StreamingNotConfigured):
        app.streaming.provider("mux")
    assert {k: q for k, q in app.jobs.kinds.items() if k.startswith("rindle.provider.")} == {
        "rindle.provider.sync_due": "provider", "rindle.provider.sync": "provider",
        "rindle.provider.webhook": "provider", "rindle.provider.ingest": "provider"}


def test_unknown_backend_fails_at_startup(make_app: Any) -> None:
    with pytest.raises(UnknownBackend, match="rindle-mux"):
        make_app(streaming={"mux": {}})


def test_a_profile_streaming_through_an_unconfigured_provider_fails_at_startup(
        make_app: Any) -> None:
    from .conftest import Stream

    with pytest.raises(ConfigError, match=r"streams through 'loop', which is not configured"):
        make_app(profiles=[Stream])


def test_settings_repr_hides_provider_secrets(make_stream_app: Any) -> None:
    app: Rindle = make_stream_app(secret="z" * 40)
    text = repr(app.settings) + repr(app) + repr(app.streaming)
    assert "z" * 40 not in text and "test-secret" not in text and "loop" in text


def test_cron_can_schedule_the_coordinator(stream_app: Rindle) -> None:
    from rindle.jobs.cron import parse_schedule

    [entry] = parse_schedule({"provider_sync_due": {"schedule": "* * * * *",
                                                    "kind": "rindle.provider.sync_due"}},
                             stream_app.jobs)
    assert entry.kind == "rindle.provider.sync_due"
