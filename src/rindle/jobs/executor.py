"""External executors: run rindle's jobs on another engine (Celery, Dramatiq, RQ).

The job table stays the source of truth (a transactional outbox): a job is enqueued in
the caller's transaction exactly as for ``rindle worker``. Once that transaction commits,
the app hands the new jobs to its :class:`Executor` (``[jobs] executor = "NAME"``, a class
a plugin registers with the ``register_executors`` hook), which publishes each job's id
to its engine. The engine's task calls :func:`run_job` with that id: it claims the row by
id under a lease (:meth:`~rindle.jobs.JobQueue.claim_by_id`), runs the same handler
``rindle worker`` runs and settles the row, so retries, backoff, :class:`Cancel`, unique
keys, max attempts and leases behave exactly as under ``rindle worker``.

A message the broker lost is published again by the :class:`Relay`'s sweep (``rindle
relay``, or the engine's own scheduler calling :meth:`Relay.tick`), which publishes every
job that is due and not leased; a duplicate message finds the row already claimed (or
final) and does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select

from rindle.domain.models import Job, table_of
from rindle.jobs import leases
from rindle.jobs.cron import CronEntry, parse_schedule, schedule_due
from rindle.jobs.queue import JobQueue, JobRef, QueueApp

__all__ = ["Executor", "Relay", "RelayReport", "run_job"]

log = logging.getLogger(__name__)

_T: Table = table_of(Job)

#: The sweep leaves alone a job touched less than this many seconds ago: it was just
#: enqueued (and published at commit) or just settled.
RELAY_MIN_AGE = 2.0
#: A job this relay published is not published again for this many seconds, however long
#: the engine takes to reach it (a deep backlog is not flooded with copies).
RELAY_REPUBLISH_AFTER = 60.0
#: At most this many jobs per sweep.
RELAY_BATCH = 5000


class Executor(ABC):
    """A job engine rindle hands its due jobs to; a plugin registers a subclass with the
    ``register_executors`` hook under the name ``[jobs] executor`` selects.

    The app builds it once, as ``Executor(app, options)``: ``app`` is the
    :class:`rindle.Rindle` (its ``jobs`` queue, ``settings``, ``db``) and ``options`` the
    ``[jobs.executor_options]`` table, which the executor checks (an unknown or bad key is
    a :class:`rindle.errors.ConfigError`).
    """

    def __init__(self, app: QueueApp, options: Mapping[str, Any]) -> None:
        self.app = app
        self.options = dict(options)

    @abstractmethod
    def publish(self, jobs: Sequence[JobRef]) -> int:
        """Hand each job's id to the engine (a job whose ``run_at`` is ahead may be
        delayed until then); returns how many were sent. Raise when the engine cannot be
        reached: the caller logs it, and the relay's sweep publishes the jobs later."""

    def close(self) -> None:  # noqa: B027 - optional: most executors hold nothing
        """Release connections to the engine (default: nothing)."""


class _LeaseKeeper:
    """One daemon thread per process extending the leases of the jobs :func:`run_job` is
    running, every third of the shortest lease among them (the heartbeat ``rindle
    worker`` keeps for its jobs). Started on first use, so a forked child starts its own."""

    def __init__(self) -> None:
        self._held: dict[uuid.UUID, tuple[JobQueue[Any], str, float]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid: int | None = None

    @contextmanager
    def hold(self, queue: JobQueue[Any], worker_id: str, job_id: uuid.UUID, lease: float
             ) -> Iterator[None]:
        """Keep ``job_id`` leased while the block runs."""
        with self._lock:
            self._held[job_id] = (queue, worker_id, lease)
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._beat, name="rindle-lease-keeper",
                                 daemon=True).start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(job_id, None)

    def _beat(self) -> None:
        while True:
            with self._lock:
                held = dict(self._held)
            pause = min((lease / 3 for _, _, lease in held.values()), default=1.0)
            self._wake.wait(pause)
            for job_id, (queue, worker_id, lease) in held.items():
                with self._lock:
                    if job_id not in self._held:
                        continue
                try:
                    queue.extend_leases(worker_id, [job_id], lease_seconds=lease)
                except Exception:
                    log.exception("extending the lease of job %s failed", job_id)


_keeper = _LeaseKeeper()


