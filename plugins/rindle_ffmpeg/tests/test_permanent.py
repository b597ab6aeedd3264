"""Which failures are permanent (not retried), and the duration cap checked before ffmpeg."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from rindle import variants
from rindle.errors import ProcessingError
from rindle_ffmpeg.errors import (
    PERMANENT_CODES,
    CommandFailed,
    CommandTimeout,
    ToolNotFound,
    av_error,
)
from rindle_ffmpeg.settings import AVSettings
from rindle_ffmpeg.transcode import check_duration, recipe_for, transcode

WEB = variants.Video(preset="web_480p")
POSTER = variants.Image(preset="video_poster_scene")


def test_only_input_or_recipe_faults_are_permanent() -> None:
    assert {
        "duration_exceeded", "empty_file", "empty_waveform", "ffmpeg_missing_output",
        "invalid_audio_recipe", "invalid_audio_sample_rate", "missing_audio_track",
        "missing_video_track", "output_duration_mismatch", "output_too_large",
        "unsupported_ingest_format"} == PERMANENT_CODES
    assert av_error("output_too_large", "x").permanent is True
    assert av_error("insufficient_disk_headroom", "x").permanent is False
    failed = CommandFailed("x", code="ffmpeg_failed", status=1, stderr_tail="")
    timeout = CommandTimeout("x", code="ffmpeg_timeout", status="timeout", stderr_tail="")
    assert (failed.permanent, timeout.permanent, ToolNotFound("x").permanent) == (
        False, False, False)


@pytest.mark.parametrize(("spec", "declared_ms", "refused"), [
    (WEB, 7_200_000, False),           # exactly the cap
    (WEB, 7_200_001, True),
    (variants.Audio(preset="m4a_128k"), 7_200_001, True),
    (POSTER, 4_294_967_295_000, False),  # one frame: the duration does not matter
    (variants.Waveform(), 4_294_967_295_000, False),
])
def test_the_duration_cap(spec: object, declared_ms: int, refused: bool) -> None:
    recipe = recipe_for(spec)
    assert recipe is not None
    source = {"duration_ms": declared_ms}
    if not refused:
        check_duration(recipe, source, AVSettings())
        return
    with pytest.raises(ProcessingError) as info:
        check_duration(recipe, source, AVSettings())
    assert (info.value.code, info.value.permanent) == ("duration_exceeded", True)
    assert "RINDLE_FFMPEG_MAX_DURATION" in info.value.message


def test_a_video_declaring_weeks_is_refused_before_ffmpeg_runs(
        source: Callable[[str], Path], workdir: Path) -> None:
    path = source("av.mp4")
    data = bytearray(path.read_bytes())
    at = data.find(b"mvhd")
    (timescale,) = struct.unpack(">I", data[at + 16:at + 20])
    data[at + 20:at + 24] = struct.pack(">I", 0xFFFFFFFF)  # 2**32-1 ticks: 49 days at 1 kHz
    path.write_bytes(bytes(data))
    with pytest.raises(ProcessingError) as info:
        transcode(path, WEB, workdir)
    assert (info.value.code, info.value.permanent) == ("duration_exceeded", True)
    assert f"{0xFFFFFFFF // timescale} s" in info.value.message
    assert list(workdir.iterdir()) == []  # no output, and the input link is gone
