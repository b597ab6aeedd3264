"""Registers the built-in ``inline`` job executor (``[jobs] executor = "inline"``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from rindle.errors import ConfigError
from rindle.hookspecs import hookimpl
from rindle.jobs.executor import Executor
from rindle.jobs.inline import INLINE, InlineRunner
from rindle.jobs.queue import JobRef, QueueApp

if TYPE_CHECKING:
    from rindle.context import AppContext

__all__ = ["InlineExecutor", "register_executors"]


class InlineExecutor(Executor):
    """Runs every committed job at once, in the committing thread (see
    :mod:`rindle.jobs.inline`): for an app's tests, no worker needed. Takes no options."""

    def __init__(self, app: QueueApp, options: Mapping[str, Any]) -> None:
        super().__init__(app, options)
        if options:
            raise ConfigError(f"[jobs.executor_options]: the inline executor takes no "
                              f"options, got {', '.join(sorted(options))}")
        self._runner: InlineRunner | None = None

    def publish(self, jobs: Sequence[JobRef]) -> int:
        """Run ``jobs`` now (each to a final outcome); returns how many ran."""
        if self._runner is None:
            self._runner = InlineRunner(cast("AppContext", self.app).jobs)
        return self._runner(jobs)


@hookimpl
def register_executors(register: Callable[[str, type], None]) -> None:
    """Provide ``[jobs] executor = "inline"``."""
    register(INLINE, InlineExecutor)
