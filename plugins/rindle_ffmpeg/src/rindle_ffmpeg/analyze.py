"""Analysis with pymediainfo (libmediainfo ships inside its wheel): a small metadata dict.

The answer is JSON-safe and bounded: container and per-track codec names, bit rates,
frame rate, sample rate and channel count of the first video and audio track, plus the
sanitised container/stream tags the probe found. Strings go through the probe's sanitiser.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pymediainfo import MediaInfo

from rindle_ffmpeg.errors import av_error
from rindle_ffmpeg.probe import sanitize

__all__ = ["analyze_av"]


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return round(float(value), 3)
    except (TypeError, ValueError):
        return None


def _track(data: Mapping[str, Any], fields: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    out = {name: conv(data.get(key)) for name, (key, conv) in fields.items()}
    return {k: v for k, v in out.items() if v is not None}


_GENERAL = {"container": ("format", str), "bit_rate": ("overall_bit_rate", _int),
            "duration_ms": ("duration", _int)}
_VIDEO = {"codec": ("format", str), "profile": ("format_profile", str),
          "bit_rate": ("bit_rate", _int), "frame_rate": ("frame_rate", _float),
          "width": ("width", _int), "height": ("height", _int)}
_AUDIO = {"codec": ("format", str), "bit_rate": ("bit_rate", _int),
          "sample_rate": ("sampling_rate", _int), "channels": ("channel_s", _int)}


def analyze_av(path: Path, probe: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"av": {container, bit_rate, duration_ms, video: {...}, audio: {...}}, "av_tags"?}``.

    :raises ProcessingError: code ``mediainfo_failed`` when libmediainfo cannot read it.
    """
    try:
        info = MediaInfo.parse(str(path))
    except Exception as exc:  # pymediainfo raises OSError/RuntimeError/ValueError variants
        raise av_error("mediainfo_failed", f"pymediainfo could not read the file ({exc}); "
                       "reinstall pymediainfo (its wheel carries libmediainfo).") from exc
    av: dict[str, Any] = {}
    picked: dict[str, Mapping[str, Any]] = {}
    for track in info.tracks:
        kind = str(track.track_type)
        if kind in ("General", "Video", "Audio") and kind not in picked:
            picked[kind] = track.to_data()
    if "General" in picked:
        av.update(_track(picked["General"], _GENERAL))
    for kind, fields in (("Video", _VIDEO), ("Audio", _AUDIO)):
        if kind in picked:
            av[kind.lower()] = _track(picked[kind], fields)
    out: dict[str, Any] = {"av": sanitize(av)}
    tags = (probe or {}).get("metadata")
    if isinstance(tags, Mapping) and (tags.get("format") or any(tags.get("streams") or [])):
        out["av_tags"] = dict(tags)
    return out
