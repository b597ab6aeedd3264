"""Durable jobs: transactional enqueue, leased claims, retries, cron, workers."""

from rindle.jobs.executor import Executor, Relay, RelayReport, run_job
from rindle.jobs.outcomes import Cancel, Retry
from rindle.jobs.queue import (
    DEFAULT_ATTEMPTS,
    QUEUES,
    EnqueueResult,
    Handler,
    JobContext,
    JobQueue,
    JobRef,
    QueueApp,
)
from rindle.jobs.worker import Worker

__all__ = [
    "DEFAULT_ATTEMPTS",
    "QUEUES",
    "Cancel",
    "EnqueueResult",
    "Executor",
    "Handler",
    "JobContext",
    "JobQueue",
    "JobRef",
    "QueueApp",
    "Relay",
    "RelayReport",
    "Retry",
    "Worker",
    "run_job",
]
