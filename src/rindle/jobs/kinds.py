"""Job kinds of the media lifecycle (promote, process a variant, purge) and their unique keys."""

from __future__ import annotations

__all__ = [
    "PROCESS_VARIANT",
    "PROMOTE",
    "PURGE",
    "process_unique_key",
    "promote_unique_key",
    "purge_unique_key",
]

PROMOTE = "rindle.promote"
PROCESS_VARIANT = "rindle.process_variant"
PURGE = "rindle.purge"


def promote_unique_key(asset_id: object) -> str:
    """At most one live promotion job per asset."""
    return f"promote:{asset_id}"


def process_unique_key(asset_id: object, variant_name: str) -> str:
    """At most one live process job per (asset, variant)."""
    return f"process:{asset_id}:{variant_name}"


def purge_unique_key(asset_id: object) -> str:
    """At most one live purge job per asset."""
    return f"purge:{asset_id}"
