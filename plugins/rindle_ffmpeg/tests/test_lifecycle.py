"""The whole AV lifecycle through rindle (SQLite and PostgreSQL): the plugin found through
its entry point, a proxied upload, promotion with the ffprobe probe and pymediainfo
analysis, variants rendered by the real ffmpeg into local storage, and doctor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rindle import Profile, Rindle, variants
from rindle.plugins import list_plugins
from rindle_ffmpeg import plugin
from rindle_ffmpeg.probe import ffprobe_json, first_stream
from rindle_ffmpeg.settings import AVSettings


class Clip(Profile):
    name = "clip"
    allow_mime = ("video/mp4",)
    max_bytes = 5 * 1024 * 1024
    variants = {"web": variants.Video(preset="web_480p"),
                "poster": variants.Image(preset="video_poster_scene")}


class Track(Profile):
    name = "track"
    allow_mime = ("audio/*",)
    variants = {"m4a": variants.Audio(preset="m4a_128k"), "wave": variants.Waveform()}


class Mismatch(Profile):
    name = "mismatch"
    allow_mime = ("audio/*",)
    variants = {"web": variants.Video(preset="web_480p")}


@pytest.fixture
def av_app(make_app: Callable[..., Rindle], monkeypatch: pytest.MonkeyPatch) -> Rindle:
    """An app that loads only the ``ffmpeg`` entry point (plus the built-ins)."""
    monkeypatch.setenv("RINDLE_LOAD_PLUGINS", "ffmpeg")
    return make_app(profiles=[Clip, Track, Mismatch], load_entrypoints=True)


def stored(app: Rindle, key: str, tmp_path: Path) -> Path:
    dest = tmp_path / Path(key).name
    app.storage().download(key, dest)
    return dest


def test_video_upload_renders_web_video_and_poster(av_app: Rindle, media: dict[str, Path],
                                                   tmp_path: Path) -> None:
    assert "ffmpeg" in [p.name for p in list_plugins(av_app.pm)]
    asset = av_app.upload("clip", media["av.mp4"], filename="holiday.mp4")
    av_app.jobs.drain()
    asset = av_app.get_asset(asset.id)
    assert asset.state == "ready", asset.error_reason
    assert (asset.kind, asset.content_type, asset.width, asset.height) == (
        "video", "video/mp4", 160, 120)
    assert asset.has_video_track and asset.has_audio_track and asset.duration_ms is not None
    assert asset.meta["av"]["video"]["codec"] == "AVC"
    assert av_app.reprobe(asset.id).changed == {}  # the same probe through the repair verb

    web, poster = asset.variants["web"], asset.variants["poster"]
    assert (web.state, web.content_type, web.width, web.height) == (
        "ready", "video/mp4", 854, 480)
    assert web.storage_key is not None and web.storage_key.endswith(".mp4")
    assert web.duration_ms is not None and abs(web.duration_ms - asset.duration_ms) <= 250
    data = ffprobe_json(stored(av_app, web.storage_key, tmp_path), AVSettings())
    assert {s["codec_name"] for s in data["streams"]} == {"h264", "aac"}
    assert av_app.storage().head(web.storage_key).size == web.byte_size

    assert (poster.state, poster.content_type, poster.width, poster.height) == (
        "ready", "image/jpeg", 160, 120)
    assert poster.storage_key is not None
    jpeg = stored(av_app, poster.storage_key, tmp_path).read_bytes()
    assert jpeg[:3] == b"\xff\xd8\xff" and len(jpeg) == poster.byte_size


def test_audio_upload_renders_m4a_and_waveform(av_app: Rindle, media: dict[str, Path],
                                               tmp_path: Path) -> None:
    asset = av_app.upload("track", media["tone.mp3"], filename="tone.mp3")
    av_app.jobs.drain()
    asset = av_app.get_asset(asset.id)
    assert asset.state == "ready", asset.error_reason
    assert (asset.kind, asset.content_type, asset.width, asset.has_video_track) == (
        "audio", "audio/mpeg", None, None)
    m4a, wave = asset.variants["m4a"], asset.variants["wave"]
    assert (m4a.state, m4a.content_type) == ("ready", "audio/mp4")
    assert m4a.storage_key is not None and wave.storage_key is not None
    stream = first_stream(ffprobe_json(stored(av_app, m4a.storage_key, tmp_path),
                                       AVSettings()), "audio")
    assert stream is not None and stream["codec_name"] == "aac"
    assert (wave.state, wave.content_type) == ("ready", "application/json")
    assert b'"length":1000' in stored(av_app, wave.storage_key, tmp_path).read_bytes()


def test_corrupt_video_is_quarantined_with_the_reason(av_app: Rindle,
                                                      media: dict[str, Path]) -> None:
    asset = av_app.upload("clip", media["corrupt.mp4"], filename="broken.mp4")
    av_app.jobs.drain()
    asset = av_app.get_asset(asset.id)
    assert asset.state == "quarantined"
    assert asset.error_reason is not None and asset.error_reason.startswith("ffprobe_failed:")
    assert "<run>" in asset.error_reason or "Invalid data" in asset.error_reason


def test_a_recipe_the_source_cannot_feed_fails_with_its_code(av_app: Rindle,
                                                            media: dict[str, Path]) -> None:
    asset = av_app.upload("mismatch", media["tone.mp3"], filename="tone.mp3")
    av_app.jobs.drain()
    web = av_app.get_asset(asset.id).variants["web"]
    assert web.state == "failed" and web.storage_key is None
    assert web.error_reason is not None
    assert web.error_reason.startswith("missing_video_track: a video variant needs")


def test_doctor_reports_ffmpeg(av_app: Rindle, monkeypatch: pytest.MonkeyPatch,
                               tmp_path: Path) -> None:
    checks = {c.name: c for c in av_app.ops.doctor().checks if c.component == "ffmpeg"}
    assert {n: c.status for n, c in checks.items()} == {
        "ffmpeg_runtime": "ok", "ffprobe_runtime": "ok", "ffmpeg_encoders": "ok"}
    assert "ffmpeg version" in checks["ffmpeg_runtime"].message
    monkeypatch.setenv("RINDLE_FFMPEG_BIN", str(tmp_path / "missing-ffmpeg"))
    broken = {c.name: c for c in plugin.rindle_doctor_checks(app=av_app)}
    assert broken["ffmpeg_runtime"].status == "error"  # AV profiles are configured
    assert broken["ffmpeg_runtime"].fix is not None
    assert "RINDLE_FFMPEG_BIN" in broken["ffmpeg_runtime"].fix
    text = av_app.ops.doctor().render()
    assert "ERROR  ffmpeg_runtime:" in text and "Fix: install ffmpeg 5.1" in text
    assert broken["ffprobe_runtime"].status == "ok" and "ffmpeg_encoders" not in broken
