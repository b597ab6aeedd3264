"""ffmpeg argument lists: one builder per recipe, the safety wrapper, and the checks.

Builders return the *logical* list (``-y -i SRC ... DEST``, output last). :func:`wrap`
turns it into what runs::

    ffmpeg -hide_banner -nostdin -nostats -loglevel error
           -protocol_whitelist file,crypto,data -format_whitelist <demuxers>
           -timelimit <cpu_s> -t <max_duration_s> <logical minus DEST> -fs <max_bytes> DEST

and :func:`validate` refuses it before anything runs when it carries shell metacharacters
(``invalid_format``), lacks the protocol whitelist (``missing_protocol_whitelist``), or
names HLS, DASH or Matroska ingest (``unsupported_ingest_format``); :func:`confine`
refuses input and output paths outside the run directory (``path_outside_run_dir``).

The demuxer whitelist is a hardening over the protocol whitelist: an HLS or concat
playlist disguised as a media file is refused before it can make ffmpeg open other local
files (the ``file`` protocol alone would allow that).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rindle_ffmpeg.errors import av_error
from rindle_ffmpeg.settings import AVSettings

__all__ = [
    "IMAGE_DEMUXERS",
    "LOUDNORM",
    "MEDIA_DEMUXERS",
    "PROTOCOL_WHITELIST",
    "audio_args",
    "confine",
    "loudnorm_measure_args",
    "poster_attempts",
    "strip_args",
    "validate",
    "video_args",
    "waveform_args",
    "wrap",
]

PROTOCOL_WHITELIST = "file,crypto,data"
#: Demuxers an original may be read with (MP4/QuickTime family, WebM/Matroska, MP3, WAV,
#: FLAC, Ogg, ADTS AAC, AVI). Playlists (hls, dash, concat) are deliberately absent.
MEDIA_DEMUXERS = "mov,matroska,mp3,wav,flac,ogg,aac,avi"
#: Demuxers an image output is probed with.
IMAGE_DEMUXERS = "image2,jpeg_pipe,png_pipe,webp_pipe"
LOUDNORM = "loudnorm=I=-16:TP=-1.5:LRA=11"
_CODECS = {"h264": "libx264", "aac": "aac", "mp3": "libmp3lame"}

_SHELL_CHARS = re.compile(r"[;&|`$<>]")
_INGEST_EXT = re.compile(r"\.(?:m3u8|mpd|mkv)\b", re.IGNORECASE)
_INGEST_FORMAT = re.compile(r"-f\s+(?:hls|dash|matroska)", re.IGNORECASE)


def wrap(logical: Sequence[str], settings: AVSettings, *, loglevel: str = "error",
         demuxers: str = MEDIA_DEMUXERS) -> list[str]:
    """The full ffmpeg argv for ``logical`` (whose last element is the output path)."""
    *head, dest = logical
    return [settings.ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", loglevel,
            "-protocol_whitelist", PROTOCOL_WHITELIST, "-format_whitelist", demuxers,
            "-timelimit", str(settings.cpu_s), "-t", str(settings.max_duration_s),
            *head, "-fs", str(settings.max_output_bytes), dest]


def validate(argv: Sequence[str]) -> None:
    """Refuse an ffmpeg argv before it runs; ``argv[0]`` (the executable) is not inspected.

    :raises ProcessingError: code ``invalid_format``, ``missing_protocol_whitelist`` or
        ``unsupported_ingest_format`` (first failure wins).
    """
    line = " ".join(["ffmpeg", *argv[1:]])
    if _SHELL_CHARS.search(line) or "$(" in line:
        raise av_error("invalid_format", "the ffmpeg arguments contain shell metacharacters "
                       "(; & | ` $ < >); rename the file or move tmp_dir to a plain path.")
    if "-protocol_whitelist" not in argv:
        raise av_error("missing_protocol_whitelist",
                       "refusing to run ffmpeg without -protocol_whitelist.")
    if _INGEST_EXT.search(line) or _INGEST_FORMAT.search(line):
        raise av_error("unsupported_ingest_format", "HLS, DASH and Matroska (.m3u8, .mpd, "
                       ".mkv) are not accepted as ffmpeg input; upload MP4 or WebM.")


def confine(paths: Sequence[str | Path], rundir: Path) -> None:
    """Refuse any path that does not resolve inside ``rundir`` (the null device is allowed).

    :raises ProcessingError: code ``path_outside_run_dir``.
    """
    root = rundir.resolve()
    for path in paths:
        if str(path) == os.devnull:
            continue
        resolved = Path(path).resolve()
        if resolved != root and not resolved.is_relative_to(root):
            raise av_error("path_outside_run_dir",
                           "an ffmpeg input or output lies outside the run directory; "
                           "this is a bug in the caller, nothing was run.")


def io_paths(logical: Sequence[str]) -> list[str]:
    """The inputs (the argument after each ``-i``) and the output (last) of a logical list."""
    inputs = [logical[i + 1] for i, arg in enumerate(logical[:-1]) if arg == "-i"]
    return [*inputs, logical[-1]]


def video_args(src: Path, dest: Path, recipe: Mapping[str, Any]) -> list[str]:
    """Web H.264/AAC MP4: scaled to fit ``width`` x ``height`` and letterboxed."""
    w, h = recipe["width"], recipe["height"]
    scale = (f"scale=w={w}:h={h}:force_original_aspect_ratio=decrease,"
             f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:black")
    args = ["-y", "-i", str(src), "-map", "0:v:0", "-map", "0:a:0?",
            "-c:v", _CODECS[recipe["video_codec"]], "-pix_fmt", "yuv420p",
            "-crf", str(recipe["crf"]), "-maxrate", "2500k", "-bufsize", "5000k",
            "-vf", scale, "-c:a", _CODECS[recipe["audio_codec"]],
            "-b:a", f"{recipe['audio_bitrate_kbps']}k"]
    if recipe.get("faststart", True):
        args += ["-movflags", "+faststart"]
    return [*args, str(dest)]


def poster_attempts(src: Path, dest: Path, threshold: float) -> list[tuple[str, list[str]]]:
    """The poster strategies in order: scene change, first I-frame, first frame."""
    s, d = str(src), str(dest)
    return [
        ("scene_change", ["-y", "-i", s, "-vf",
                          f"select='gt(scene,{threshold:.1f})*eq(pict_type,I)'",
                          "-frames:v", "1", "-fps_mode", "vfr", d]),
        ("first_iframe", ["-y", "-i", s, "-vf", "select='eq(pict_type,I)'", "-frames:v", "1",
                          "-fps_mode", "vfr", d]),
        ("first_frame", ["-y", "-i", s, "-frames:v", "1", d]),
    ]


def strip_args(src: Path, dest: Path, recipe: Mapping[str, Any]) -> list[str]:
    """One image of ``strip_count`` thumbnails side by side, one per ``1/fps`` seconds."""
    vf = (f"fps={recipe['fps']},scale={recipe['thumb_width']}:{recipe['thumb_height']},"
          f"tile={recipe['strip_count']}x1:padding=0:margin=0")
    return ["-y", "-i", str(src), "-vf", vf, "-frames:v", "1", str(dest)]


def _channels(recipe: Mapping[str, Any]) -> list[str]:
    channels = recipe.get("channels")
    return ["-ac", str(channels)] if channels in (1, 2) else []


def audio_args(src: Path, dest: Path, recipe: Mapping[str, Any],
               measured: Mapping[str, Any] | None = None) -> list[str]:
    """Audio-only transcode; ``normalize`` adds loudnorm, with ``measured`` the second pass."""
    args = ["-y", "-i", str(src), "-vn", "-map", "0:a:0", "-c:a",
            _CODECS[recipe["audio_codec"]], "-b:a", f"{recipe['audio_bitrate_kbps']}k",
            *_channels(recipe)]
    if recipe.get("normalize"):
        flt = LOUDNORM
        if measured is not None:
            flt += (f":measured_I={measured['input_i']}:measured_TP={measured['input_tp']}"
                    f":measured_LRA={measured['input_lra']}"
                    f":measured_thresh={measured['input_thresh']}"
                    f":offset={measured['target_offset']}:linear=true:print_format=summary")
        args += ["-af", flt]
    return [*args, str(dest)]


def loudnorm_measure_args(src: Path, recipe: Mapping[str, Any]) -> list[str]:
    """The first loudnorm pass: measure only, print JSON, write nothing."""
    return ["-y", "-i", str(src), "-vn", "-map", "0:a:0", *_channels(recipe),
            "-af", f"{LOUDNORM}:print_format=json", "-f", "null", os.devnull]


def waveform_args(src: Path, raw: Path, recipe: Mapping[str, Any]) -> list[str]:
    """Decode the first audio stream to mono little-endian float32 at the analysis rate."""
    return ["-y", "-i", str(src), "-map", "0:a:0", "-vn", "-ac", "1",
            "-ar", str(recipe["analysis_sample_rate"]), "-c:a", "pcm_f32le", "-f", "f32le",
            str(raw)]
