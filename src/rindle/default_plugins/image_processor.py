"""The built-in image processor: answers ``rindle_transcode`` for plain image variants."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from rindle.hookspecs import hookimpl
from rindle.media.image_processor import ImageSpec, render_image


@hookimpl
def rindle_transcode(source: Path, spec: Any, workdir: Path,
                     max_pixels: int | None) -> Mapping[str, Any] | None:
    """Render ``fit``/``fill``/``crop`` image variants with Pillow.

    Answers only specs with ``kind == "image"`` and no ``preset`` (presets such as
    ``video_poster_scene`` belong to the ffmpeg plugin); returns None for anything else.
    The result has ``path``, ``content_type``, ``width``, ``height`` and ``extension``.
    A source over ``max_pixels`` (the profile's; None: Pillow's ``MAX_IMAGE_PIXELS``) is
    refused from its header, before decoding: ``ProcessingError`` code
    ``max_pixels_exceeded``, permanent (see :func:`rindle.media.image_processor.render_image`).
    """
    if getattr(spec, "kind", None) != "image" or getattr(spec, "preset", None) is not None:
        return None
    return render_image(Path(source), cast(ImageSpec, spec), Path(workdir),
                        max_pixels=max_pixels)
