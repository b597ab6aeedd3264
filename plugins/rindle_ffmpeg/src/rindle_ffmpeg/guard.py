"""The runtime guard: where AV work may not run, and disk headroom.

Video work is refused on AWS Lambda and Vercel (ephemeral disks, short time limits); any
audio, video or waveform work needs free disk of at least twice the output size cap where
it runs. Poster and strip images are small and exempt from the disk rule.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rindle_ffmpeg.errors import av_error
from rindle_ffmpeg.settings import AVSettings

__all__ = ["ephemeral_runtime", "free_bytes", "guard"]

#: What :func:`free_bytes` assumes when the filesystem cannot be asked.
ASSUMED_FREE = 2_000_000_000
_RUNTIMES = {"lambda": ("LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME"),
             "vercel": ("VERCEL", "VERCEL_ENV", "NOW_REGION")}


def ephemeral_runtime(env: Mapping[str, str] | None = None) -> str | None:
    """``"lambda"``, ``"vercel"`` or None, from the environment variables they set."""
    env = os.environ if env is None else env
    for name, variables in _RUNTIMES.items():
        if any(env.get(v) for v in variables):
            return name
    return None


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem holding ``path`` (:data:`ASSUMED_FREE` if unknown)."""
    try:
        return int(shutil.disk_usage(path).free)
    except OSError:
        return ASSUMED_FREE


def guard(recipe: Mapping[str, Any], workdir: Path, settings: AVSettings,
          env: Mapping[str, str] | None = None) -> None:
    """Refuse the recipe here and now, or return.

    :raises ProcessingError: ``unsupported_ephemeral_runtime`` (video on Lambda/Vercel) or
        ``insufficient_disk_headroom``.
    """
    kinds = {recipe.get("kind"), recipe.get("output_kind")}
    runtime = ephemeral_runtime(env)
    if "video" in kinds and runtime is not None:
        raise av_error("unsupported_ephemeral_runtime",
                       f"video variants are not rendered on {runtime}: its disk and time "
                       "limits cannot hold a transcode; run `rindle worker` on a regular host.")
    if kinds & {"video", "audio", "waveform"}:
        required = 2 * settings.max_output_bytes
        free = free_bytes(workdir)
        if free < required:
            raise av_error("insufficient_disk_headroom",
                           f"only {free} bytes are free under tmp_dir, {required} are needed "
                           "(twice RINDLE_FFMPEG_MAX_OUTPUT); free disk space or move tmp_dir.")
