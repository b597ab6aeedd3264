"""The ``rindle`` entry point of rindle-celery: registers ``[jobs] executor = "celery"``."""

from __future__ import annotations

from collections.abc import Callable

from rindle import hookimpl
from rindle_celery.executor import CeleryExecutor


@hookimpl
def register_executors(register: Callable[[str, type], None]) -> None:
    """Provide ``executor = "celery"``."""
    register("celery", CeleryExecutor)
