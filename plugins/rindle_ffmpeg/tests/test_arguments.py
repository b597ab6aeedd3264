"""Exact ffmpeg argument lists, the wrapper, and the checks that run before anything does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rindle import variants
from rindle.errors import ProcessingError
from rindle_ffmpeg.arguments import (
    audio_args,
    confine,
    loudnorm_measure_args,
    poster_attempts,
    strip_args,
    validate,
    video_args,
    waveform_args,
    wrap,
)
from rindle_ffmpeg.settings import AVSettings

SRC, DEST = Path("/r/input.mp4"), Path("/r/output.mp4")


def test_web_720p_and_480p() -> None:
    recipe = variants.Video(preset="web_720p").normalized()
    assert video_args(SRC, DEST, recipe) == [
        "-y", "-i", "/r/input.mp4", "-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libx264",
        "-pix_fmt", "yuv420p", "-crf", "23", "-maxrate", "2500k", "-bufsize", "5000k",
        "-vf", "scale=w=1280:h=720:force_original_aspect_ratio=decrease,"
               "pad=1280:720:(ow-iw)/2:(oh-ih)/2:black",
        "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "/r/output.mp4"]
    slow = video_args(SRC, DEST, variants.Video(preset="web_480p", faststart=False).normalized())
    assert "scale=w=854:h=480:force_original_aspect_ratio=decrease,pad=854:480:(ow-iw)/2:" \
           "(oh-ih)/2:black" in slow and "-movflags" not in slow


def test_audio_with_channels_and_loudnorm_passes() -> None:
    mp3 = variants.Audio(preset="mp3_128k", channels=1).normalized()
    assert audio_args(SRC, Path("/r/o.mp3"), mp3) == [
        "-y", "-i", "/r/input.mp4", "-vn", "-map", "0:a:0", "-c:a", "libmp3lame", "-b:a",
        "128k", "-ac", "1", "/r/o.mp3"]
    one = variants.Audio(preset="m4a_128k", normalize=True).normalized()
    assert audio_args(SRC, Path("/r/o.m4a"), one)[-3:] == [
        "-af", "loudnorm=I=-16:TP=-1.5:LRA=11", "/r/o.m4a"]
    two = variants.Audio(preset="m4a_128k", channels=2, normalize=True, two_pass=True)
    assert loudnorm_measure_args(SRC, two.normalized()) == [
        "-y", "-i", "/r/input.mp4", "-vn", "-map", "0:a:0", "-ac", "2", "-af",
        "loudnorm=I=-16:TP=-1.5:LRA=11:print_format=json", "-f", "null", os.devnull]
    measured = {"input_i": "-20.1", "input_tp": "-3.0", "input_lra": "4.2",
                "input_thresh": "-30.5", "target_offset": "0.3"}
    assert audio_args(SRC, Path("/r/o.m4a"), two.normalized(), measured)[-2] == (
        "loudnorm=I=-16:TP=-1.5:LRA=11:measured_I=-20.1:measured_TP=-3.0:measured_LRA=4.2"
        ":measured_thresh=-30.5:offset=0.3:linear=true:print_format=summary")


def test_poster_strategies_strip_and_waveform() -> None:
    jpg = Path("/r/p.jpg")
    assert poster_attempts(SRC, jpg, 0.4) == [
        ("scene_change", ["-y", "-i", "/r/input.mp4", "-vf",
                          "select='gt(scene,0.4)*eq(pict_type,I)'", "-frames:v", "1",
                          "-fps_mode", "vfr", "/r/p.jpg"]),
        ("first_iframe", ["-y", "-i", "/r/input.mp4", "-vf", "select='eq(pict_type,I)'",
                          "-frames:v", "1", "-fps_mode", "vfr", "/r/p.jpg"]),
        ("first_frame", ["-y", "-i", "/r/input.mp4", "-frames:v", "1", "/r/p.jpg"]),
    ]
    strip = variants.Image(preset="video_thumbnail_strip").normalized()
    assert strip_args(SRC, jpg, strip) == [
        "-y", "-i", "/r/input.mp4", "-vf", "fps=1,scale=160:90,tile=4x1:padding=0:margin=0",
        "-frames:v", "1", "/r/p.jpg"]
    wave = variants.Waveform().normalized()
    assert waveform_args(SRC, Path("/r/w.raw"), wave) == [
        "-y", "-i", "/r/input.mp4", "-map", "0:a:0", "-vn", "-ac", "1", "-ar", "8000",
        "-c:a", "pcm_f32le", "-f", "f32le", "/r/w.raw"]


def test_wrapper_prepends_the_caps_and_puts_fs_before_the_output() -> None:
    logical = ["-y", "-i", "/r/in.mp4", "-frames:v", "1", "/r/out.jpg"]
    assert wrap(logical, AVSettings()) == [
        "ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
        "-protocol_whitelist", "file,crypto,data",
        "-format_whitelist", "mov,matroska,mp3,wav,flac,ogg,aac,avi",
        "-timelimit", "300", "-t", "7200", "-y", "-i", "/r/in.mp4", "-frames:v", "1",
        "-fs", "500000000", "/r/out.jpg"]
    capped = wrap(logical, AVSettings(ffmpeg="/opt/ff", cpu_s=5, max_duration_s=9,
                                      max_output_bytes=1000))
    assert capped[0] == "/opt/ff" and capped[capped.index("-timelimit") + 1] == "5"
    assert capped[capped.index("-t") + 1] == "9" and capped[-3:] == ["-fs", "1000",
                                                                      "/r/out.jpg"]


@pytest.mark.parametrize(("argv", "code"), [
    (["ffmpeg", "-protocol_whitelist", "file", "-i", "/r/a;rm -rf x.mp4", "o.mp4"],
     "invalid_format"),
    (["ffmpeg", "-protocol_whitelist", "file", "-i", "/r/$(id).mp4", "o.mp4"],
     "invalid_format"),
    (["ffmpeg", "-protocol_whitelist", "file", "-i", "/r/a&b.mp4", "o.mp4"], "invalid_format"),
    (["ffmpeg", "-i", "/r/in.mp4", "o.mp4"], "missing_protocol_whitelist"),
    (["ffmpeg", "-protocol_whitelist", "file", "-i", "/r/list.M3U8", "o.mp4"],
     "unsupported_ingest_format"),
    (["ffmpeg", "-protocol_whitelist", "file", "-i", "/r/in.mkv", "o.mp4"],
     "unsupported_ingest_format"),
    (["ffmpeg", "-protocol_whitelist", "file", "-f", "dash", "-i", "/r/in", "o.mp4"],
     "unsupported_ingest_format"),
])
def test_validate_refuses(argv: list[str], code: str) -> None:
    with pytest.raises(ProcessingError) as info:
        validate(argv)
    assert info.value.code == code


def test_validate_accepts_every_real_recipe() -> None:
    recipes: list[list[str]] = [
        video_args(SRC, DEST, variants.Video(preset="web_720p").normalized()),
        strip_args(SRC, DEST, variants.Image(preset="video_thumbnail_strip").normalized()),
        *[args for _, args in poster_attempts(SRC, DEST, 0.4)],
    ]
    for logical in recipes:
        validate(wrap(logical, AVSettings()))  # raises on refusal


def test_confine_refuses_paths_outside_the_run_dir(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    confine([run / "in.mp4", run / "sub" / "out.mp4", os.devnull], run)
    (run / "link").symlink_to(tmp_path)
    for bad in (tmp_path / "other.mp4", run / ".." / "x.mp4", run / "link" / "x.mp4"):
        with pytest.raises(ProcessingError) as info:
            confine([bad], run)
        assert info.value.code == "path_outside_run_dir"
