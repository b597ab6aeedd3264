"""Which profiles and variants an operation covers (``--profile`` / ``--variant``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rindle.errors import UnknownProfile, UsageError

if TYPE_CHECKING:
    from rindle.app import Rindle
    from rindle.domain.profile import Profile

__all__ = ["profiles_in_scope", "variant_names"]


def profiles_in_scope(app: Rindle, profile: str | None) -> list[type[Profile]]:
    """The configured profiles an operation walks; an unknown name is a usage error."""
    if profile is None:
        return list(app.profiles.values())
    try:
        return [app.profile(profile)]
    except UnknownProfile as exc:
        raise UsageError(exc.message) from None


def variant_names(prof: type[Profile], variant: str | None) -> list[str]:
    """The variant names of ``prof`` in scope (all, or the one asked for if it has it)."""
    names = [n for n, _ in prof.variant_specs()]
    if variant is None:
        return names
    return [variant] if variant in names else []
