"""Every preset rendered by the real ffmpeg from 1-second clips, outputs probed afterwards."""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rindle import variants
from rindle.errors import ProcessingError
from rindle_ffmpeg import plugin
from rindle_ffmpeg.arguments import IMAGE_DEMUXERS
from rindle_ffmpeg.errors import CommandFailed
from rindle_ffmpeg.guard import guard
from rindle_ffmpeg.outputs import verify_output
from rindle_ffmpeg.probe import ffprobe_json, first_stream
from rindle_ffmpeg.settings import AVSettings
from rindle_ffmpeg.transcode import transcode
from rindle_ffmpeg.waveform import peaks

Source = Callable[[str], Path]


def render(source: Source, name: str, spec: Any, workdir: Path) -> dict[str, Any]:
    result = plugin.rindle_transcode(source=source(name), spec=spec, workdir=workdir)
    assert result is not None
    out = Path(result["path"])
    assert out.parent == workdir and out.stat().st_size > 0
    assert [p.name for p in workdir.iterdir()] == [out.name]  # input link and scratch removed
    return dict(result)


def codecs(path: Path, demuxers: str | None = None) -> dict[str, str]:
    data = ffprobe_json(path, AVSettings(), **({"demuxers": demuxers} if demuxers else {}))
    return {s["codec_type"]: s["codec_name"] for s in data["streams"]}


@pytest.mark.parametrize(("preset", "size"), [("web_720p", (1280, 720)),
                                              ("web_480p", (854, 480))])
def test_web_video(preset: str, size: tuple[int, int], source: Source, workdir: Path) -> None:
    result = render(source, "av.mp4", variants.Video(preset=preset), workdir)
    assert (result["content_type"], result["extension"]) == ("video/mp4", ".mp4")
    assert (result["width"], result["height"]) == size
    assert abs(result["duration_ms"] - 1000) <= 250
    assert codecs(result["path"]) == {"video": "h264", "audio": "aac"}
    head = Path(result["path"]).read_bytes()[:4096]
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head  # faststart


def test_silent_video_renders_without_audio(source: Source, workdir: Path) -> None:
    result = render(source, "silent.mp4", variants.Video(preset="web_480p"), workdir)
    assert codecs(result["path"]) == {"video": "h264"}


@pytest.mark.parametrize(("spec", "content_type", "codec"), [
    (variants.Audio(preset="m4a_128k"), "audio/mp4", "aac"),
    (variants.Audio(preset="mp3_128k", channels=2), "audio/mpeg", "mp3"),
    (variants.Audio(preset="m4a_128k", channels=1, normalize=True, two_pass=True),
     "audio/mp4", "aac"),
])
def test_audio(spec: variants.Audio, content_type: str, codec: str, source: Source,
               workdir: Path) -> None:
    result = render(source, "tone.wav", spec, workdir)
    assert result["content_type"] == content_type
    assert abs(result["duration_ms"] - 1000) <= 250 and "width" not in result
    data = ffprobe_json(result["path"], AVSettings())
    stream = first_stream(data, "audio")
    assert stream is not None and stream["codec_name"] == codec
    assert stream["channels"] == (spec.channels or 1)
    assert first_stream(data, "video") is None


def test_audio_from_a_video(source: Source, workdir: Path) -> None:
    result = render(source, "av.mp4", variants.Audio(preset="mp3_128k"), workdir)
    assert codecs(result["path"]) == {"audio": "mp3"}


def test_waveform(source: Source, workdir: Path) -> None:
    result = render(source, "tone.mp3", variants.Waveform(), workdir)
    assert (result["content_type"], result["extension"]) == ("application/json", ".json")
    doc = json.loads(Path(result["path"]).read_text())
    assert doc["length"] == 1000 and len(doc["peaks"]) == 1000
    assert doc["sample_rate"] == 44100  # the source's rate, not the 8 kHz analysis rate
    loud = [p for p in doc["peaks"] if p != [0.0, 0.0]]
    assert len(loud) > 900 and all(-1.0 <= lo <= hi <= 1.0 for lo, hi in doc["peaks"])
    assert max(hi for _, hi in loud) > 0.05  # a real sine, not silence


def test_peaks_bucket_clamp_and_pad(tmp_path: Path) -> None:
    raw = tmp_path / "w.raw"
    raw.write_bytes(array("f", [0.5, -2.0, 0.25, 3.0, -0.125]).tobytes())
    assert peaks(raw, 4) == [[-1.0, 0.5], [0.25, 1.0], [-0.125, -0.125], [0.0, 0.0]]
    raw.write_bytes(b"")
    with pytest.raises(ProcessingError) as info:
        peaks(raw, 4)
    assert info.value.code == "empty_waveform"


def test_poster_and_strip(source: Source, workdir: Path) -> None:
    poster = render(source, "av.mp4", variants.Image(preset="video_poster_scene"), workdir)
    assert (poster["content_type"], poster["extension"]) == ("image/jpeg", ".jpg")
    assert (poster["width"], poster["height"]) == (160, 120)
    assert poster["strategy"] in ("scene_change", "first_iframe", "first_frame")
    assert Path(poster["path"]).read_bytes()[:3] == b"\xff\xd8\xff"
    Path(poster["path"]).unlink()
    strip = render(source, "av.mp4", variants.Image(preset="video_thumbnail_strip"), workdir)
    assert (strip["width"], strip["height"]) == (640, 90)
    assert codecs(strip["path"], IMAGE_DEMUXERS) == {"video": "mjpeg"}


def test_specs_that_are_not_av_are_left_alone(source: Source, workdir: Path) -> None:
    spec = variants.Image(mode="fit", width=64)
    assert plugin.rindle_transcode(source=source("av.mp4"), spec=spec, workdir=workdir) is None


