"""The built-in image processor: ``fit``, ``fill`` and ``crop`` renditions with Pillow.

Semantics:

* ``fit``: scale to fit inside ``width`` x ``height`` keeping the aspect ratio; a missing
  dimension is unconstrained; never upscales.
* ``fill`` / ``crop``: scale to cover the box, then centre-crop to exactly ``width`` x
  ``height`` (upscaling when the source is smaller). With one dimension, the image is
  scaled so that side matches exactly. The crop sits on libvips' grid (``vipsthumbnail
  --smartcrop centre``, sharp, imgproxy): the whole image scaled to cover with its size
  rounded, then a whole-pixel centre crop, so an odd margin leaves the crop half an output
  pixel up/left of the exact centre and the pixels line up with libvips' thumbnails.

Sizes are those of the image as displayed: EXIF orientation is applied and dropped.

Speed and memory: the crop is expressed as a source region of one ``resize`` call, so no
pixel outside it is resampled; JPEG sources are decoded with DCT scaling (``draft``, as
libvips' shrink-on-load) by the largest factor (1/2, 1/4 or 1/8) that still leaves
:data:`DRAFT_GAP` times the output size, then reduced by whole factors and finished with a
Lanczos filter (``reducing_gap``). A 4000x3000 JPEG made into a 256x256 thumbnail is decoded
at 500x375, never at full size.

Output keeps only the ICC profile (when it still describes the output's colour space);
EXIF, XMP and comments are stripped.

Pixel limit (defence in depth behind the upload gate): the header's width x height is
checked before any pixel is decoded, against the profile's ``max_pixels`` or, when the
profile sets none, Pillow's ``Image.MAX_IMAGE_PIXELS`` (its decompression-bomb threshold,
read at every call; :data:`PIXEL_CEILING` if an application disabled it). Over it, the
source is refused with ``max_pixels_exceeded``. Refusals the source or the spec causes
(``max_pixels_exceeded``, ``image_unreadable``, ``unsupported_recipe``) are ``permanent``,
so the variant job is not retried.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypedDict

from PIL import Image, features

from rindle.errors import ProcessingError
from rindle.media.image_probe import (
    ORIENTATION_TRANSPOSE,
    input_at_fault,
    open_image,
    oriented_size,
    read_orientation,
)

__all__ = [
    "DEFAULT_QUALITY",
    "OUTPUT_FORMATS",
    "PIXEL_CEILING",
    "ImageSpec",
    "RenderedImage",
    "ResizePlan",
    "check_pixels",
    "draft_scale",
    "pixel_limit",
    "plan_resize",
    "render_image",
]

#: Quality used when a spec leaves ``quality`` unset.
DEFAULT_QUALITY: Final = 80
#: The pixel limit when the profile sets no ``max_pixels`` and an application set
#: ``Image.MAX_IMAGE_PIXELS`` to None: Pillow's default value of it.
PIXEL_CEILING: Final = 89_478_485
#: Decode JPEGs (DCT scaling) at no less than this multiple of the final size. DCT scaling
#: is a block average, so the Lanczos step after it only has to finish the job. libvips
#: leaves 2.0 (4000x3000 -> 256x256 decodes at 1/4, not 1/8). Measured on that case
#: (bench/thumbnails.py, bench/RESULTS.md): against a full decode + Lanczos, 1/8 gives
#: 45.0 dB PSNR on grain-heavy sources and 52.4 dB on photo-like ones, 1/4 52.7 and 54.9 dB;
#: after WebP q80 the gap is 0.7 and 0.1 dB. 1/4 costs ~20% more CPU per thumbnail and
#: would take rindle under 3x naive Pillow on the grain set, so 1.25 stays.
DRAFT_GAP: Final = 1.25
#: ``Image.resize(reducing_gap=...)``: box-reduce by whole factors down to this multiple.
REDUCING_GAP: Final = 2.0
#: libwebp effort (0 fastest .. 6 smallest). 2 encodes in half the time of the default 4
#: for ~2% more bytes at the same quality (measured on 256x256 thumbnails of photos).
WEBP_METHOD: Final = 2

#: spec ``format`` -> (Pillow format, extension, content type).
OUTPUT_FORMATS: Final[dict[str, tuple[str, str, str]]] = {
    "jpeg": ("JPEG", ".jpg", "image/jpeg"),
    "jpg": ("JPEG", ".jpg", "image/jpeg"),
    "png": ("PNG", ".png", "image/png"),
    "webp": ("WEBP", ".webp", "image/webp"),
    "avif": ("AVIF", ".avif", "image/avif"),
}
_MODES: Final = ("fit", "fill", "crop")
_ICC_SPACE: Final = {"RGB": b"RGB ", "RGBA": b"RGB ", "L": b"GRAY"}


class ImageSpec(Protocol):
    """The attributes of ``rindle.domain.variants.Image`` the processor reads."""

    @property
    def kind(self) -> str: ...

    @property
    def mode(self) -> str: ...

    @property
    def width(self) -> int | None: ...

    @property
    def height(self) -> int | None: ...

    @property
    def format(self) -> str: ...

    @property
    def quality(self) -> int | None: ...


class RenderedImage(TypedDict):
    """What :func:`render_image` (and the ``rindle_transcode`` hook) returns."""

    path: Path
    content_type: str
    width: int
    height: int
    extension: str


@dataclass(frozen=True)
class ResizePlan:
    """Resample ``box`` (a region of the source, in source pixels) to ``size``."""

    size: tuple[int, int]
    box: tuple[float, float, float, float]


def plan_resize(source: tuple[int, int], mode: str, width: int | None,
                height: int | None) -> ResizePlan:
    """The output size and source region for ``mode`` on a ``source``-sized image.

    Pure arithmetic, exposed for tests and previews. Raises :class:`ProcessingError`
    (code ``unsupported_recipe``) for an unknown mode, no dimension at all, or a
    non-positive one.
    """
    if mode not in _MODES:
        raise _recipe_error(f"unknown image mode {mode!r}; use one of {', '.join(_MODES)}")
    if width is None and height is None:
        raise _recipe_error(f"mode {mode!r} needs width, height or both")
    if (width is not None and width < 1) or (height is not None and height < 1):
        raise _recipe_error(f"width and height must be positive, got {width}x{height}")
    src_w, src_h = source
    full = (0.0, 0.0, float(src_w), float(src_h))
    if mode == "fit":
        scale = min(width / src_w if width else math.inf,
                    height / src_h if height else math.inf, 1.0)
        out_w = max(1, min(round(src_w * scale), width or src_w))
        out_h = max(1, min(round(src_h * scale), height or src_h))
        return ResizePlan((out_w, out_h), full)
    if width is None or height is None:  # cover a one-sided box: match that side exactly
        scale = width / src_w if width else (height or 1) / src_h
        return ResizePlan((width or max(1, round(src_w * scale)),
                           height or max(1, round(src_h * scale))), full)
    scale = max(width / src_w, height / src_h)
    left, right = _cover_crop(src_w, width, scale)
    top, bottom = _cover_crop(src_h, height, scale)
    return ResizePlan((width, height), (left, top, right, bottom))


def _cover_crop(side: int, out: int, scale: float) -> tuple[float, float]:
    """One axis of a ``fill`` crop, in source pixels, on libvips' grid: the whole ``side``
    scaled by ``scale`` to a rounded size (half up), centred on the source, then ``out``
    whole pixels from its middle (an odd margin rounds the start down). Clamped to the
    source, which trims at most a quarter of an output pixel at either end."""
    covered = max(out, math.floor(side * scale + 0.5))
    start = (side - covered / scale) / 2 + (covered - out) // 2 / scale
    return max(0.0, start), min(float(side), start + out / scale)


def draft_scale(shrink: float) -> int:
    """The JPEG shrink-on-load factor for an image to be reduced ``shrink`` times overall.

    The largest of 8, 4 and 2 that leaves at least :data:`DRAFT_GAP` for the Lanczos step
    (``shrink`` >= 10 gives 8, >= 5 gives 4, >= 2.5 gives 2), else 1. libvips' rule is the
    same with a gap of 2.
    """
    for scale in (8, 4, 2):
        if shrink >= scale * DRAFT_GAP - 1e-9:
            return scale
    return 1


def pixel_limit(max_pixels: int | None) -> int:
    """The most pixels :func:`render_image` decodes: ``max_pixels`` when given, else
    Pillow's ``Image.MAX_IMAGE_PIXELS`` as it is now, else :data:`PIXEL_CEILING`."""
    if max_pixels is not None:
        return max_pixels
    return int(Image.MAX_IMAGE_PIXELS or PIXEL_CEILING)


