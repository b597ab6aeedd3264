"""The media-lifecycle job kinds, kept importable here; they live in :mod:`rindle.jobs.kinds`."""

from __future__ import annotations

from rindle.jobs.kinds import (
    PROCESS_VARIANT,
    PROMOTE,
    PURGE,
    process_unique_key,
    purge_unique_key,
)

__all__ = [
    "PROCESS_VARIANT",
    "PROMOTE",
    "PURGE",
    "process_unique_key",
    "purge_unique_key",
]
