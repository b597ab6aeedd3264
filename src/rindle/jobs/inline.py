"""Inline jobs, for an app's tests: every job runs in the committing thread, no worker.

With ``[jobs] executor = "inline"`` (or ``Rindle(jobs="inline")``) the queue's
:attr:`~rindle.jobs.JobQueue.publisher` is an :class:`InlineRunner`: once the transaction
that enqueued a job commits (inside ``app.bind``: once the host commits), the job is
claimed by id and run right there, through the same handler, lease and settle code
``rindle worker`` uses. When the call that enqueued it returns, the job has finished:
``app.upload`` returns with the asset promoted and its variants ready (or failed).

Retries do not wait: a failing job's attempts run back to back, each recorded as
``rindle worker`` would record it, until it completes or is ``discarded`` on its last
attempt (``max_attempts``); nothing is raised to the caller, whose own transaction has
already committed. The job row keeps the outcome and ``last_error``. Jobs enqueued while a
job runs (promotion enqueues the variants) run after it, in order, in the same thread. A
job whose ``run_at`` is still ahead (scheduled work) is left to a worker or
``app.jobs.drain(with_scheduled=True)``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, update

from rindle.domain.models import Job, table_of
from rindle.jobs.queue import JobQueue, JobRef

__all__ = ["INLINE", "InlineRunner"]

log = logging.getLogger(__name__)

#: The ``[jobs] executor`` name that runs jobs inline.
INLINE = "inline"

_T: Table = table_of(Job)


class InlineRunner:
    """Runs committed jobs at once in the committing thread (a queue's ``publisher``)."""

    def __init__(self, queue: JobQueue[Any]) -> None:
        self.queue = queue
        self._local = threading.local()  # .pending: deque of ids; set while this thread runs

    def __call__(self, jobs: Sequence[JobRef]) -> int:
        """Run ``jobs`` (and every job they enqueue) to a final outcome; returns how many of
        ``jobs`` ran. Called again from inside a running job (its transaction enqueued
        more), it only queues them: the outer call runs them next."""
        pending: deque[uuid.UUID] | None = getattr(self._local, "pending", None)
        if pending is not None:
            pending.extend(job.id for job in jobs)
            return 0
        pending = self._local.pending = deque(job.id for job in jobs)
        ran = 0
        try:
            while pending:
                if self.run(pending.popleft()) is not None:
                    ran += 1
        finally:
            self._local.pending = None
        return ran

    def run(self, job_id: uuid.UUID) -> str | None:
        """Run ``job_id``'s attempts back to back until it is final; its last outcome, or
        None when it was not claimable (not yet due, leased elsewhere, final)."""
        queue = self.queue
        worker_id = f"inline-{uuid.uuid4().hex[:8]}"
        outcome: str | None = None
        while True:
            job = queue.claim_by_id(job_id, worker_id)
            if job is None:
                return outcome
            outcome = queue.execute(job)
            if outcome != "retryable":
                return outcome
            with queue.db.begin() as conn:  # the next attempt is due now: no backoff wait
                conn.execute(update(_T).where(_T.c.id == job_id, _T.c.state == "retryable")
                             .values(run_at=queue.clock()))