def check_pixels(size: tuple[int, int], max_pixels: int | None) -> None:
    """Refuse a ``size`` (from the header) whose pixel count exceeds :func:`pixel_limit`.

    A count equal to the limit passes.

    :raises ProcessingError: code ``max_pixels_exceeded``, permanent.
    """
    width, height = size
    limit = pixel_limit(max_pixels)
    if width * height > limit:
        whose = ("the profile's max_pixels" if max_pixels is not None
                 else "the default limit (Pillow's MAX_IMAGE_PIXELS)")
        raise ProcessingError(
            f"the source is {width}x{height} = {width * height} pixels, over {whose} of "
            f"{limit}; it was not decoded. Resize the original, or raise max_pixels.",
            code="max_pixels_exceeded", permanent=True)


def render_image(source: Path, spec: ImageSpec, workdir: Path, *,
                 max_pixels: int | None = None) -> RenderedImage:
    """Render one image variant of ``source`` into a new file inside ``workdir``.

    Before any pixel is decoded, the header's size is checked with :func:`check_pixels`
    against ``max_pixels`` (the profile's; None: Pillow's ``MAX_IMAGE_PIXELS``).

    :returns: ``path`` (a fresh file in ``workdir``), ``content_type``, ``width``,
        ``height`` (as displayed) and ``extension``.
    :raises ProcessingError: code ``unsupported_recipe`` for a bad spec,
        ``processor_capability_missing`` when this Pillow cannot write the format (AVIF),
        ``max_pixels_exceeded`` for a source over the pixel limit, ``image_unreadable``
        for one it cannot decode. All but ``processor_capability_missing`` (and an
        operating-system read error) are permanent.
    """
    pil_format, extension, content_type = _output_format(spec.format)
    quality = DEFAULT_QUALITY if spec.quality is None else spec.quality
    if not 1 <= quality <= 100:
        raise _recipe_error(f"quality must be 1..100, got {quality}")
    with open_image(source) as image:
        check_pixels(image.size, max_pixels)
        try:
            out, icc = _resized(image, spec)
        except Image.DecompressionBombError as exc:
            raise ProcessingError(f"refusing to decode {source.name}: {exc}",
                                  code="max_pixels_exceeded", permanent=True) from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ProcessingError(f"cannot decode {source.name}: {exc}",
                                  code="image_unreadable",
                                  permanent=input_at_fault(exc)) from exc
    out = _for_format(out, pil_format)
    out.info = {}  # strip EXIF/XMP/comments carried over from the source
    params = _save_params(pil_format, quality)
    if icc is not None and icc[16:20] == _ICC_SPACE.get(out.mode):
        params["icc_profile"] = icc
    fd, name = tempfile.mkstemp(prefix="image-", suffix=extension, dir=workdir)
    os.close(fd)
    try:
        out.save(name, format=pil_format, **params)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return RenderedImage(path=Path(name), content_type=content_type, width=out.width,
                         height=out.height, extension=extension)