@pytest.mark.parametrize(("name", "spec", "code"), [
    ("tone.mp3", variants.Video(preset="web_480p"), "missing_video_track"),
    ("silent.mp4", variants.Audio(preset="m4a_128k"), "missing_audio_track"),
    ("silent.mp4", variants.Waveform(), "missing_audio_track"),
    ("av.mp4", variants.Audio(preset="m4a_128k", two_pass=True), "invalid_audio_recipe"),
    ("corrupt.mp4", variants.Video(preset="web_480p"), "ffprobe_failed"),
    ("empty.mp4", variants.Image(preset="video_poster_scene"), "empty_file"),
])
def test_clear_refusals(name: str, spec: Any, code: str, source: Source,
                        workdir: Path) -> None:
    with pytest.raises(ProcessingError) as info:
        transcode(source(name), spec, workdir)
    assert info.value.code == code and info.value.message
    assert list(workdir.iterdir()) == []


def test_output_size_cap(source: Source, workdir: Path) -> None:
    with pytest.raises(ProcessingError) as info:
        transcode(source("av.mp4"), variants.Video(preset="web_480p"), workdir,
                  AVSettings(max_output_bytes=4096))
    assert info.value.code == "output_too_large" and "RINDLE_FFMPEG_MAX_OUTPUT" in str(
        info.value)


def test_source_with_shell_characters_is_refused(media: dict[str, Path], tmp_path: Path
                                                 ) -> None:
    workdir = tmp_path / "a$b" / "out"
    workdir.mkdir(parents=True)
    src = workdir.parent / "source.mp4"
    src.write_bytes(media["av.mp4"].read_bytes())
    with pytest.raises(ProcessingError) as info:
        transcode(src, variants.Image(preset="video_poster_scene"), workdir)
    assert info.value.code == "invalid_format"


def test_matroska_named_source_is_refused(source: Source, workdir: Path,
                                          media: dict[str, Path]) -> None:
    src = workdir.parent / "source.mkv"
    src.write_bytes(media["av.mp4"].read_bytes())
    with pytest.raises(ProcessingError) as info:
        transcode(src, variants.Image(preset="video_poster_scene"), workdir)
    assert info.value.code == "unsupported_ingest_format"


def test_output_post_condition(source: Source, workdir: Path, settings: AVSettings) -> None:
    video = variants.Video(preset="web_480p").normalized()
    result = render(source, "silent.mp4", variants.Video(preset="web_480p"), workdir)
    out = Path(result["path"])
    expectations = [
        (video, {"duration_ms": 5000}, "output_duration_mismatch"),
        (video, {"duration_ms": 1000, "has_audio_track": True}, "output_track_missing"),
        (variants.Audio(preset="m4a_128k").normalized(), {}, "output_kind_mismatch"),
    ]
    for recipe, src, code in expectations:
        with pytest.raises(ProcessingError) as info:
            verify_output(out, recipe, src, settings)
        assert info.value.code == code
    doc = workdir / "w.json"
    doc.write_text(json.dumps({"length": 10, "peaks": []}))
    with pytest.raises(ProcessingError) as wave:
        verify_output(doc, variants.Waveform().normalized(), {}, settings)
    assert wave.value.code == "waveform_length_mismatch"


@pytest.mark.parametrize(("env", "code"), [
    ({"AWS_LAMBDA_FUNCTION_NAME": "fn"}, "unsupported_ephemeral_runtime"),
    ({"VERCEL": "1"}, "unsupported_ephemeral_runtime"),
])
def test_runtime_guard(env: dict[str, str], code: str, tmp_path: Path) -> None:
    video = variants.Video(preset="web_720p").normalized()
    with pytest.raises(ProcessingError) as info:
        guard(video, tmp_path, AVSettings(), env)
    assert info.value.code == code
    guard(variants.Audio(preset="m4a_128k").normalized(), tmp_path, AVSettings(), env)
    with pytest.raises(ProcessingError) as disk:
        guard(variants.Waveform().normalized(), tmp_path,
              AVSettings(max_output_bytes=10 ** 18), {})
    assert disk.value.code == "insufficient_disk_headroom"
    poster = variants.Image(preset="video_poster_scene").normalized()
    guard(poster, tmp_path, AVSettings(max_output_bytes=10 ** 18), env)  # exempt


def test_failed_transcode_reports_ffmpeg(source: Source, workdir: Path) -> None:
    src = source("av.mp4")
    data = src.read_bytes()
    src.write_bytes(data[:len(data) // 3])  # truncated: ffprobe may pass, decoding fails
    try:
        transcode(src, variants.Video(preset="web_480p"), workdir)
    except CommandFailed as exc:
        assert exc.code in ("ffmpeg_failed", "ffprobe_failed") and exc.stderr_tail
    except ProcessingError as exc:
        assert exc.code in ("output_duration_mismatch", "ffmpeg_missing_output")
    else:
        pytest.fail("a truncated source rendered as if it were whole")


def test_poster_of_undecodable_video_fails_after_every_strategy(source: Source,
                                                                workdir: Path) -> None:
    src = source("av.mp4")
    data = bytearray(src.read_bytes())
    mdat, moov = data.find(b"mdat"), data.rfind(b"moov")
    assert 0 < mdat < moov  # the fixture keeps its index after the media data
    data[mdat + 4:moov - 4] = bytes(moov - 4 - mdat - 4)  # index intact, every frame zeroed
    src.write_bytes(bytes(data))
    with pytest.raises(ProcessingError) as info:
        transcode(src, variants.Image(preset="video_poster_scene"), workdir)
    assert info.value.code in ("ffmpeg_failed", "ffmpeg_missing_output")
