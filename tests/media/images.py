"""Real sample files for the media and upload tests, generated with Pillow or by hand."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFile

EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Spec:
    """A stand-in for ``rindle.domain.variants.Image`` with exactly its attributes."""

    mode: str
    width: int | None = None
    height: int | None = None
    format: str = "jpeg"
    quality: int | None = None
    kind: str = "image"
    preset: str | None = None


def picture(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """A small image with some structure (gradient plus a shape), so encoders do work."""
    width, height = size
    gradient = Image.linear_gradient("L").resize(size)
    im = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_90).resize(size),
                             Image.new("L", size, 128)))
    ImageDraw.Draw(im).ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4),
                               fill=(250, 20, 20))
    return im.convert(mode) if mode != "RGB" else im


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    """``im`` saved in ``fmt`` as bytes."""
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def exif_bytes(orientation: int) -> bytes:
    """An EXIF block carrying only an orientation tag."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return exif.tobytes()


def jpeg(size: tuple[int, int] = (64, 48), *, orientation: int | None = None,
         quality: int = 90, **params: object) -> bytes:
    """A JPEG, optionally with an EXIF orientation."""
    if orientation is not None:
        params["exif"] = exif_bytes(orientation)
    return encode(picture(size), "JPEG", quality=quality, **params)


def png(size: tuple[int, int] = (64, 48), mode: str = "RGB", **params: object) -> bytes:
    """A PNG of ``mode``."""
    return encode(picture(size, mode), "PNG", **params)


def truncated_jpeg() -> bytes:
    """A JPEG whose header parses but whose scan data is cut in half."""
    noisy = Image.effect_noise((256, 256), 80).convert("RGB")
    data = encode(noisy, "JPEG", quality=95, comment=b"x\xff\xd9y")  # an EOI inside a COM
    return data[: len(data) // 2]


@cache
def png_bomb(size: int = 20_000) -> bytes:
    """A valid ``size`` x ``size`` 1-bit PNG of a few dozen KB (a decompression bomb)."""
    row = b"\x00" + b"\x00" * ((size + 7) // 8)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row * 500) for _ in range(size // 500)]
    parts.append(compressor.compress(row * (size % 500)))
    parts.append(compressor.flush())
    idat = b"".join(parts)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def ftyp(brand: bytes, compatible: bytes = b"") -> bytes:
    """The start of an ISO-BMFF file (MP4, MOV, M4A, HEIC) with a ``free`` box after."""
    body = brand + b"\x00\x00\x02\x00" + compatible
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free" + bytes(64)


HTML = b"<!DOCTYPE html>\n<html><head><title>hi</title></head><body>hello</body></html>\n"


@contextmanager
def count_decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every ``ImageFile.load`` (a pixel decode) while the block runs.

    The wrapper observes and then calls the real method; it fakes nothing.
    """
    calls: list[str] = []
    real_load = ImageFile.ImageFile.load

    def counting_load(self: ImageFile.ImageFile) -> object:
        calls.append(str(self.format))
        return real_load(self)

    with monkeypatch.context() as patch:
        patch.setattr(ImageFile.ImageFile, "load", counting_load)
        yield calls


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``tmp_path / name`` and return the path."""
    path = tmp_path / name
    path.write_bytes(data)
    return path