# --- pipeline steps ---------------------------------------------------------------------


def _resized(image: Image.Image, spec: ImageSpec) -> tuple[Image.Image, bytes | None]:
    """Decode (scaled where the format allows), convert, resample and orient."""
    icc = image.info.get("icc_profile")
    orientation = read_orientation(image)
    swap = oriented_size((1, 2), orientation) == (2, 1)  # orientations 5-8
    width, height = (spec.height, spec.width) if swap else (spec.width, spec.height)
    source_size = (image.width, image.height)
    plan = plan_resize(source_size, spec.mode, width, height)
    box = plan.box
    if image.format in ("JPEG", "MPO"):
        scale = draft_scale(min((box[2] - box[0]) / plan.size[0],
                                (box[3] - box[1]) / plan.size[1]))
        if scale > 1:  # decoded pixel i covers source pixels [scale*i, scale*(i+1))
            drafted = image.draft(None, (source_size[0] // scale, source_size[1] // scale))
            if drafted is not None:
                scale = round(source_size[0] / drafted[1][2])
                box = (box[0] / scale, box[1] / scale, box[2] / scale, box[3] / scale)
    working = _working_mode(image)
    out = working.resize(plan.size, Image.Resampling.LANCZOS, box=box,
                         reducing_gap=REDUCING_GAP)
    transpose = ORIENTATION_TRANSPOSE.get(orientation)
    if transpose is not None:
        out = out.transpose(transpose)
    return out, icc if isinstance(icc, bytes) else None


def _working_mode(image: Image.Image) -> Image.Image:
    """Convert to L, RGB or RGBA so Lanczos applies (P and 1 would resample nearest)."""
    mode = image.mode
    transparent = "transparency" in image.info
    if (mode in ("RGB", "L") and not transparent) or mode == "RGBA":
        return image
    if mode in ("LA", "PA", "La", "RGBa") or transparent:
        return image.convert("RGBA")
    if mode.startswith("I"):  # 16-bit greyscale: keep the top 8 bits, don't clip
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if mode in ("1", "F"):
        return image.convert("L")
    return image.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV


def _for_format(image: Image.Image, pil_format: str) -> Image.Image:
    """JPEG has no alpha (flatten onto white); WebP and AVIF have no greyscale mode."""
    if pil_format == "JPEG" and image.mode == "RGBA":
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        return flat
    if pil_format in ("WEBP", "AVIF") and image.mode == "L":
        return image.convert("RGB")
    return image


def _output_format(name: str) -> tuple[str, str, str]:
    key = str(name or "jpeg").lower()
    if key not in OUTPUT_FORMATS:
        raise _recipe_error(f"unknown image format {name!r}; use jpeg, png, webp or avif")
    if key == "avif" and not features.check("avif"):
        raise ProcessingError(
            "this Pillow cannot write AVIF (built without libavif); install a Pillow wheel "
            "with AVIF support (Pillow >= 11.3) or change the variant's format.",
            code="processor_capability_missing",
        )
    return OUTPUT_FORMATS[key]


def _save_params(pil_format: str, quality: int) -> dict[str, Any]:
    if pil_format == "JPEG":
        return {"quality": quality, "optimize": True}
    if pil_format == "PNG":
        return {"optimize": False, "compress_level": 6}
    if pil_format == "WEBP":
        return {"quality": quality, "method": WEBP_METHOD}
    return {"quality": quality}


def _recipe_error(message: str) -> ProcessingError:
    return ProcessingError(message, code="unsupported_recipe", permanent=True)
