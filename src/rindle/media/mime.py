"""MIME sniffing from a file's first bytes, and the extension -> MIME table.

The client's declared content type and filename are never trusted: :func:`sniff` looks at
the first :data:`SNIFF_WINDOW` bytes only. It checks exact signatures for the formats rindle
handles (images, MP4/QuickTime family, WebM/Matroska, MP3, WAV, FLAC, Ogg, PDF) itself, so
those answers do not depend on the magic database's confidence ordering, and falls back to
``puremagic`` for anything else.

Hardening over a plain magic lookup:

* text (anything that decodes as UTF-8 without control bytes) is never reported as an
  image, audio or video type: markup is reported as ``text/html`` or ``image/svg+xml``,
  other text as unknown (None);
* ``application/octet-stream`` and empty answers are unknown (None);
* ISO-BMFF files (``ftyp``) are told apart by brand: AVIF, HEIC/HEIF, QuickTime, M4A, MP4.

Decisions: SVG is reported as ``image/svg+xml`` because that is what it is, but
:data:`ACTIVE_CONTENT` lists it with HTML so the upload gate refuses both unless a profile
allows them explicitly (they can carry script).
"""

from __future__ import annotations

import os
import re
from typing import Final

import puremagic

__all__ = [
    "ACTIVE_CONTENT",
    "EXTENSION_MIME",
    "SNIFF_WINDOW",
    "extension_mime",
    "normalize_extension",
    "read_head",
    "sniff",
]

#: How many leading bytes :func:`sniff` reads.
SNIFF_WINDOW: Final = 8192

#: Canonical MIME type per normalised extension. An extension missing here never matches
#: a sniffed type, so uploads carrying it fail ``extension_mime_mismatch``.
EXTENSION_MIME: Final[dict[str, str]] = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".avif": "image/avif",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".bmp": "image/bmp",
    ".svg": "image/svg+xml",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".ogv": "video/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".pdf": "application/pdf",
    ".html": "text/html",
    ".htm": "text/html",
}

#: Types a browser may execute when served from your domain; the upload gate refuses them
#: unless ``allow_mime`` names them explicitly.
ACTIVE_CONTENT: Final = frozenset({"text/html", "image/svg+xml", "application/xhtml+xml"})

# puremagic spellings -> the names used in EXTENSION_MIME.
_ALIASES: Final = {
    "audio/wave": "audio/wav",
    "audio/x-wav": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-flac": "audio/flac",
    "image/x-ms-bmp": "image/bmp",
    "image/x-bmp": "image/bmp",
    "application/x-matroska": "video/x-matroska",
    "application/ogg": "audio/ogg",
    "audio/mp3": "audio/mpeg",
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "video/avi": "video/x-msvideo",
    "video/msvideo": "video/x-msvideo",
}

_FTYP_BRANDS: Final = {
    b"avif": "image/avif", b"avis": "image/avif",
    b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic",
    b"hevc": "image/heic", b"hevx": "image/heic",
    b"mif1": "image/heif", b"msf1": "image/heif", b"heif": "image/heif",
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4", b"M4B ": "audio/mp4", b"M4P ": "audio/mp4", b"F4A ": "audio/mp4",
}

