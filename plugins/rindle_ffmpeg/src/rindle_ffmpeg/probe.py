"""The AV probe: ffprobe's JSON reshaped into rindle's probe-owned fields.

ffprobe runs with ``-protocol_whitelist file`` and the media demuxer whitelist, so a
playlist disguised as a media file cannot make it open anything else. Its output is
untrusted: every string is HTML-escaped, stripped of control characters (TAB kept) and cut
to 1024 bytes on a UTF-8 boundary before use.

Deliberate differences from the reference: a cover-art stream (``attached_pic``) does not
make an audio file a video; ffprobe gets the protocol whitelist.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rindle_ffmpeg.arguments import MEDIA_DEMUXERS, validate
from rindle_ffmpeg.errors import av_error
from rindle_ffmpeg.run import run_command
from rindle_ffmpeg.settings import AVSettings

__all__ = ["ffprobe_json", "first_stream", "probe_av", "reshape", "sanitize"]

MAX_STRING_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})


def sanitize(value: Any) -> Any:
    """Every string inside ``value`` HTML-escaped, control-stripped and at most 1024 bytes."""
    if isinstance(value, str):
        text = _CONTROL.sub("", value.translate(_ESCAPES))
        raw = text.encode("utf-8")
        if len(raw) > MAX_STRING_BYTES:
            text = raw[:MAX_STRING_BYTES].decode("utf-8", "ignore")
        return text
    if isinstance(value, Mapping):
        return {sanitize(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize(v) for v in value]
    return value


def ffprobe_json(path: Path, settings: AVSettings, *, demuxers: str = MEDIA_DEMUXERS
                 ) -> dict[str, Any]:
    """ffprobe's ``-show_format -show_streams`` answer for ``path``, sanitised.

    :raises ProcessingError: ``empty_file`` for zero bytes, ``ffprobe_failed`` (corrupt or
        unsupported input, with the redacted stderr tail), ``invalid_json``,
        ``ffmpeg_timeout``.
    :raises ToolNotFound: ffprobe is not installed.
    """
    if path.stat().st_size == 0:
        raise av_error("empty_file", "the file is empty (0 bytes); upload it again.")
    argv = [settings.ffprobe, "-v", "error", "-protocol_whitelist", "file",
            "-format_whitelist", demuxers, "-print_format", "json", "-show_format",
            "-show_streams", str(path)]
    validate(argv)
    result = run_command(argv, timeout_s=settings.timeout_s, rundir=path.parent,
                         failure_code="ffprobe_failed")
    try:
        data = json.loads(result.stdout)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("format"), dict) \
            or not isinstance(data.get("streams"), list):
        raise av_error("invalid_json", "ffprobe did not answer with its JSON format and "
                       "streams; check that RINDLE_FFPROBE_BIN points at ffprobe.")
    return dict(sanitize(data))


def first_stream(data: Mapping[str, Any], codec_type: str) -> dict[str, Any] | None:
    """The first stream of ``codec_type``; cover art never counts as video."""
    for stream in data.get("streams") or []:
        if not isinstance(stream, dict) or stream.get("codec_type") != codec_type:
            continue
        disposition = stream.get("disposition") or {}
        if codec_type == "video" and disposition.get("attached_pic") == 1:
            continue
        return stream
    return None


def reshape(data: Mapping[str, Any]) -> dict[str, Any]:
    """ffprobe JSON -> ``kind``, ``width``, ``height``, ``duration_ms``, track flags, ``metadata``.

    ``kind`` is ``video`` with a (non cover-art) video stream, else ``audio``. Width and
    height are the coded size, present only when both are integers; ``duration_ms`` is
    omitted when ffprobe gives none.
    """
    fmt = data.get("format") or {}
    video, audio = first_stream(data, "video"), first_stream(data, "audio")
    out: dict[str, Any] = {"kind": "video" if video else "audio",
                           "has_video_track": video is not None,
                           "has_audio_track": audio is not None}
    with contextlib.suppress(KeyError, TypeError, ValueError):
        out["duration_ms"] = int(float(fmt["duration"]) * 1000)
    if video is not None:
        width, height = video.get("width"), video.get("height")
        if isinstance(width, int) and isinstance(height, int):
            out["width"], out["height"] = width, height
    out["metadata"] = {"format": fmt.get("tags") or {},
                       "streams": [s.get("tags") or {} for s in data.get("streams") or []
                                   if isinstance(s, dict)]}
    return {k: v for k, v in out.items() if v is not None}


def probe_av(path: Path, settings: AVSettings | None = None) -> dict[str, Any]:
    """Probe one local audio or video file (see :func:`reshape` and :func:`ffprobe_json`)."""
    return reshape(ffprobe_json(path, settings or AVSettings.from_env()))
