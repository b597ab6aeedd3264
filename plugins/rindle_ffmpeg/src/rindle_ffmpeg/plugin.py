"""The ``rindle`` entry point of rindle-ffmpeg: probe, analyze, transcode, doctor.

Registered as ``ffmpeg = "rindle_ffmpeg.plugin"``. Each hook answers None for what is not
audio or video (still images stay with the built-in Pillow probe and processor).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rindle import hookimpl
from rindle.ops.doctor import Check
from rindle_ffmpeg.analyze import analyze_av
from rindle_ffmpeg.capabilities import REQUIRED_ENCODERS, REQUIRED_FILTERS, detect
from rindle_ffmpeg.guard import ephemeral_runtime
from rindle_ffmpeg.probe import probe_av
from rindle_ffmpeg.settings import AVSettings
from rindle_ffmpeg.transcode import recipe_for, transcode

if TYPE_CHECKING:
    from rindle import Rindle

__all__ = ["rindle_analyze", "rindle_doctor_checks", "rindle_probe", "rindle_transcode"]

_AV_PREFIXES = ("video/", "audio/")
_COMPONENT = "ffmpeg"
_INSTALL = "install ffmpeg 5.1 or newer (Debian: apt-get install ffmpeg) or set " \
           "RINDLE_FFMPEG_BIN / RINDLE_FFPROBE_BIN"


@hookimpl
def rindle_probe(path: Path, mime: str) -> Mapping[str, Any] | None:
    """``kind``, ``width``, ``height``, ``duration_ms`` and track flags of video/audio files.

    Returns None for other MIME types. Raises ProcessingError (``ffprobe_failed``,
    ``empty_file``, ...) for a file that claims to be audio/video and is not readable.
    """
    if not mime.startswith(_AV_PREFIXES):
        return None
    return probe_av(Path(path))


@hookimpl
def rindle_analyze(path: Path, asset: Any, probe: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """pymediainfo's codecs, bit rates, frame rate, sample rate and channels under ``av``."""
    if (probe or {}).get("kind") not in ("video", "audio"):
        return None
    return analyze_av(Path(path), probe)


@hookimpl
def rindle_transcode(source: Path, spec: Any, workdir: Path) -> Mapping[str, Any] | None:
    """Render Video, Audio, Waveform and video-frame Image presets; None for other specs."""
    return transcode(Path(source), spec, Path(workdir))


def _uses_av(app: Rindle) -> list[str]:
    names = []
    for profile in app.profiles.values():
        if any(recipe_for(spec) is not None for _, spec in profile.variant_specs()):
            names.append(profile.name)
    return sorted(names)


@hookimpl
def rindle_doctor_checks(app: Rindle) -> list[Check]:
    """ffmpeg/ffprobe found and new enough, required encoders and filters, runtime."""
    settings = AVSettings.from_env()
    av_profiles = _uses_av(app)
    bad = "error" if av_profiles else "warn"
    checks: list[Check] = []
    ffmpeg = detect(settings.ffmpeg, settings)
    ffprobe = detect(settings.ffprobe, settings, listings=False)
    for name, found in (("ffmpeg_runtime", ffmpeg), ("ffprobe_runtime", ffprobe)):
        if found.problem is not None:
            checks.append(Check(name, bad, found.problem, f"{_INSTALL}.", _COMPONENT))
        else:
            checks.append(Check(name, "ok", found.version_line, None, _COMPONENT))
    if ffmpeg.problem is None:
        missing = [f"{e} ({use})" for e, use in REQUIRED_ENCODERS.items()
                   if e not in ffmpeg.encoders]
        missing += [f"filter {f}" for f in REQUIRED_FILTERS if f not in ffmpeg.filters]
        if missing:
            checks.append(Check("ffmpeg_encoders", bad, f"missing: {', '.join(missing)}",
                                "install an ffmpeg build with libx264 and libmp3lame "
                                "(Debian's ffmpeg package has them).", _COMPONENT))
        else:
            checks.append(Check("ffmpeg_encoders", "ok",
                                f"{', '.join(REQUIRED_ENCODERS)} and every filter present",
                                None, _COMPONENT))
    runtime = ephemeral_runtime()
    if runtime is not None and av_profiles:
        checks.append(Check("ffmpeg_runtime_guard", "warn",
                            f"running on {runtime}: video variants of {', '.join(av_profiles)}"
                            " will be refused", "run `rindle worker` on a regular host "
                            "for AV profiles.", _COMPONENT))
    return checks