_MARKUP: Final = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|script|iframe|title|div|a\s|img\s|meta|style|p>)"
)
#: Tags that make a browser treat text as a document wherever they appear.
_HTML_ANYWHERE: Final = re.compile(rb"<(?:!doctype\s+html|html|script|iframe)[\s>]")
_BINARY_BYTES: Final = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def read_head(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> bytes:
    """The first :data:`SNIFF_WINDOW` bytes of a path (``str`` is a path) or a buffer."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[:SNIFF_WINDOW])
    with open(source, "rb") as fh:
        return fh.read(SNIFF_WINDOW)


def sniff(source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> str | None:
    """The MIME type proven by the content's first 8 KiB, or None when it is unknown.

    ``source`` is a path (``str`` or path-like) or the bytes themselves. Never returns
    ``application/octet-stream``; an empty input is unknown. Raises ``OSError`` when a
    path cannot be read.
    """
    head = read_head(source)
    if not head:
        return None
    found = _signature(head)
    if found is not None:
        return found
    text = _looks_like_text(head)
    markup = _markup(head, anywhere=text)
    if markup is not None or text:
        return markup
    return _puremagic(head)


def normalize_extension(ext: str) -> str:
    """``" PNG"`` -> ``".png"``: lowercase, trimmed, one leading dot; ``""`` stays ``""``."""
    ext = ext.strip().lower()
    if not ext:
        return ""
    return ext if ext.startswith(".") else f".{ext}"


def extension_mime(ext: str) -> str | None:
    """The canonical MIME type for an extension (``"jpg"``, ``".JPG"``), or None if unknown."""
    return EXTENSION_MIME.get(normalize_extension(ext))


# --- signatures --------------------------------------------------------------------------


def _signature(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav"}.get(head[8:12])
    if head[4:8] == b"ftyp":
        return _ftyp(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"\x42\x82\x84webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"OggS"):
        page = head[:256]
        return "video/ogg" if b"\x80theora" in page else "audio/ogg"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xffO\xffQ")):
        return "image/jp2"  # JPEG 2000 (the magic database calls it image/jpeg)
    if head.startswith(b"BM") and len(head) >= 18 and (
            int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES):
        return "image/bmp"
    if head.startswith(b"ID3") or _mpeg_audio_frame(head):
        return "audio/mpeg"
    return None


def _ftyp(head: bytes) -> str | None:
    size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    if major in _FTYP_BRANDS and _FTYP_BRANDS[major] != "image/heif":
        return _FTYP_BRANDS[major]
    end = min(max(size, 16), len(head))
    compatible = [head[i:i + 4] for i in range(16, end - 3, 4)]
    if major in (b"mif1", b"msf1", b"heif") or any(b in (b"mif1", b"msf1") for b in compatible):
        # A generic HEIF container: the compatible brands say which codec is inside.
        for brand in compatible:
            if brand in (b"avif", b"avis"):
                return "image/avif"
        for brand in compatible:
            if brand in (b"heic", b"heix", b"hevc", b"hevx"):
                return "image/heic"
        return "image/heif"
    if len(major) < 4 or not all(0x20 <= c < 0x7F for c in major):
        return None
    return "video/mp4"  # isom, iso2..9, mp41, mp42, avc1, dash, M4V, 3gp*: the MP4 family


_MPEG_BITRATE_BAD: Final = 0b1111


def _mpeg_audio_frame(head: bytes) -> bool:
    """True for a plausible MPEG-1/2 Layer III frame header (an MP3 without ID3 tag)."""
    if len(head) < 4 or head[0] != 0xFF or (head[1] & 0xE0) != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate = head[2] >> 4
    sample_rate = (head[2] >> 2) & 0b11
    return (version != 0b01 and layer == 0b01 and bitrate not in (0, _MPEG_BITRATE_BAD)
            and sample_rate != 0b11)


# --- text and markup -----------------------------------------------------------------------


def _looks_like_text(head: bytes) -> bool:
    """UTF-8 without NUL, C0 control bytes (other than whitespace) or DEL."""
    sample = head.removeprefix(b"\xef\xbb\xbf")
    if _BINARY_BYTES.search(sample):
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut off by the 8 KiB window is still text.
        return exc.start >= len(sample) - 3 and len(head) == SNIFF_WINDOW
    return True


def _markup(head: bytes, *, anywhere: bool) -> str | None:
    """SVG or HTML by how the document starts; for text, also HTML tags anywhere."""
    lowered = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    start = lowered[:1024]
    if not start.startswith(b"<"):
        return "text/html" if anywhere and _HTML_ANYWHERE.search(lowered) else None
    if b"<svg" in start and start.startswith((b"<svg", b"<?xml", b"<!doctype svg", b"<!--")):
        return "image/svg+xml"
    if _MARKUP.search(start) or (anywhere and _HTML_ANYWHERE.search(lowered)):
        return "text/html"
    return None


#: BITMAPCOREHEADER .. BITMAPV5HEADER sizes: "BM" alone is two bytes any data may start with.
_BMP_DIB_SIZES: Final = frozenset({12, 40, 52, 56, 64, 108, 124})

#: The shortest magic-database signature trusted; shorter ones are coincidences.
_MIN_MAGIC: Final = 4


def _puremagic(head: bytes) -> str | None:
    try:
        candidates = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        return None
    for candidate in candidates:
        if len(candidate.byte_match or b"") < _MIN_MAGIC:
            continue  # a 2-byte "signature" (WMF's 01 00) matches half of all binary data
        mime = _ALIASES.get(candidate.mime_type, candidate.mime_type)
        if mime and mime != "application/octet-stream":
            return str(mime)
    return None
