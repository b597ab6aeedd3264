"""Filename sanitising.

The client's filename is kept only for display and ``Content-Disposition``; storage keys
never derive from it (see :mod:`rindle.upload.keys`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["DEFAULT_FILENAME", "MAX_FILENAME_LENGTH", "sanitize_filename"]

#: What an input with nothing usable left becomes.
DEFAULT_FILENAME: Final = "upload"
#: Longest result; matches the ``filename`` column. The extension survives truncation.
MAX_FILENAME_LENGTH: Final = 255
_MAX_EXTENSION: Final = 16

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_SEPARATORS: Final = re.compile(r"[/\\]+")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")
_UNDERSCORES: Final = re.compile(r"_+")
_DOTS: Final = re.compile(r"\.{2,}")


def sanitize_filename(name: str) -> str:
    """A safe display filename: matches ``^[A-Za-z0-9._-]+$`` and never contains ``..``.

    The rule: basename, drop control characters, separators and every other
    character outside ``[A-Za-z0-9._-]`` become ``_``, collapse ``_`` runs, trim ``_``,
    empty -> ``"upload"``; with these deliberate additions:

    * the input is NFC-normalised first, so a name gives the same result whether the
      client sent composed or decomposed accents (macOS sends decomposed);
    * the basename splits on both ``/`` and ``\\``;
    * runs of ``.`` collapse to one, and a result of only ``.`` becomes ``"upload"``;
    * results longer than :data:`MAX_FILENAME_LENGTH` are cut, keeping the extension.

    ``"../../unsafe name?.png"`` -> ``"unsafe_name_.png"``; ``"???"`` -> ``"upload"``;
    ``"résumé 日本.png"`` -> ``"r_sum_.png"``. The function is idempotent.
    """
    text = unicodedata.normalize("NFC", str(name))
    text = _SEPARATORS.split(text)[-1]  # 1. basename
    text = _CONTROL.sub("", text)  # 2. control characters
    text = _SEPARATORS.sub("_", text)  # 3. (no separators are left after 1)
    text = _UNSAFE.sub("_", text)  # 4. one "_" per unsafe code point
    text = _tidy(text)  # 5-6. collapse "_" (and "."), trim "_"
    if len(text) > MAX_FILENAME_LENGTH:
        text = _tidy(_truncate(text))
    return text if text.strip(".") else DEFAULT_FILENAME  # 7. empty -> "upload"


def _tidy(text: str) -> str:
    text = _DOTS.sub(".", _UNDERSCORES.sub("_", text))
    return text.strip("_")


def _truncate(text: str) -> str:
    stem, dot, ext = text.rpartition(".")
    if dot and stem and len(ext) + 1 <= _MAX_EXTENSION:
        keep = MAX_FILENAME_LENGTH - len(ext) - 1
        return f"{stem[:keep].rstrip('._')}.{ext}"
    return text[:MAX_FILENAME_LENGTH]
