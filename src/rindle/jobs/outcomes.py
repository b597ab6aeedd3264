"""How a job handler says "try again later" or "stop for good"."""

from __future__ import annotations

__all__ = ["Cancel", "Retry"]


class Retry(Exception):
    """The attempt failed; run the job again after a backoff (until ``max_attempts``).

    Any other exception a handler raises is treated the same way. ``delay`` (seconds)
    overrides the computed backoff.
    """

    def __init__(self, reason: str, *, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class Cancel(Exception):
    """The job can never succeed; it becomes ``cancelled`` and is not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
