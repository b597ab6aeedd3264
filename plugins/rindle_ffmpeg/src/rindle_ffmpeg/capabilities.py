"""Capability detection: is ffmpeg there, new enough, with the encoders.

The reference requires ffmpeg 6.0; this plugin needs only what ffmpeg 5.1 has (Debian 12's
version: ``-fps_mode``, ``loudnorm``, ``tile``), so 5.1 is the minimum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rindle_ffmpeg.errors import CommandFailed, ToolNotFound
from rindle_ffmpeg.run import run_command
from rindle_ffmpeg.settings import AVSettings

__all__ = [
    "CAPABILITIES",
    "MINIMUM_VERSION",
    "REQUIRED_ENCODERS",
    "REQUIRED_FILTERS",
    "Detected",
    "detect",
    "parse_version",
]

MINIMUM_VERSION = (5, 1)
#: encoder -> what needs it.
REQUIRED_ENCODERS = {"libx264": "Video (h264)", "aac": "Video and Audio m4a_128k",
                     "libmp3lame": "Audio mp3_128k", "mjpeg": "poster and strip images",
                     "pcm_f32le": "Waveform"}
REQUIRED_FILTERS = ("scale", "pad", "select", "fps", "tile", "loudnorm")
#: What the AV processor can do.
CAPABILITIES = ("video_transcode", "video_frame_extract", "video_thumbnail_strip",
                "audio_transcode", "audio_normalize", "audio_waveform")
_VERSION = re.compile(r"^\S+ version n?(\d+)\.(\d+)", re.MULTILINE)
_LISTED = re.compile(r"^\s*[A-Z.]{6}\s+(\S+)", re.MULTILINE)
_FILTER = re.compile(r"^\s*[T.][S.][C.]\s+(\S+)", re.MULTILINE)


def parse_version(text: str) -> tuple[int, int] | None:
    """``(major, minor)`` from ``ffmpeg -version`` output (a leading ``n`` allowed)."""
    match = _VERSION.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass
class Detected:
    """What one executable offers; ``problem`` says why it is unusable, if it is."""

    program: str
    found: bool = False
    version: tuple[int, int] | None = None
    version_line: str = ""
    encoders: set[str] = field(default_factory=set)
    filters: set[str] = field(default_factory=set)
    problem: str | None = None


def _ask(argv: list[str], settings: AVSettings) -> str:
    return run_command(argv, timeout_s=min(settings.timeout_s, 30)).stdout


def detect(program: str, settings: AVSettings | None = None, *, listings: bool = True
           ) -> Detected:
    """Run ``program -version`` (and ``-encoders``/``-filters`` when ``listings``)."""
    settings = settings or AVSettings.from_env()
    out = Detected(program=program)
    try:
        text = _ask([program, "-hide_banner", "-version"], settings)
    except (ToolNotFound, CommandFailed) as exc:
        out.problem = f"{program} cannot be run: {exc.message}"
        return out
    out.found = True
    out.version_line = text.strip().splitlines()[0] if text.strip() else ""
    out.version = parse_version(text)
    if out.version is None:
        out.problem = f"cannot read the version of {program} from {out.version_line!r}"
    elif out.version < MINIMUM_VERSION:
        out.problem = (f"{program} {out.version[0]}.{out.version[1]} is older than "
                       f"{MINIMUM_VERSION[0]}.{MINIMUM_VERSION[1]}")
    if listings and out.problem is None:
        try:
            out.encoders = set(_LISTED.findall(_ask([program, "-hide_banner", "-encoders"],
                                                    settings)))
            out.filters = set(_FILTER.findall(_ask([program, "-hide_banner", "-filters"],
                                                   settings)))
        except (ToolNotFound, CommandFailed) as exc:
            out.problem = f"{program} cannot list its encoders: {exc.message}"
    return out
