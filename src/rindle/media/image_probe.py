"""Image dimensions and orientation from the header, without decoding pixels.

:func:`open_image` is the one place rindle hands a file to ``PIL.Image.open``: it turns
Pillow's own decompression-bomb refusal into a :class:`~rindle.errors.ProcessingError`
with code ``max_pixels_exceeded`` and an unreadable file into code ``image_unreadable``,
both ``permanent`` (the bytes are at fault) except an operating-system error reading the
file (one with an ``errno``), which may pass. rindle never disables Pillow's
``Image.MAX_IMAGE_PIXELS``.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, BinaryIO, Final

from PIL import Image, UnidentifiedImageError

from rindle.errors import ProcessingError

__all__ = [
    "IMAGE_UNREADABLE",
    "ORIENTATION_TRANSPOSE",
    "header_size",
    "input_at_fault",
    "jpeg_is_complete",
    "open_image",
    "oriented_size",
    "probe_image",
    "read_orientation",
]

#: ``ProcessingError.code`` when Pillow cannot identify or parse the file.
IMAGE_UNREADABLE: Final = "image_unreadable"
_EXIF_ORIENTATION: Final = 0x0112
_JPEG_EOI: Final = b"\xff\xd9"
_TAIL_CHUNK: Final = 1 << 20

#: EXIF orientation -> the transpose that displays the image upright (as ImageOps does).
ORIENTATION_TRANSPOSE: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image lazily (header only); the caller closes it.

    Raises :class:`ProcessingError` with code ``max_pixels_exceeded`` when Pillow refuses
    the size as a decompression bomb, and code :data:`IMAGE_UNREADABLE` when it cannot
    read the file as an image (both permanent, see :func:`input_at_fault`). Pillow's bomb
    *warning* is silenced: callers apply their own pixel limit to :attr:`Image.size`
    before anything is decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ProcessingError(
            f"refusing to open {os.fspath(path)!s}: {exc}. Resize the image before uploading.",
            code="max_pixels_exceeded", permanent=True,
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ProcessingError(
            f"cannot read {os.fspath(path)!s} as an image ({exc}); the file is corrupt or "
            "in a format this Pillow cannot open.",
            code=IMAGE_UNREADABLE, permanent=input_at_fault(exc),
        ) from exc


def input_at_fault(exc: BaseException) -> bool:
    """Whether Pillow's ``exc`` blames the image's bytes (so retrying cannot help).

    True for what Pillow raises about the data (unidentified format, broken or truncated
    stream, bad header values); False for an ``OSError`` carrying an ``errno``: the
    operating system failed to read the file (I/O error, missing file), not the image.
    """
    return not (isinstance(exc, OSError) and exc.errno is not None)


def read_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image; 1 when absent or invalid.

    Reads only metadata parsed with the header. For PNG it looks only at an ``eXIf``
    chunk placed before the pixel data, because Pillow would otherwise decode the whole
    image to find a late one.
    """
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        value: Any = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # malformed EXIF must not make an image unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """``size`` as displayed: orientations 5-8 rotate by 90 degrees, swapping the sides."""
    width, height = size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def header_size(image: Image.Image) -> tuple[int, int]:
    """Width and height as stored (before orientation), from the header."""
    return int(image.size[0]), int(image.size[1])


def probe_image(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Probe-owned fields of an image, read from its header only (no pixel decode).

    Returns ``{"kind": "image", "width", "height", "format"}`` where
    ``width``/``height`` are as displayed, i.e. after EXIF orientation (orientations 5-8
    swap them), and ``format`` is Pillow's name (``"JPEG"``, ``"PNG"``, ...). Raises
    :class:`ProcessingError` (see :func:`open_image`).
    """
    with open_image(path) as image:
        orientation = read_orientation(image)
        width, height = oriented_size(header_size(image), orientation)
        return {
            "kind": "image",
            "width": width,
            "height": height,
            "format": image.format,
        }


def jpeg_is_complete(path: str | os.PathLike[str]) -> bool:
    """True if an EOI marker (FF D9) follows the first scan's start.

    Inside entropy-coded data every FF byte is stuffed (FF 00) or a restart marker, so an
    FF D9 after the start of scan is the real end of the image; trailing bytes after it
    (maker notes, MPF images) are fine. Reads backwards from the end in 1 MiB steps.
    """
    with open(path, "rb") as fh:
        scan_start = _jpeg_scan_offset(fh)
        if scan_start is None:
            return False
        end = fh.seek(0, os.SEEK_END)
        while end > scan_start:
            start = max(scan_start, end - _TAIL_CHUNK)
            fh.seek(start)
            chunk = fh.read(end - start + 1)  # one byte of overlap for a split marker
            if _JPEG_EOI in chunk:
                return True
            end = start
    return False


def _jpeg_scan_offset(stream: BinaryIO) -> int | None:
    """Offset just past the first SOS segment header, walking the marker segments."""
    stream.seek(2)
    while True:
        marker = stream.read(2)
        while marker[:1] == b"\xff" and marker[1:2] == b"\xff":  # fill bytes
            marker = marker[1:] + stream.read(1)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        code = marker[1]
        if code in (0x01, *range(0xD0, 0xD9)):  # standalone markers carry no length
            continue
        length_bytes = stream.read(2)
        if len(length_bytes) < 2:
            return None
        length = int.from_bytes(length_bytes, "big")
        if length < 2:
            return None
        if code == 0xDA:  # SOS
            return stream.tell() + length - 2
        stream.seek(length - 2, os.SEEK_CUR)
