"""The ``rindle`` entry point of rindle-s3: registers ``backend = "s3"``."""

from __future__ import annotations

from collections.abc import Callable

from rindle import hookimpl
from rindle_s3.storage import S3Storage


@hookimpl
def register_storage_backends(register: Callable[[str, type], None]) -> None:
    """Provide ``backend = "s3"``."""
    register("s3", S3Storage)
