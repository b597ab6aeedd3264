"""The upload trust gate: a profile's policy checked against the bytes, not the client's word.

Pure and local: it reads a file on disk and never touches the database or storage. Checks
run in this order and the first failure wins (each is a :class:`~rindle.errors.UploadRejected`
whose ``reason`` is the code):

=========================  =====================================================================
``empty_upload``           the file has zero bytes
``unknown_mime``           the first 8 KiB match no known format (text, random bytes)
``mime_not_allowed``       the sniffed type is not in ``allow_mime``; HTML and SVG are refused
                           unless ``allow_mime`` names them exactly (they can carry script)
``missing_extension``      the filename has no extension
``extension_not_allowed``  the extension is not in ``allow_extensions``
``extension_mime_mismatch`` the extension's canonical type differs from the sniffed type
``max_bytes_exceeded``     larger than ``max_bytes``
``max_pixels_exceeded``    ``width * height`` (read from the header) over ``max_pixels``, an
                           image whose dimensions cannot be read while ``max_pixels`` is set,
                           or an image Pillow refuses as a decompression bomb
``invalid_image``          a format Pillow reads whose header or data is broken or truncated
=========================  =====================================================================

No pixel is decoded: dimensions come from the header, and the integrity check (PNG chunk
CRCs, the JPEG end-of-image marker) runs only after the pixel limit passed.

``allow_mime`` and ``allow_extensions`` that are empty or None allow anything;
``allow_mime`` may use ``type/*`` wildcards. Extensions are compared normalised
(lowercase, leading dot).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

from PIL import Image

from rindle.errors import ProcessingError, UploadRejected
from rindle.media.image_probe import (
    header_size,
    jpeg_is_complete,
    open_image,
    oriented_size,
    read_orientation,
)
from rindle.media.mime import (
    ACTIVE_CONTENT,
    EXTENSION_MIME,
    extension_mime,
    normalize_extension,
    sniff,
)
from rindle.upload.filenames import sanitize_filename

__all__ = [
    "StoredObjectVerdict",
    "UploadPolicy",
    "ValidatedUpload",
    "check_declared",
    "validate_stored_object",
    "validate_upload",
]


class UploadPolicy(Protocol):
    """What the gate reads from a profile (a Profile class or any object with these)."""

    @property
    def allow_mime(self) -> Sequence[str] | None: ...

    @property
    def allow_extensions(self) -> Sequence[str] | None: ...

    @property
    def max_bytes(self) -> int | None: ...

    @property
    def max_pixels(self) -> int | None: ...


@dataclass(frozen=True)
class ValidatedUpload:
    """What the gate proved about an accepted file.

    ``mime`` is sniffed from the bytes; ``extension`` is normalised (``".jpg"``);
    ``width``/``height`` are as displayed (after EXIF orientation) for images Pillow can
    read, else None.
    """

    mime: str
    extension: str
    byte_size: int
    width: int | None
    height: int | None
    sanitized_filename: str


@dataclass(frozen=True)
class StoredObjectVerdict:
    """The outcome of :func:`validate_stored_object`: exactly one of the two is set."""

    upload: ValidatedUpload | None
    rejection: UploadRejected | None

    @property
    def ok(self) -> bool:
        """True when the object passed every check."""
        return self.rejection is None

    @property
    def reason(self) -> str | None:
        """The rejection reason code (for ``error_reason`` on a quarantined asset), or None."""
        return None if self.rejection is None else self.rejection.reason


def validate_upload(path: str | os.PathLike[str], *, filename: str,
                    policy: UploadPolicy) -> ValidatedUpload:
    """Check a local file against ``policy``; return what was proven or raise.

    :param path: the uploaded bytes on local disk.
    :param filename: the client's filename; only its extension is trusted, and only
        after it agrees with the sniffed type.
    :param policy: ``allow_mime``, ``allow_extensions``, ``max_bytes``, ``max_pixels``.
    :raises UploadRejected: with ``reason`` set to one of the codes in the module docs.
    :raises OSError: when ``path`` cannot be read (a caller bug, not a policy verdict).
    """
    path = Path(path)
    byte_size = path.stat().st_size
    if byte_size == 0:
        raise UploadRejected("empty_upload", "the upload is empty (0 bytes); send the file again.")
    mime = _check_mime(sniff(path), policy)
    extension = _check_extension(filename, mime, policy)
    max_bytes = policy.max_bytes
    if max_bytes is not None and byte_size > max_bytes:
        raise UploadRejected(
            "max_bytes_exceeded",
            f"the file is {byte_size} bytes, over this profile's max_bytes of {max_bytes}; "
            "upload a smaller file.",
        )
    width, height = _check_image(path, mime, policy.max_pixels)
    return ValidatedUpload(mime=mime, extension=extension, byte_size=byte_size, width=width,
                           height=height, sanitized_filename=sanitize_filename(filename))


def validate_stored_object(path: str | os.PathLike[str], *, filename: str | None,
                           policy: UploadPolicy) -> StoredObjectVerdict:
    """The same gate for a direct upload at promotion, returning the verdict instead of raising.

    Promotion quarantines on a rejection rather than failing a request, so the reason is
    returned: ``verdict.rejection.reason`` is the code. ``filename`` is the one declared
    when the upload was initiated; None counts as ``missing_extension``. ``OSError`` from
    reading the downloaded copy still propagates (retry the job, don't quarantine).
    """
    try:
        checked = validate_upload(path, filename=filename or "", policy=policy)
    except UploadRejected as exc:
        return StoredObjectVerdict(upload=None, rejection=exc)
    return StoredObjectVerdict(upload=checked, rejection=None)


def check_declared(filename: str, *, content_type: str | None, policy: UploadPolicy) -> str:
    """The gate's checks that need no bytes, for a direct upload at initiate.

    The filename must have an extension (``missing_extension``) that maps to a type
    (:data:`~rindle.media.mime.EXTENSION_MIME`) the profile accepts, and that is in
    ``allow_extensions`` when set (``extension_not_allowed``); HTML and SVG follow the same
    explicit-only rule as sniffed bytes. A declared ``content_type``, when given, must be
    accepted too (``mime_not_allowed``). Returns the normalised extension.

    The extension is read from the sanitised filename, the one stored on the asset and
    checked again at promotion (so ``"\u202egpj.exe"`` is an ``.exe``). Nothing here is
    trusted later: the bytes are sniffed and checked again at promotion.
    """
    extension = _listed_extension(sanitize_filename(filename), filename, policy,
                                  hint=_accepted_hint(policy))
    mapped = extension_mime(extension)
    if mapped is None or not _mime_accepted(mapped, policy):
        what = f"{extension} ({mapped})" if mapped else f"{extension} (no known media type)"
        raise UploadRejected(
            "extension_not_allowed",
            f"files ending in {what} are not accepted by this profile"
            f"{_accepted_hint(policy)}.",
        )
    if content_type is not None:
        declared = content_type.split(";", 1)[0].strip().lower()
        if declared not in _KNOWN_MEDIA_TYPES or not _mime_accepted(declared, policy):
            raise UploadRejected(
                "mime_not_allowed",
                f"the declared content type {declared or '(empty)'!r} is not accepted by this "
                f"profile{_accepted_hint(policy)}.",
            )
    return extension


#: Declared types initiate accepts at all: the media types rindle can recognise. A backend
#: that stores the declared type (S3, GCS) then never serves XML, script or multipart.
_KNOWN_MEDIA_TYPES = frozenset(EXTENSION_MIME.values())


def _mime_accepted(mime: str, policy: UploadPolicy) -> bool:
    allowed = [m.strip().lower() for m in (policy.allow_mime or ())]
    if mime in allowed:
        return True
    if mime in ACTIVE_CONTENT:
        return False
    return not allowed or f"{mime.split('/')[0]}/*" in allowed


def _accepted_hint(policy: UploadPolicy) -> str:
    allowed = [m.strip().lower() for m in (policy.allow_mime or ())]
    if not allowed:
        return ""
    exts = sorted(ext for ext, mime in EXTENSION_MIME.items() if _mime_accepted(mime, policy))
    return f" (accepted: {', '.join(exts) or ', '.join(allowed)})"


# --- the individual checks -----------------------------------------------------------------


def _check_mime(mime: str | None, policy: UploadPolicy) -> str:
    if mime is None:
        raise UploadRejected(
            "unknown_mime",
            "the file's contents match no supported format (the filename and declared "
            "content type are not trusted); upload a real image, video, audio or PDF file.",
        )
    allowed = [m.strip().lower() for m in (policy.allow_mime or ())]
    explicit = mime in allowed
    if mime in ACTIVE_CONTENT and not explicit:
        raise UploadRejected(
            "mime_not_allowed",
            f"the file's contents are {mime}, which browsers can execute as a page; it is "
            "refused unless the profile's allow_mime lists it explicitly.",
        )
    if allowed and not explicit and f"{mime.split('/')[0]}/*" not in allowed:
        raise UploadRejected(
            "mime_not_allowed",
            f"the file's contents are {mime}, which this profile does not accept "
            f"(allowed: {', '.join(allowed)}); upload one of the allowed types.",
        )
    return mime


def _listed_extension(name: str, filename: str, policy: UploadPolicy, *, hint: str) -> str:
    """The normalised extension of ``name``; ``missing_extension`` when it has none and
    ``extension_not_allowed`` when ``allow_extensions`` is set and lacks it. ``filename``
    (the client's) is what the message shows; ``hint`` ends the missing-extension one."""
    extension = normalize_extension(os.path.splitext(name)[1])
    if extension in ("", "."):
        raise UploadRejected(
            "missing_extension",
            f"the filename {sanitize_filename(filename)!r} has no extension; name the file "
            f"with one that matches its contents{hint}.",
        )
    allowed = {normalize_extension(e) for e in (policy.allow_extensions or ())}
    if allowed and extension not in allowed:
        raise UploadRejected(
            "extension_not_allowed",
            f"files ending in {extension} are not accepted by this profile (allowed: "
            f"{', '.join(sorted(allowed))}).",
        )
    return extension


def _check_extension(filename: str, mime: str, policy: UploadPolicy) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    extension = _listed_extension(base, filename, policy, hint=f" ({mime})")
    expected = extension_mime(extension)
    if expected != mime:
        raise UploadRejected(
            "extension_mime_mismatch",
            f"the file's contents are {mime} but its name ends in {extension} "
            f"({expected or 'an unknown type'}); rename it to match its contents or "
            "upload the file the name describes.",
        )
    return extension


def _check_image(path: Path, mime: str, max_pixels: int | None) -> tuple[int | None, int | None]:
    """Header dimensions, the pixel cap and a cheap integrity check; never decodes pixels."""
    if not mime.startswith("image/") or mime in ACTIVE_CONTENT:
        return None, None
    try:
        image = open_image(path)
    except ProcessingError as exc:
        if exc.code == "max_pixels_exceeded":
            raise UploadRejected(
                "max_pixels_exceeded",
                "the image's dimensions are so large that it is refused as a decompression "
                "bomb; resize it before uploading.",
            ) from exc
        if mime in _pillow_mimes():
            raise UploadRejected(
                "invalid_image",
                f"the file starts like {mime} but its header cannot be read; it is corrupt "
                "or truncated, so upload it again from the original.",
            ) from exc
        if max_pixels is not None:
            raise UploadRejected(
                "max_pixels_exceeded",
                f"the dimensions of this {mime} image cannot be read, so its pixel count "
                f"cannot be checked against max_pixels ({max_pixels}); convert it to JPEG "
                "or PNG, or install a plugin that reads it.",
            ) from exc
        return None, None
    with image:
        width, height = oriented_size(header_size(image), read_orientation(image))
        if max_pixels is not None and width * height > max_pixels:
            raise UploadRejected(
                "max_pixels_exceeded",
                f"the image is {width}x{height} = {width * height} pixels, over this "
                f"profile's max_pixels of {max_pixels}; resize it before uploading.",
            )
        _check_integrity(image, path, mime)
    return width, height


def _check_integrity(image: Image.Image, path: Path, mime: str) -> None:
    problem: str | None = None
    decoder_mime = Image.MIME.get(image.format or "")
    if image.format == "MPO":
        decoder_mime = "image/jpeg"  # multi-picture JPEG: a JPEG to every decoder
    if decoder_mime is not None and decoder_mime != mime:
        raise UploadRejected(
            "mime_not_allowed",
            f"the file starts like {mime} but Pillow decodes it as {image.format} "
            f"({decoder_mime}); only the format the profile allows is decoded. Convert it "
            "and upload again.",
        )
    try:
        image.verify()  # PNG: every chunk's CRC up to IEND, no inflate; no-op for most formats
    except Exception as exc:  # Pillow raises OSError, SyntaxError, struct.error, ...
        problem = str(exc) or type(exc).__name__
    if problem is None and image.format in ("JPEG", "MPO") and not jpeg_is_complete(path):
        problem = "no end-of-image marker after the image data"
    if problem is not None:
        raise UploadRejected(
            "invalid_image",
            f"the {mime} file is damaged or truncated ({problem}); upload it again from "
            "the original.",
        )


@cache
def _pillow_mimes() -> frozenset[str]:
    """MIME types of the formats this Pillow can open."""
    Image.init()
    return frozenset(Image.MIME[fmt] for fmt in Image.OPEN if fmt in Image.MIME)
