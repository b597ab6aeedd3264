"""Rendering AV variants: dispatch on the normalised recipe, run ffmpeg, check the output.

============================================  ==========================  ====================
spec                                          output                      content type
============================================  ==========================  ====================
``Video(preset="web_720p"|"web_480p")``       H.264/AAC MP4, letterboxed  ``video/mp4``
``Audio(preset="m4a_128k")``                  AAC in M4A                  ``audio/mp4``
``Audio(preset="mp3_128k")``                  MP3                         ``audio/mpeg``
``Waveform(preset="overview")``               JSON peaks                  ``application/json``
``Image(preset="video_poster_scene")``        one JPEG frame              ``image/jpeg``
``Image(preset="video_thumbnail_strip")``     4 thumbnails in one JPEG    ``image/jpeg``
============================================  ==========================  ====================

Anything else (plain image resizes) is not ours: :func:`transcode` returns None. Every run
links the source into the private ``workdir`` as ``input<ext>``, so ffmpeg reads and
writes only there, and removes the link afterwards.

A video or audio source whose probed duration exceeds ``RINDLE_FFMPEG_MAX_DURATION`` is
refused before ffmpeg runs (``duration_exceeded``, permanent): ffmpeg reads at most that
many seconds, so the output could never match the source's duration, and a file that
declares an absurd duration (136 years in a 32-bit field) must not be transcoded and
retried.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rindle_ffmpeg.arguments import (
    audio_args,
    loudnorm_measure_args,
    poster_attempts,
    strip_args,
    video_args,
)
from rindle_ffmpeg.errors import CommandFailed, av_error
from rindle_ffmpeg.guard import guard
from rindle_ffmpeg.outputs import verify_output
from rindle_ffmpeg.probe import ffprobe_json, reshape
from rindle_ffmpeg.run import run_ffmpeg, stderr_tail
from rindle_ffmpeg.settings import AVSettings
from rindle_ffmpeg.waveform import render_waveform

__all__ = ["check_duration", "recipe_for", "transcode"]

_OUTPUT = {"mp4": (".mp4", "video/mp4"), "m4a": (".m4a", "audio/mp4"),
           "mp3": (".mp3", "audio/mpeg"), "json": (".json", "application/json"),
           "jpg": (".jpg", "image/jpeg")}
_LOUDNORM_KEYS = ("input_i", "input_tp", "input_lra", "input_thresh", "target_offset")
_FRAME_PRESETS = ("video_poster_scene", "video_thumbnail_strip")

Renderer = Callable[[Path, Path, Mapping[str, Any], Mapping[str, Any], AVSettings],
                    dict[str, Any]]


def recipe_for(spec: Any) -> dict[str, Any] | None:
    """The normalised recipe of an AV spec this plugin renders, else None."""
    kind = getattr(spec, "kind", None)
    if kind not in ("video", "audio", "waveform", "image"):
        return None
    if kind == "image" and getattr(spec, "preset", None) not in _FRAME_PRESETS:
        return None
    normalized = getattr(spec, "normalized", None)
    if normalized is None:
        return None
    recipe: dict[str, Any] = normalized()
    return recipe if recipe.get("output_kind") == kind else None


def _video(src: Path, dest: Path, recipe: Mapping[str, Any], source: Mapping[str, Any],
           settings: AVSettings) -> dict[str, Any]:
    if not reshape(source)["has_video_track"]:
        raise av_error("missing_video_track", "a video variant needs a video track and this "
                       "file has none; use an Audio variant for audio files.")
    run_ffmpeg(video_args(src, dest, recipe), rundir=dest.parent, settings=settings)
    return {}


def _poster(src: Path, dest: Path, recipe: Mapping[str, Any], source: Mapping[str, Any],
            settings: AVSettings) -> dict[str, Any]:
    attempts = poster_attempts(src, dest, float(recipe["scene_threshold"]))
    for index, (strategy, args) in enumerate(attempts):
        dest.unlink(missing_ok=True)
        result = run_ffmpeg(args, rundir=dest.parent, settings=settings, check=False)
        if result.status == 0 and dest.exists() and dest.stat().st_size > 0:
            return {"strategy": strategy}
        if result.status != 0 and index == len(attempts) - 1:
            tail = stderr_tail(result.stderr, rundir=dest.parent)
            raise CommandFailed(f"ffmpeg could not extract a poster frame (status "
                                f"{result.status}): {tail or '(no output)'}",
                                code="ffmpeg_failed", status=result.status, stderr_tail=tail)
    raise av_error("ffmpeg_missing_output", "no poster frame could be extracted: the video "
                   "has no decodable frame.")


def _strip(src: Path, dest: Path, recipe: Mapping[str, Any], source: Mapping[str, Any],
           settings: AVSettings) -> dict[str, Any]:
    run_ffmpeg(strip_args(src, dest, recipe), rundir=dest.parent, settings=settings)
    return {}


def _measure_loudness(src: Path, recipe: Mapping[str, Any], settings: AVSettings
                      ) -> dict[str, Any]:
    result = run_ffmpeg(loudnorm_measure_args(src, recipe), rundir=src.parent,
                        settings=settings, loglevel="info")
    text = result.stderr
    start, end = text.rfind("{"), text.rfind("}")
    try:
        measured = json.loads(text[start:end + 1]) if 0 <= start < end else None
    except ValueError:
        measured = None
    if not isinstance(measured, dict) or any(k not in measured for k in _LOUDNORM_KEYS):
        raise av_error("invalid_loudnorm_output", "ffmpeg's loudnorm measurement printed no "
                       "usable JSON; check that this ffmpeg has the loudnorm filter.")
    return measured


def _audio(src: Path, dest: Path, recipe: Mapping[str, Any], source: Mapping[str, Any],
           settings: AVSettings) -> dict[str, Any]:
    if not reshape(source)["has_audio_track"]:
        raise av_error("missing_audio_track", "an audio variant needs an audio track and "
                       "this file has none; remove the audio variant from this profile.")
    measured = _measure_loudness(src, recipe, settings) if recipe.get("two_pass") else None
    run_ffmpeg(audio_args(src, dest, recipe, measured), rundir=dest.parent, settings=settings)
    return {}


def _waveform(src: Path, dest: Path, recipe: Mapping[str, Any], source: Mapping[str, Any],
              settings: AVSettings) -> dict[str, Any]:
    render_waveform(src, dest, recipe, source, settings)
    return {}


def check_duration(recipe: Mapping[str, Any], source: Mapping[str, Any],
                   settings: AVSettings) -> None:
    """Refuse a video or audio recipe for a source declaring more than the duration cap.

    ``source`` is the reshaped probe of the source. Posters, strips and waveforms are not
    checked (they never compare their output with the source's duration).

    :raises ProcessingError: ``duration_exceeded`` (permanent).
    """
    declared = source.get("duration_ms")
    limit_ms = settings.max_duration_s * 1000
    if recipe.get("output_kind") in ("video", "audio") and isinstance(declared, int) \
            and declared > limit_ms:
        raise av_error("duration_exceeded",
                       f"the source declares a duration of {declared // 1000} s, more than "
                       f"the {settings.max_duration_s} s RINDLE_FFMPEG_MAX_DURATION allows; "
                       "nothing was rendered. Trim or repair the file (its container may "
                       "declare a duration its media does not have), or raise the cap.")


def _renderer(recipe: Mapping[str, Any]) -> tuple[Renderer, str]:
    kind, preset = recipe["output_kind"], recipe.get("preset")
    if kind == "video":
        return _video, recipe["container"]
    if kind == "audio":
        if recipe.get("two_pass") and not recipe.get("normalize"):
            raise av_error("invalid_audio_recipe", "two_pass requires normalize=True "
                           "(two passes measure loudness first); fix the profile's variant.")
        return _audio, recipe["container"]
    if kind == "waveform":
        return _waveform, recipe["format"]
    return (_poster if preset == "video_poster_scene" else _strip), recipe["format"]


def _link(source: Path, workdir: Path) -> Path:
    dest = workdir / ("input" + source.suffix.lower())
    dest.unlink(missing_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)
    return dest


def transcode(source: Path, spec: Any, workdir: Path, settings: AVSettings | None = None
              ) -> dict[str, Any] | None:
    """Render ``spec`` from ``source`` into ``workdir``; None when the spec is not AV.

    Returns ``path``, ``content_type``, ``extension``, and ``duration_ms``/``width``/
    ``height`` as probed from the output (plus ``strategy`` for posters).

    :raises ProcessingError: a refusal of the runtime guard, the duration cap
        (:func:`check_duration`) or the argument checks, an ffmpeg failure or timeout
        (redacted stderr tail in the message), or a failed output check.
    :raises ToolNotFound: ffmpeg/ffprobe is not installed.
    """
    recipe = recipe_for(spec)
    if recipe is None:
        return None
    settings = settings or AVSettings.from_env()
    workdir = Path(workdir)
    renderer, fmt = _renderer(recipe)
    guard(recipe, workdir, settings)
    extension, content_type = _OUTPUT[fmt]
    src = _link(Path(source), workdir)
    try:
        raw = ffprobe_json(src, settings)
        check_duration(recipe, reshape(raw), settings)
        dest = workdir / ("output" + extension)
        extra = renderer(src, dest, recipe, raw, settings)
        found = verify_output(dest, recipe, reshape(raw), settings)
    finally:
        src.unlink(missing_ok=True)
    return {"path": dest, "content_type": content_type, "extension": extension,
            **found, **extra}