def run_job(queue: JobQueue[Any], job_id: uuid.UUID | str, *, worker_id: str,
            executor: Executor | None = None) -> str | None:
    """Claim job ``job_id`` under a lease, run its handler and settle it, as ``rindle
    worker`` does; returns the outcome (``completed``, ``retryable``, ``discarded``,
    ``cancelled``), or None when the job was not claimable (a duplicate message, a job
    not yet due, leased by a live worker, final, or unknown): then nothing ran.

    The lease is extended every third of ``[jobs] lease_seconds`` while the handler runs.
    A job left ``retryable`` is published again through ``executor`` (if given), due at
    its new ``run_at``; a failure to publish is logged (the relay's sweep republishes).
    """
    with leases.pinned(queue.db):  # the claim and the settle share one connection
        job = queue.claim_by_id(uuid.UUID(str(job_id)), worker_id)
        if job is None:
            return None
        with _keeper.hold(queue, worker_id, job.id, queue.lease_seconds):
            outcome = queue.execute(job)
    if outcome == "retryable" and executor is not None:
        with queue.db.engine.connect() as conn:
            row = conn.execute(select(_T.c.id, _T.c.queue, _T.c.run_at).where(
                _T.c.id == job.id, _T.c.state == "retryable")).first()
        if row is not None:
            try:
                executor.publish([JobRef(row.id, row.queue, row.run_at)])
            except Exception as exc:
                log.warning("rindle.job.publish_failed id=%s error=%s: the relay sweep will "
                            "publish it", job.id, type(exc).__name__)
    return outcome


@dataclass(frozen=True)
class RelayReport:
    """What one :meth:`Relay.tick` did: cron jobs enqueued, jobs published, publish
    failures."""

    scheduled: int
    published: int
    failed: int

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return {"scheduled": self.scheduled, "published": self.published,
                "failed": self.failed}


class Relay:
    """The outbox relay of an external executor: the ``[cron]`` schedule, then a sweep
    publishing every job that is due and not leased (``executing`` under a lease that ran
    out counts as not leased: its worker died).

    The sweep skips jobs touched less than ``min_age`` seconds ago (just enqueued and
    published at commit, or just settled), and jobs this relay published less than
    ``republish_after`` seconds ago. Times come from the queue's clock.
    """

    def __init__(self, queue: JobQueue[Any], executor: Executor, *,
                 cron_entries: Sequence[CronEntry] = (), min_age: float = RELAY_MIN_AGE,
                 republish_after: float = RELAY_REPUBLISH_AFTER,
                 batch: int = RELAY_BATCH) -> None:
        self.queue = queue
        self.executor = executor
        self.cron_entries = list(cron_entries)
        self.min_age = dt.timedelta(seconds=min_age)
        self.republish_after = dt.timedelta(seconds=republish_after)
        self.batch = batch
        self._published: dict[uuid.UUID, dt.datetime] = {}
        self._since: dt.datetime | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_queue(cls, queue: JobQueue[Any], executor: Executor, *, cron: bool = True
                  ) -> Relay:
        """A relay for ``queue`` with the ``[cron]`` schedule of its app's settings (none
        with ``cron=False``); a bad ``[cron]`` entry is a :class:`ConfigError`."""
        entries = parse_schedule(queue.app.settings.cron, queue) if cron else []
        return cls(queue, executor, cron_entries=entries)

    def sweep(self) -> tuple[int, int]:
        """Publish the due, unleased jobs; returns (published, failed)."""
        now = self.queue.clock()
        rows = leases.unleased_due(self.queue.db, now=now, limit=self.batch)
        with self._lock:
            self._published = {k: v for k, v in self._published.items()
                               if now - v < self.republish_after}
            refs = [JobRef(r.id, r.queue, r.run_at) for r in rows
                    if now - r.updated_at >= self.min_age and r.id not in self._published]
        if not refs:
            return 0, 0
        try:
            sent = self.executor.publish(refs)
        except Exception as exc:
            log.warning("rindle.relay.publish_failed jobs=%d error=%s: retried next sweep",
                        len(refs), type(exc).__name__)
            return 0, len(refs)
        with self._lock:
            self._published.update((ref.id, now) for ref in refs)
        return sent, 0

    def tick(self) -> RelayReport:
        """Enqueue the ``[cron]`` slots due since the last tick (the first tick: this
        minute's), then sweep. A failing cron step is logged; the sweep still runs."""
        now = self.queue.clock()
        scheduled = 0
        if self.cron_entries:
            try:
                scheduled = schedule_due(self.queue, self.cron_entries, now, since=self._since)
                self._since = now
            except Exception:
                log.exception("cron scheduling failed; retrying next tick")
        published, failed = self.sweep()
        return RelayReport(scheduled, published, failed)

    def run(self, interval: float, stop: threading.Event) -> int:
        """Tick every ``interval`` seconds until ``stop`` is set; returns how many jobs it
        published."""
        total = 0
        while not stop.is_set():
            total += self.tick().published
            stop.wait(interval)
        return total
