"""Attachments: who holds an asset, and which assets can be attached.

Attaching and detaching (which may queue a purge) is the service in
:mod:`rindle.attachments`, reached as :meth:`rindle.Rindle.attach` and
:meth:`rindle.Rindle.detach`.
"""

from __future__ import annotations

from typing import NamedTuple

from rindle.errors import UsageError

__all__ = ["ATTACHABLE", "MAX_NAME", "Owner", "check_slot", "to_owner"]

#: The longest owner type, owner id and slot name (the columns are ``VARCHAR(255)``).
MAX_NAME = 255

#: The asset states in which an asset can be attached to an owner's slot.
ATTACHABLE = ("analyzing", "validating", "promoting", "available", "processing",
              "transcoding", "ready", "degraded")


class Owner(NamedTuple):
    """Who holds an asset: a type name and an id (ids are strings)."""

    type: str
    id: str


def _fits(value: str) -> bool:
    return len(value) <= MAX_NAME and "\x00" not in value


def _preview(value: object) -> str:
    """A short ``repr`` of a caller's value for an error message (at most 60 characters)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_owner(owner: Owner | tuple[str, object]) -> Owner:
    """Normalise ``(type, id)`` into an :class:`Owner` with a string id.

    Raises :class:`~rindle.errors.UsageError` (code ``invalid_owner``) when ``owner`` is
    not a pair (a ``"user:42"`` string included: that is the command line's spelling), when
    the type is not a non-empty string, or the type or the id (as a string) is longer than
    :data:`MAX_NAME` characters or holds a NUL character (no database column takes it).
    """
    if isinstance(owner, (str, bytes)) or not isinstance(owner, (tuple, list)) \
            or len(owner) != 2:
        raise UsageError(f"owner must be an Owner(type, id) or a (type, id) tuple, e.g. "
                         f"(\"user\", 42), got {_preview(owner)}", code="invalid_owner")
    kind, ident = owner
    if not isinstance(kind, str) or not kind:
        raise UsageError("owner type must be a non-empty string", code="invalid_owner")
    text = str(ident)
    if not (_fits(kind) and _fits(text)):
        raise UsageError(f"owner type and id must be at most {MAX_NAME} characters without "
                         "NUL characters", code="invalid_owner")
    return Owner(kind, text)


def check_slot(slot: object) -> str:
    """``slot`` when it is a usable slot name: a non-empty string of at most
    :data:`MAX_NAME` characters without NUL; else :class:`~rindle.errors.UsageError`
    (code ``invalid_slot``)."""
    if not isinstance(slot, str) or not slot or not _fits(slot):
        raise UsageError(f"slot must be a non-empty string of at most {MAX_NAME} characters "
                         f"without NUL characters, got {str(slot)[:40]!r}", code="invalid_slot")
    return slot
