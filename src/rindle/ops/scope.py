"""Which profiles and variants an operation covers (``--profile`` / ``--variant``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rindle.errors import UnknownProfile, UsageError

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.domain.profile import Profile

__all__ = ["profiles_in_scope", "variant_names"]


def profiles_in_scope(app: AppContext, profile: str | None, variant: str | None = None
                      ) -> list[type[Profile]]:
    """The configured profiles an operation walks (all of them, or ``profile``).

    Raises :class:`UsageError` (the CLI exits 2) with code ``unknown_profile`` listing the
    configured profiles when ``profile`` is not one of them, and with code
    ``unknown_variant`` listing the variants in scope when ``variant`` is given and no
    profile in scope declares it.
    """
    if profile is None:
        profiles = list(app.profiles.values())
    else:
        try:
            profiles = [app.profile(profile)]
        except UnknownProfile as exc:
            raise UsageError(exc.message, code="unknown_profile") from None
    if variant is not None and not any(variant in variant_names(p, None) for p in profiles):
        if profile is not None:
            known = ", ".join(variant_names(profiles[0], None)) or "none"
            where = f" for profile {profile!r}; its variants: {known}"
        else:
            known = "; ".join(f"{p.name}: {', '.join(variant_names(p, None)) or 'none'}"
                              for p in sorted(profiles, key=lambda p: p.name)) or "none"
            where = f"; variants by profile: {known}"
        raise UsageError(f"unknown variant {variant!r}{where}", code="unknown_variant")
    return profiles


def variant_names(prof: type[Profile], variant: str | None) -> list[str]:
    """The variant names of ``prof`` in scope (all, or the one asked for if it has it)."""
    names = [n for n, _ in prof.variant_specs()]
    if variant is None:
        return names
    return [variant] if variant in names else []
