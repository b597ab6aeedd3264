"""The ``overview`` waveform: min/max peaks of the first audio track as JSON.

The audio is decoded by ffmpeg to mono float32 at ``analysis_sample_rate`` (8 kHz), then
read back in buckets (flat memory whatever the length): ``bucket = ceil(n / length)``
samples each, clamped to [-1, 1], each bucket giving ``[round(min, 6), round(max, 6)]``.
The list is cut or padded with ``[0.0, 0.0]`` to exactly ``length``. The document is
``{"length": 1000, "sample_rate": <the source's sample rate>, "peaks": [[min, max], ...]}``.
"""

from __future__ import annotations

import json
import math
import sys
from array import array
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rindle_ffmpeg.arguments import waveform_args
from rindle_ffmpeg.errors import av_error
from rindle_ffmpeg.probe import first_stream
from rindle_ffmpeg.run import run_ffmpeg
from rindle_ffmpeg.settings import AVSettings

__all__ = ["peaks", "render_waveform"]


def _clamp(value: float) -> float:
    return -1.0 if value < -1.0 else 1.0 if value > 1.0 else value


def peaks(raw: Path, length: int) -> list[list[float]]:
    """Bucketed ``[min, max]`` pairs of a little-endian float32 file, exactly ``length`` long.

    :raises ProcessingError: ``empty_waveform`` when the file holds no sample.
    """
    n = raw.stat().st_size // 4
    if n == 0:
        raise av_error("empty_waveform", "the audio track decoded to no samples.")
    bucket = max(1, math.ceil(n / length))
    out: list[list[float]] = []
    with raw.open("rb") as fh:
        while len(out) < length:
            chunk = fh.read(bucket * 4)
            usable = len(chunk) - len(chunk) % 4
            if usable == 0:
                break
            samples = array("f")
            samples.frombytes(chunk[:usable])
            if sys.byteorder == "big":
                samples.byteswap()
            out.append([round(_clamp(min(samples)), 6), round(_clamp(max(samples)), 6)])
    out.extend([0.0, 0.0] for _ in range(length - len(out)))
    return out


def render_waveform(src: Path, dest: Path, recipe: Mapping[str, Any],
                    source: Mapping[str, Any], settings: AVSettings) -> None:
    """Write the peaks document for ``src`` to ``dest``; ``source`` is ffprobe's raw JSON.

    :raises ProcessingError: ``missing_audio_track``, ``invalid_audio_sample_rate``,
        ``empty_waveform``, or a subprocess error.
    """
    stream = first_stream(source, "audio")
    if stream is None:
        raise av_error("missing_audio_track", "a waveform needs an audio track and this "
                       "file has none; remove the waveform variant from this profile.")
    try:
        sample_rate = int(str(stream.get("sample_rate")))
    except ValueError:
        sample_rate = 0
    if sample_rate <= 0:
        raise av_error("invalid_audio_sample_rate",
                       f"the audio track's sample rate {stream.get('sample_rate')!r} is not a "
                       "positive integer; the file is damaged.")
    raw = dest.with_suffix(".raw")
    try:
        run_ffmpeg(waveform_args(src, raw, recipe), rundir=dest.parent, settings=settings)
        length = int(recipe["length"])
        doc = {"length": length, "sample_rate": sample_rate, "peaks": peaks(raw, length)}
        dest.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    finally:
        raw.unlink(missing_ok=True)
