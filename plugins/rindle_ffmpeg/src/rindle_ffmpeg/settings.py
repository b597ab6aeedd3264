"""Caps and executables, read from the environment at call time (never cached at import).

==============================  ===========  ==================================================
variable                        default      meaning
==============================  ===========  ==================================================
``RINDLE_FFMPEG_BIN``           ``ffmpeg``   the ffmpeg executable (a name on PATH or a path)
``RINDLE_FFPROBE_BIN``          ``ffprobe``  the ffprobe executable
``RINDLE_FFMPEG_TIMEOUT``       ``600``      wall-clock seconds per subprocess before it is killed
``RINDLE_FFMPEG_CPU_SECONDS``   ``300``      ffmpeg ``-timelimit`` (CPU seconds)
``RINDLE_FFMPEG_MAX_DURATION``  ``7200``     seconds of input read (``-t``)
``RINDLE_FFMPEG_MAX_OUTPUT``    ``500000000``  bytes an output may reach (``-fs``)
==============================  ===========  ==================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TypedDict, Unpack

from rindle.errors import ConfigError

__all__ = ["AVCaps", "AVSettings"]


class AVCaps(TypedDict, total=False):
    """The fields :meth:`AVSettings.with_caps` may override, with their types."""

    ffmpeg: str
    ffprobe: str
    timeout_s: float
    cpu_s: int
    max_duration_s: int
    max_output_bytes: int


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; set it to a positive number "
                          f"(default {default:g}) or unset it.") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class AVSettings:
    """The executables and caps one subprocess run uses."""

    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    timeout_s: float = 600.0
    cpu_s: int = 300
    max_duration_s: int = 7200
    max_output_bytes: int = 500_000_000

    @classmethod
    def from_env(cls) -> AVSettings:
        """The settings the environment asks for now; raises ConfigError on a bad value."""
        return cls(
            ffmpeg=os.environ.get("RINDLE_FFMPEG_BIN") or "ffmpeg",
            ffprobe=os.environ.get("RINDLE_FFPROBE_BIN") or "ffprobe",
            timeout_s=_number("RINDLE_FFMPEG_TIMEOUT", 600.0),
            cpu_s=int(_number("RINDLE_FFMPEG_CPU_SECONDS", 300)),
            max_duration_s=int(_number("RINDLE_FFMPEG_MAX_DURATION", 7200)),
            max_output_bytes=int(_number("RINDLE_FFMPEG_MAX_OUTPUT", 500_000_000)),
        )

    def with_caps(self, **caps: Unpack[AVCaps]) -> AVSettings:
        """A copy with some caps overridden for one call."""
        return replace(self, **caps)
