"""A long-running worker: a claiming loop and a lazy thread pool per queue, leases kept
alive, heartbeats, cron.

``Worker(app, queues={"process": 4, "promote": 2}).run()`` blocks until SIGINT/SIGTERM
(or :meth:`Worker.stop`); running jobs finish first, and a second signal exits at once
(unfinished jobs then come back when their leases expire).

Each queue has ONE claiming loop and a pool of at most its concurrency in job threads.
The loop waits for a free slot, claims up to ``prefetch`` jobs for each free slot in one
statement and hands them out as batches, one per slot; a job thread runs its batch and
acknowledges its successes together. Job threads start only when a claim hands them work,
so an idle queue costs one poller and no job threads, whatever its concurrency. The
prefetch is adaptive: while the queue is deep (a claim came back full) and the jobs are
short (a batch ran within :data:`ADAPTIVE_WINDOW` seconds), the next claim takes twice as
many per slot, up to :data:`ADAPTIVE_PREFETCH_MAX`; a short claim or a slow batch drops
back to ``prefetch``. The heartbeat refreshes this worker's row in
``rindle_worker_heartbeats`` and extends the leases of the jobs it holds. Heartbeat times,
lease deadlines and cron slots come from the queue's clock (``app.jobs.clock``); only the
pauses between polls and beats are real time.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Table, delete
from sqlalchemy.dialects import postgresql, sqlite

from rindle.domain.models import WorkerHeartbeat, table_of
from rindle.errors import ConfigError
from rindle.jobs.cron import parse_schedule, schedule_due
from rindle.jobs.queue import QUEUES, JobContext, JobQueue

if TYPE_CHECKING:
    from rindle.config import Settings
    from rindle.database import Database

__all__ = ["ADAPTIVE_PREFETCH_MAX", "ADAPTIVE_WINDOW", "DEFAULT_CONCURRENCY", "Worker",
           "WorkerApp"]

log = logging.getLogger(__name__)

#: Job threads per queue when none are given. ``provider`` jobs wait on a provider's
#: network API, not the CPU: 16 of them in flight let a worker sync hundreds of rows per
#: second, while the provider client's own pacing (``rate_limit_per_second`` in
#: rindle-mux), shared by every thread of the process, bounds the requests per second.
#: Job threads start only when there is work, so an idle queue costs one poller.
DEFAULT_CONCURRENCY = {"promote": 2, "process": 2, "purge": 1, "maintenance": 1,
                       "provider": 16}
_HB: Table = table_of(WorkerHeartbeat)
#: The most jobs one claim takes when the adaptive prefetch has grown.
ADAPTIVE_PREFETCH_MAX = 32
#: A full batch that ran within this many seconds lets the next claim take twice as many;
#: a slower one (long jobs) drops back to ``prefetch``, so long jobs are never hoarded.
ADAPTIVE_WINDOW = 0.25

#: Longest the main thread of :meth:`Worker.run` blocks at a time. CPython runs signal
#: handlers only in the main thread, and a signal the kernel hands to a job thread does
#: not wake it: the handler runs when the main thread next wakes, so it must wake often
#: (otherwise a second signal would wait for the running jobs to end).
_SIGNAL_CHECK = 0.1


class WorkerApp(Protocol):
    """What a :class:`Worker` needs from its app (a :class:`rindle.Rindle` is one)."""

    @property
    def settings(self) -> Settings:
        """The validated settings (``settings.jobs``, ``settings.cron``)."""

    @property
    def db(self) -> Database:
        """The database heartbeats are written to."""

    @property
    def jobs(self) -> JobQueue[Any]:
        """The queue the worker runs jobs from."""


class _Pool:
    """One queue's slots and lazily started job threads; every field is guarded by
    ``lock`` (``work`` wakes job threads, ``freed`` the queue's claiming loop)."""

    def __init__(self, queue: str, size: int, prefetch: int) -> None:
        self.queue = queue
        self.size = size
        self.lock = threading.Lock()
        self.work = threading.Condition(self.lock)
        self.freed = threading.Condition(self.lock)
        #: Batches handed out and not yet picked up: (jobs, prefetch per slot, claimed
        #: per free slot).
        self.pending: deque[tuple[list[JobContext], int, int]] = deque()
        self.busy = 0  # slots holding a batch (pending or running)
        self.waiting = 0  # job threads waiting for a batch
        self.threads: list[threading.Thread] = []
        self.closing = False
        self.limit = prefetch  # jobs the next claim asks for per free slot


class Worker:
    """Runs jobs from the chosen queues until stopped.

    ``queues`` maps queue name -> concurrency (the most jobs of that queue running at
    once), or lists names that each get ``concurrency`` (default: the queue's
    :data:`DEFAULT_CONCURRENCY`, 1 for a queue not named there); without it every queue
    runs (``concurrency`` each, or :data:`DEFAULT_CONCURRENCY`). Each queue gets one
    claiming loop and up to that many job threads, started only when a claim hands them
    work; a started job thread then waits for the next batch without polling until the
    worker stops. An unknown queue or a ``[cron]`` entry whose kind is not registered is a
    :class:`ConfigError` here, before anything runs.
    """

    def __init__(self, app: WorkerApp, queues: Mapping[str, int] | Sequence[str] | None = None,
                 *, concurrency: int | None = None, cron: bool = True,
                 lease_seconds: float | None = None, poll_interval: float | None = None,
                 heartbeat_interval: float = 5.0, worker_id: str | None = None,
                 prefetch: int | None = None) -> None:
        self.app = app
        self.jobs = app.jobs
        self.queues = _resolve_queues(queues, concurrency, self.jobs.queue_names())
        self.lease_seconds = lease_seconds or self.jobs.lease_seconds
        self.poll_interval = (poll_interval if poll_interval is not None
                              else app.settings.jobs.poll_interval)
        self.heartbeat_interval = heartbeat_interval
        #: Jobs a claim takes per free slot (grown by the adaptive prefetch); a job thread
        #: runs them as one batch and acknowledges their successes together.
        self.prefetch = max(1, int(prefetch or app.settings.jobs.prefetch))
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.cron_entries = parse_schedule(app.settings.cron, self.jobs) if cron else []
        self._stop = threading.Event()
        self._running: dict[uuid.UUID, JobContext] = {}
        self._lock = threading.Lock()
        self._idle: dict[str, bool] = {}
        self._pools: dict[str, _Pool] = {}
        self.executed = 0
        #: Job threads each queue started so far (they start lazily, when a claim hands
        #: them work: a queue that never had work started none).
        self.job_threads: dict[str, int] = dict.fromkeys(self.queues, 0)

    # --- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask every thread to finish its current job and exit."""
        self._stop.set()

    def wait_for_stop(self, timeout: float | None = None) -> bool:
        """Block until a stop was asked for (:meth:`stop`, or a first SIGINT/SIGTERM that
        :meth:`run` handled), at most ``timeout`` seconds; returns whether it was.

        Running jobs may still be finishing when this returns.
        """
        return self._stop.wait(timeout)

    def run(self, *, install_signals: bool = True) -> None:
        """Run until :meth:`stop` or SIGINT/SIGTERM; running jobs finish first.

        Signal handlers are installed only from the main thread, and restored on return.
        A signal is acted on within a fraction of a second whichever thread the kernel
        delivers it to, while jobs are running too: a second one raises
        ``SystemExit(128 + signum)`` without waiting for them.
        """
        previous = self._install_signals() if (
            install_signals and threading.current_thread() is threading.main_thread()) else {}
        try:
            threads = self._start_threads(until_empty=False)
            try:
                next_beat = time.monotonic() + self.heartbeat_interval
                while not self._stop.wait(
                        min(_SIGNAL_CHECK, max(next_beat - time.monotonic(), 0.0))):
                    if time.monotonic() >= next_beat:
                        self._beat()
                        next_beat = time.monotonic() + self.heartbeat_interval
            finally:
                self._stop.set()
                for t in threads:
                    while t.is_alive():  # in slices, so pending signal handlers get to run
                        t.join(_SIGNAL_CHECK)
                self._forget()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def run_until_empty(self, *, timeout: float | None = None) -> int:
        """Run until no queue has due work and no job is running (or ``timeout``
        seconds passed: running jobs finish, claimed unstarted ones go back); returns how
        many jobs this worker ran. No cron."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._stop.is_set():
                threads = self._start_threads(until_empty=True)
                next_beat = time.monotonic() + self.heartbeat_interval
                while any(t.is_alive() for t in threads):
                    if deadline is not None and time.monotonic() > deadline:
                        self._stop.set()
                    if time.monotonic() > next_beat:
                        self._beat()
                        next_beat = time.monotonic() + self.heartbeat_interval
                    time.sleep(0.02)
                for t in threads:
                    t.join()
                # a thread may have quit just before another enqueued for its queue
                if not self.jobs.has_due(list(self.queues)):
                    break
        finally:
            self._stop.set()
            self._forget()
        return self.executed

    def _install_signals(self) -> dict[int, Any]:
        def handle(signum: int, _frame: FrameType | None) -> None:
            if self._stop.is_set():
                log.warning("second signal: exiting now; unfinished jobs return when "
                            "their leases expire")
                raise SystemExit(128 + signum)
            log.warning("stopping: letting running jobs finish (signal again to exit now)")
            self.stop()

        return {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _start_threads(self, *, until_empty: bool) -> list[threading.Thread]:
        """Start one claiming loop per queue (and the cron loop); each loop starts its own
        job threads as work arrives and joins them before it ends."""
        self._beat()
        threads = []
        for queue, count in self.queues.items():
            pool = self._pools[queue] = _Pool(queue, count, self.prefetch)
            self._idle[queue] = False
            threads.append(threading.Thread(target=self._loop, args=(pool, until_empty),
                                            name=f"rindle-{queue}", daemon=True))
        if self.cron_entries and not until_empty:
            threads.append(threading.Thread(target=self._cron_loop, name="rindle-cron",
                                            daemon=True))
        for t in threads:
            t.start()
        return threads

    # --- loops ----------------------------------------------------------------------------

    def _loop(self, pool: _Pool, until_empty: bool) -> None:
        """The queue's claiming loop: wait for a free slot, claim for every free slot,
        hand the jobs out; on stop (or, ``until_empty``, once every queue is idle) let the
        job threads finish what they hold and join them."""
        queue = pool.queue
        try:
            while not self._stop.is_set():
                with pool.lock:
                    while pool.busy >= pool.size and not self._stop.is_set():
                        pool.freed.wait(_SIGNAL_CHECK)
                    free, limit = pool.size - pool.busy, pool.limit
                if self._stop.is_set():
                    break
                try:
                    jobs = self.jobs.claim([queue], self.worker_id, limit=free * limit,
                                           lease_seconds=self.lease_seconds)
                except Exception:
                    log.exception("claim failed on %s; retrying", queue)
                    self._stop.wait(max(self.poll_interval, 1.0))
                    continue
                if jobs:
                    self._idle[queue] = False
                    self._hand_out(pool, jobs, free, limit)
                elif not until_empty:
                    self._stop.wait(self.poll_interval)
                else:
                    with pool.lock:  # a running job may still enqueue more
                        running = pool.busy > 0
                        if running:
                            pool.freed.wait(0.02)
                    if not running:
                        self._idle[queue] = True
                        if all(self._idle.values()):
                            return
                        self._stop.wait(0.02)
        finally:
            with pool.lock:
                pool.closing = True
                pool.work.notify_all()
                threads = list(pool.threads)
            for t in threads:
                t.join()

    def _hand_out(self, pool: _Pool, jobs: list[JobContext], free: int, limit: int) -> None:
        """Split ``jobs`` (claimed for ``free`` slots, ``limit`` each) into one batch per
        slot, as even as possible and in claim order, and give each to a waiting job
        thread, or to a new one (never more than the queue's concurrency)."""
        with self._lock:
            self._running.update((job.id, job) for job in jobs)
        count = min(free, len(jobs))
        size, extra = divmod(len(jobs), count)
        per_slot = len(jobs) // free
        start = 0
        with pool.lock:
            for i in range(count):
                end = start + size + (1 if i < extra else 0)
                pool.pending.append((jobs[start:end], limit, per_slot))
                pool.busy += 1
                start = end
                if pool.waiting >= len(pool.pending):
                    pool.work.notify()
                elif len(pool.threads) < pool.size:
                    n = len(pool.threads)
                    t = threading.Thread(target=self._job_thread, args=(pool,),
                                         name=f"rindle-{pool.queue}-{n}", daemon=True)
                    pool.threads.append(t)
                    self.job_threads[pool.queue] += 1
                    t.start()

    def _job_thread(self, pool: _Pool) -> None:
        """Run batches from ``pool`` until it closes and none is left; after each, set the
        next claim's prefetch (:func:`next_prefetch`) and free the slot."""
        done: tuple[int, int, float] | None = None  # (limit, claimed per slot, seconds)
        while True:
            with pool.lock:
                if done is not None:
                    pool.limit = next_prefetch(self.prefetch, *done)
                    pool.busy -= 1
                    pool.freed.notify_all()
                while not pool.pending:
                    if pool.closing:
                        return
                    pool.waiting += 1
                    pool.work.wait()
                    pool.waiting -= 1
                jobs, limit, per_slot = pool.pending.popleft()
            started = time.monotonic()
            try:
                self._run_batch(jobs)
            except Exception:  # _run_batch logs its own failures; never lose the slot
                log.exception("running a batch on %s failed", pool.queue)
            done = (limit, per_slot, time.monotonic() - started)

    def _run_batch(self, jobs: list[JobContext]) -> None:
        with self._lock:
            self._running.update((job.id, job) for job in jobs)
        succeeded: list[JobContext] = []
        unrun: list[JobContext] = []
        try:
            for i, job in enumerate(jobs):
                if self._stop.is_set():
                    unrun = jobs[i:]  # prefetched but not started: hand them back
                    break
                try:
                    if self.jobs.execute(job, settle_success=False) == "completed":
                        succeeded.append(job)
                except Exception:
                    log.exception("settling job %s failed", job.id)
                with self._lock:
                    self.executed += 1
        finally:
            try:
                self.jobs.complete_many(succeeded)
            except Exception:  # they run again once their leases expire
                log.exception("acknowledging %d job(s) failed", len(succeeded))
            try:
                self.jobs.release(unrun)
            except Exception:
                log.exception("releasing %d unstarted job(s) failed", len(unrun))
            with self._lock:
                for job in jobs:
                    self._running.pop(job.id, None)

    def _cron_loop(self) -> None:
        since = None
        while not self._stop.is_set():
            now = self.jobs.clock()
            try:
                schedule_due(self.jobs, self.cron_entries, now, since=since)
                since = now
            except Exception:
                log.exception("cron scheduling failed; retrying")
            # wake just after the next minute starts, and at least every 15 s
            self._stop.wait(min(15.0, 60.5 - now.second - now.microsecond / 1e6))

    # --- heartbeat ------------------------------------------------------------------------

    def _beat(self) -> None:
        now = self.jobs.clock()
        row: dict[str, Any] = {"worker_id": self.worker_id, "hostname": socket.gethostname(),
                               "pid": os.getpid(), "queues": dict(self.queues),
                               "started_at": now, "last_seen_at": now}
        ins = postgresql.insert(_HB) if self.app.db.dialect_name == "postgresql" else (
            sqlite.insert(_HB))
        stmt = ins.values(row).on_conflict_do_update(
            index_elements=["worker_id"], set_={"last_seen_at": now, "queues": row["queues"]})
        try:
            with self.app.db.engine.begin() as conn:
                conn.execute(stmt)
            with self._lock:
                running = list(self._running)
            self.jobs.extend_leases(self.worker_id, running, lease_seconds=self.lease_seconds)
        except Exception:
            log.exception("heartbeat failed")

    def _forget(self) -> None:
        try:
            with self.app.db.engine.begin() as conn:
                conn.execute(delete(_HB).where(_HB.c.worker_id == self.worker_id))
        except Exception:
            log.exception("could not remove heartbeat row")


def next_prefetch(base: int, limit: int, claimed: int, seconds: float) -> int:
    """How many jobs the next claim asks for per free slot, after a claim of ``limit`` per
    slot that returned ``claimed`` jobs per slot, a batch of which ran in ``seconds``:
    twice ``limit`` (at most
    :data:`ADAPTIVE_PREFETCH_MAX`, never below ``base``) when the claim came back full and
    the batch ran within :data:`ADAPTIVE_WINDOW`; otherwise ``base``."""
    if claimed >= limit and seconds <= ADAPTIVE_WINDOW:
        return max(base, min(limit * 2, ADAPTIVE_PREFETCH_MAX))
    return base


def _resolve_queues(queues: Mapping[str, int] | Sequence[str] | None,
                    concurrency: int | None, known: Sequence[str]) -> dict[str, int]:
    """Queue name -> concurrency, checked against the queues jobs can be on."""
    if queues is None:
        resolved = ({q: concurrency for q in QUEUES} if concurrency
                    else dict(DEFAULT_CONCURRENCY))
    elif isinstance(queues, Mapping):
        resolved = dict(queues)
    else:
        resolved = {q: concurrency or DEFAULT_CONCURRENCY.get(q, 1) for q in queues}
    bad = {q: n for q, n in resolved.items()
           if isinstance(n, bool) or not isinstance(n, int) or n < 1}
    if bad:
        raise ConfigError(f"queue concurrency must be a positive integer: {bad}")
    unknown = sorted(set(resolved) - set(known))
    if unknown:
        raise ConfigError(f"unknown queue(s) {', '.join(unknown)}; jobs run on: "
                          f"{', '.join(known)}")
    return resolved
