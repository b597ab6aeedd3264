"""Durable jobs: transactional enqueue, leased claims, retries, cron, workers."""

from rindle.jobs.outcomes import Cancel, Retry
from rindle.jobs.queue import (
    DEFAULT_ATTEMPTS,
    QUEUES,
    EnqueueResult,
    Handler,
    JobContext,
    JobQueue,
)
from rindle.jobs.worker import Worker

__all__ = [
    "DEFAULT_ATTEMPTS",
    "QUEUES",
    "Cancel",
    "EnqueueResult",
    "Handler",
    "JobContext",
    "JobQueue",
    "Retry",
    "Worker",
]
