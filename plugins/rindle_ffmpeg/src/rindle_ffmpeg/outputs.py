"""The output post-condition: probe what ffmpeg wrote before it is stored.

=========  =======================================================================
output     checks
=========  =======================================================================
video      kind ``video``; duration within 250 ms of the source's; an audio track
           when the source had one (the reference demanded one always, which made
           every silent video fail: a deliberate fix)
audio      kind ``audio``; duration within 250 ms; an audio track
image      ffprobe reads it as an image; its width and height are returned
waveform   valid JSON whose ``length`` is the recipe's
=========  =======================================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rindle_ffmpeg.arguments import IMAGE_DEMUXERS
from rindle_ffmpeg.errors import av_error
from rindle_ffmpeg.probe import ffprobe_json, reshape
from rindle_ffmpeg.settings import AVSettings

__all__ = ["DURATION_TOLERANCE_MS", "check_size", "verify_output"]

DURATION_TOLERANCE_MS = 250


def check_size(path: Path, settings: AVSettings) -> int:
    """The output's size; missing or empty -> ``ffmpeg_missing_output``, at the cap ->
    ``output_too_large`` (ffmpeg's ``-fs`` stops writing there, so the file is cut)."""
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        raise av_error("ffmpeg_missing_output", "ffmpeg finished without writing the output; "
                       "the source probably has no decodable frames or samples.")
    if size >= settings.max_output_bytes:
        raise av_error("output_too_large",
                       f"the output reached the {settings.max_output_bytes}-byte cap and was "
                       "cut short; raise RINDLE_FFMPEG_MAX_OUTPUT or use a smaller preset.")
    return size


def _av(path: Path, expected: str, source: Mapping[str, Any], settings: AVSettings
        ) -> dict[str, Any]:
    out = reshape(ffprobe_json(path, settings))
    if out["kind"] != expected:
        raise av_error("output_kind_mismatch",
                       f"ffmpeg wrote {out['kind']} where {expected} was expected.")
    want, got = source.get("duration_ms"), out.get("duration_ms")
    if isinstance(want, int) and isinstance(got, int) \
            and abs(want - got) > DURATION_TOLERANCE_MS:
        raise av_error("output_duration_mismatch",
                       f"the output lasts {got} ms, the source declares {want} ms: its "
                       "container declares a duration its media does not have (repair or "
                       "re-export the file), or this ffmpeg build drops or pads media "
                       "(check `rindle doctor`).")
    needs_audio = expected == "audio" or bool(source.get("has_audio_track"))
    if needs_audio and not out.get("has_audio_track"):
        raise av_error("output_track_missing", "the output has no audio track although the "
                       "source has one; check the encoders in `rindle doctor`.")
    return {k: out[k] for k in ("duration_ms", "width", "height") if k in out}


def verify_output(path: Path, recipe: Mapping[str, Any], source: Mapping[str, Any],
                  settings: AVSettings) -> dict[str, Any]:
    """Check ``path`` against ``recipe``; returns ``duration_ms``/``width``/``height`` found.

    ``source`` is the reshaped probe of the source. Raises ProcessingError with the codes
    in the module docs.
    """
    check_size(path, settings)
    kind = recipe.get("output_kind") or recipe.get("kind") or "image"
    if kind in ("video", "audio"):
        return _av(path, kind, source, settings)
    if kind == "waveform":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            length = doc.get("length") if isinstance(doc, dict) else None
        except ValueError:
            length = None
        if length != recipe.get("length"):
            raise av_error("waveform_length_mismatch",
                           f"the waveform has length {length!r}, {recipe.get('length')} "
                           "was expected.")
        return {}
    image = reshape(ffprobe_json(path, settings, demuxers=IMAGE_DEMUXERS))
    return {k: image[k] for k in ("width", "height") if k in image}
