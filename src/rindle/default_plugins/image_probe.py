"""The built-in image probe: answers ``rindle_probe`` for images Pillow can open."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rindle.errors import ProcessingError
from rindle.hookspecs import hookimpl
from rindle.media.image_probe import IMAGE_UNREADABLE, probe_image
from rindle.media.mime import ACTIVE_CONTENT


@hookimpl
def rindle_probe(path: Path, mime: str) -> Mapping[str, Any] | None:
    """``kind``, ``width``, ``height`` (as displayed) and ``format`` for ``image/*`` files.

    Returns None for other MIME types, for SVG, and for images this Pillow cannot read
    (so a plugin such as a HEIC probe may answer). A decompression bomb raises
    :class:`~rindle.errors.ProcessingError` (code ``max_pixels_exceeded``).
    """
    if not mime.startswith("image/") or mime in ACTIVE_CONTENT:
        return None
    try:
        return probe_image(path)
    except ProcessingError as exc:
        if exc.code == IMAGE_UNREADABLE:
            return None
        raise
