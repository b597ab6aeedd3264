"""Attachments: who holds an asset, and which assets can be attached.

Attaching and detaching (which may queue a purge) is the service in
:mod:`rindle.attachments`, reached as :meth:`rindle.Rindle.attach` and
:meth:`rindle.Rindle.detach`.
"""

from __future__ import annotations

from typing import NamedTuple

from rindle.errors import UsageError

__all__ = ["ATTACHABLE", "Owner", "to_owner"]

#: The asset states in which an asset can be attached to an owner's slot.
ATTACHABLE = ("analyzing", "validating", "promoting", "available", "processing",
              "transcoding", "ready", "degraded")


class Owner(NamedTuple):
    """Who holds an asset: a type name and an id (ids are strings)."""

    type: str
    id: str


def to_owner(owner: Owner | tuple[str, object]) -> Owner:
    """Normalise ``(type, id)`` into an :class:`Owner` with a string id.

    Raises :class:`~rindle.errors.UsageError` (code ``invalid_owner``) when the type is not
    a non-empty string.
    """
    kind, ident = owner
    if not isinstance(kind, str) or not kind:
        raise UsageError("owner type must be a non-empty string", code="invalid_owner")
    return Owner(kind, str(ident))
