"""Storage key layout.

Originals live at ``<profile_seg>/<asset_seg>/<uuid4><ext>`` and variants at
``<profile_seg>/<asset_seg>/<variant_seg>-<digest><ext>``. Every segment is sanitised, so
no key contains ``..``, a backslash, an empty segment or a leading ``/``, and nothing in a
key comes from the client's filename except a normalised extension.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

__all__ = ["generate_key", "key_extension", "key_segment", "variant_key"]

_SEGMENT_UNSAFE: Final = re.compile(r"[^a-z0-9_-]")
_EXT_UNSAFE: Final = re.compile(r"[^a-z0-9.]")
_DIGEST_UNSAFE: Final = re.compile(r"[^a-z0-9]")
_DOTS: Final = re.compile(r"\.{2,}")


def key_segment(value: object, fallback: str) -> str:
    """One path segment: lowercase, every char outside ``[a-z0-9_-]`` -> ``-``, ``-`` trimmed.

    ``"Elixir.MyApp.AvatarProfile"`` -> ``"elixir-myapp-avatarprofile"``. A UUID is used
    in its canonical text form; any other non-string, or an empty result, gives
    ``fallback``.
    """
    if isinstance(value, uuid.UUID):
        value = str(value)
    if not isinstance(value, str):
        return fallback
    segment = _SEGMENT_UNSAFE.sub("-", value.lower()).strip("-")
    return segment or fallback


def key_extension(extension: str | None) -> str:
    """``"PNG"`` -> ``".png"``: lowercase, chars outside ``[a-z0-9.]`` dropped, one leading dot.

    Runs of dots collapse and trailing dots go, so ``"..png"`` -> ``".png"``; an empty
    result is ``""``.
    """
    if not isinstance(extension, str):
        return ""
    ext = _DOTS.sub(".", _EXT_UNSAFE.sub("", extension.lower())).strip(".")
    return f".{ext}" if ext else ""


def generate_key(profile_name: object, asset_id: object, extension: str | None) -> str:
    """A fresh, unguessable key for an original: ``<profile>/<asset>/<uuid4><ext>``.

    A new UUID4 is drawn on every call, so two calls never return the same key.
    """
    return (f"{key_segment(profile_name, 'profile')}/{key_segment(asset_id, 'asset')}/"
            f"{uuid.uuid4()}{key_extension(extension)}")


def variant_key(profile_name: object, asset_id: object, variant_name: object, digest: str,
                extension: str | None) -> str:
    """The deterministic key of a variant: ``<profile>/<asset>/<variant>-<digest><ext>``.

    Re-running the same recipe overwrites the same key; a changed recipe (new digest)
    writes a new one. ``digest`` is lowercased and stripped to ``[a-z0-9]``; an empty
    digest raises ``ValueError`` because it would make every recipe share one key.
    """
    clean_digest = _DIGEST_UNSAFE.sub("", str(digest).lower())
    if not clean_digest:
        raise ValueError(f"variant_key needs a recipe digest of hex characters, got {digest!r}")
    return (f"{key_segment(profile_name, 'profile')}/{key_segment(asset_id, 'asset')}/"
            f"{key_segment(variant_name, 'variant')}-{clean_digest}{key_extension(extension)}")
