"""Registers the built-in ``local`` storage backend."""

from __future__ import annotations

from collections.abc import Callable

from rindle.hookspecs import hookimpl
from rindle.storage.local import LocalStorage


@hookimpl
def register_storage_backends(register: Callable[[str, type], None]) -> None:
    """Provide ``backend = "local"``."""
    register("local", LocalStorage)
