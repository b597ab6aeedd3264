"""The durable job queue: transactional enqueue, leased claims, guarded outcomes.

A job is a row in ``rindle_jobs``. :meth:`JobQueue.enqueue` writes it in the caller's
transaction, so a committed state change always has its job and a rolled-back one never
does. Workers claim jobs as leases (``locked_until``); a job whose worker died is claimed
again once its lease expires. Every outcome write is guarded by ``locked_by``, so a
worker that lost its lease cannot overwrite the new owner's result. Every time the queue
writes or compares comes from :attr:`JobQueue.clock` (see :mod:`rindle.clock`).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection, Row, Table, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from rindle.clock import Clock, system_clock
from rindle.database import after_commit
from rindle.domain.models import LIVE_JOB_STATES, Job, table_of
from rindle.errors import JobError, RindleError
from rindle.ids import uuid7
from rindle.jobs import leases
from rindle.jobs.outcomes import Cancel, Retry

if TYPE_CHECKING:
    from rindle.config import Settings
    from rindle.database import Database
    from rindle.telemetry import Telemetry

__all__ = [
    "DEFAULT_ATTEMPTS",
    "QUEUES",
    "EnqueueResult",
    "Handler",
    "JobContext",
    "JobQueue",
    "JobRef",
    "Publisher",
    "QueueApp",
]

log = logging.getLogger(__name__)

#: Queues and the attempts their jobs get by default.
DEFAULT_ATTEMPTS = {"promote": 3, "process": 5, "purge": 3, "maintenance": 3, "provider": 5}
QUEUES = tuple(DEFAULT_ATTEMPTS)
_LIVE_PREDICATE = "state IN ('available', 'executing', 'retryable')"
_T: Table = table_of(Job)


@dataclass(frozen=True)
class EnqueueResult:
    """What :meth:`JobQueue.enqueue` did: the new job's id, or ``skipped`` for a duplicate."""

    job_id: uuid.UUID | None
    skipped: bool


@dataclass(frozen=True)
class JobRef:
    """What an executor is handed about a job to run: its id, queue and when it is due."""

    id: uuid.UUID
    queue: str
    run_at: dt.datetime


#: Hands enqueued jobs to an external executor (``Executor.publish``) once they commit.
Publisher = Callable[[Sequence[JobRef]], object]


@dataclass(frozen=True)
class JobContext:
    """What a handler is given about the job it runs.

    ``timeout`` is the kind's registered budget in seconds (None: unbounded). Python
    cannot interrupt a thread, so it is cooperative: handlers pass it on to subprocesses
    and network calls; a run that overshoots it is logged.
    """

    id: uuid.UUID
    kind: str
    queue: str
    args: dict[str, Any]
    attempt: int
    max_attempts: int
    worker_id: str | None = None
    timeout: float | None = None


class QueueApp(Protocol):
    """What a :class:`JobQueue` needs from its app (a :class:`rindle.Rindle` is one)."""

    @property
    def settings(self) -> Settings:
        """The validated settings (``settings.jobs``: leases and backoff)."""

    @property
    def db(self) -> Database:
        """The database the ``rindle_jobs`` table lives in."""

    @property
    def telemetry(self) -> Telemetry:
        """Where job events go."""


#: The type of the app a queue hands to its handlers (``Context`` for ``app.jobs``).
AppT = TypeVar("AppT", bound=QueueApp)

#: A job handler, given the queue's app and the job: raise to fail (:class:`Retry`,
#: :class:`Cancel`); its return value is ignored. ``Handler[A]`` takes an app of type ``A``.
Handler = Callable[[AppT, JobContext], object]


@dataclass(frozen=True)
class _Registration(Generic[AppT]):
    kind: str
    handler: Handler[AppT]
    queue: str
    max_attempts: int
    timeout: float | None


class JobQueue(Generic[AppT]):
    """Enqueue, claim, run and settle jobs for one app (a :class:`rindle.Rindle`).

    Handlers are given that app: a ``JobQueue[A]`` runs handlers that take an ``A``.

    :attr:`clock` (default :func:`~rindle.clock.system_clock`, or the ``clock`` given) is
    the only time source for ``run_at``, leases, ``finished_at``, pruning and the
    heartbeats and cron slots of workers on this queue; replace it (e.g. with a
    :class:`~rindle.clock.ManualClock`) to decide when leases run out.
    """

    def __init__(self, app: AppT, *, clock: Clock | None = None) -> None:
        self.app: AppT = app
        self.db = app.db
        #: Returns "now" (aware UTC) wherever the queue needs the time.
        self.clock: Clock = clock or system_clock
        opts = app.settings.jobs
        self.lease_seconds = opts.lease_seconds
        self.backoff_base = opts.backoff_base
        self.backoff_cap = opts.backoff_cap
        self._handlers: dict[str, _Registration[AppT]] = {}
        #: Given the jobs a transaction enqueued once it commits (None: nobody is told;
        #: ``rindle worker`` polls). Set by the app when ``[jobs] executor`` names a
        #: plugin's executor.
        self.publisher: Publisher | None = None

    # --- handlers -------------------------------------------------------------------------

    def register(self, kind: str, handler: Handler[AppT], *, queue: str,
                 max_attempts: int | None = None, timeout: float | None = None) -> None:
        """Route jobs of ``kind`` to ``handler`` on ``queue``.

        ``max_attempts`` defaults to the queue's (:data:`DEFAULT_ATTEMPTS`: promote 3,
        process 5, purge 3, maintenance 3, provider 5); registering a kind again replaces
        its handler.
        """
        if max_attempts is None:
            max_attempts = DEFAULT_ATTEMPTS.get(queue, 3)
        if max_attempts < 1:
            raise JobError(f"max_attempts for {kind} must be >= 1")
        self._handlers[kind] = _Registration(kind, handler, queue, max_attempts, timeout)

    @property
    def kinds(self) -> dict[str, str]:
        """Registered kinds and the queue each runs on."""
        return {k: r.queue for k, r in self._handlers.items()}

    def _registration(self, kind: str) -> _Registration[AppT]:
        try:
            return self._handlers[kind]
        except KeyError:
            known = ", ".join(sorted(self._handlers)) or "none"
            raise JobError(f"unknown job kind {kind!r}; registered kinds: {known}") from None

    # --- enqueue ----------------------------------------------------------------------------

    def _row(self, kind: str, args: Mapping[str, Any], *, unique_key: str | None,
             run_at: dt.datetime | None, queue: str | None, max_attempts: int | None
             ) -> dict[str, Any]:
        reg = self._registration(kind)
        now = self.clock()
        return {
            "id": uuid7(), "queue": queue or reg.queue, "kind": kind, "args": dict(args),
            "unique_key": unique_key, "state": "available", "attempt": 0,
            "max_attempts": max_attempts or reg.max_attempts, "run_at": run_at or now,
            "inserted_at": now, "updated_at": now,
        }

    def enqueue(self, session: Session | Connection, kind: str, args: Mapping[str, Any], *,
                unique_key: str | None = None, run_at: dt.datetime | None = None,
                queue: str | None = None, max_attempts: int | None = None) -> EnqueueResult:
        """Insert a job in the caller's transaction (it commits or rolls back with it).

        With ``unique_key``, a live job (available, executing, retryable) with the same key
        makes this a no-op that reports ``skipped=True``: ``INSERT ... ON CONFLICT DO
        NOTHING`` on the partial unique index, so the caller's transaction is never
        poisoned by the duplicate. Raises :class:`JobError` for a kind nobody registered.
        """
        row = self._row(kind, args, unique_key=unique_key, run_at=run_at, queue=queue,
                        max_attempts=max_attempts)
        if unique_key is None:
            session.execute(insert(_T).values(row))
        elif session.execute(_insert_unique(session).values(row)).first() is None:
            return EnqueueResult(None, True)
        self._publish_after_commit(session, [row])
        return EnqueueResult(row["id"], False)

    def enqueue_unique_batch(self, session: Session | Connection, kind: str,
                             items: Sequence[tuple[Mapping[str, Any], str]]) -> int:
        """Insert many ``(args, unique_key)`` jobs in one statement; returns how many were new.

        Keys that already have a live job are skipped, as with :meth:`enqueue`.
        """
        if not items:
            return 0
        rows = [self._row(kind, args, unique_key=key, run_at=None, queue=None,
                          max_attempts=None) for args, key in items]
        # executemany with RETURNING: one cached statement, batched as "insertmanyvalues"
        made = {r.id for r in session.execute(_insert_unique(session), rows).all()}
        self._publish_after_commit(session, [r for r in rows if r["id"] in made])
        return len(made)

    def enqueue_now(self, kind: str, args: Mapping[str, Any], **options: Any) -> EnqueueResult:
        """Enqueue in a transaction of its own (and hand the job to :attr:`publisher`, if
        any, once that commits)."""
        with Session(self.db.engine, expire_on_commit=False) as session, session.begin():
            return self.enqueue(session, kind, args, **options)

    def enqueue_many(self, conn: Session | Connection, kind: str,
                     args_list: Iterable[Mapping[str, Any]], **options: Any) -> int:
        """Bulk-insert jobs without unique keys; returns how many."""
        rows = [self._row(kind, a, unique_key=None, run_at=options.get("run_at"),
                          queue=options.get("queue"), max_attempts=options.get("max_attempts"))
                for a in args_list]
        if rows:
            conn.execute(insert(_T), rows)
            self._publish_after_commit(conn, rows)
        return len(rows)

    def _publish_after_commit(self, session: Session | Connection,
                              rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue ``rows`` for :attr:`publisher`, told once ``session`` commits (never on a
        rollback). A :class:`~sqlalchemy.engine.Connection` has no after-commit event:
        its jobs reach the executor through the relay's sweep instead."""
        if self.publisher is None or not rows or not isinstance(session, Session):
            return
        refs = [JobRef(r["id"], r["queue"], r["run_at"]) for r in rows]
        after_commit(session, functools.partial(_publish, self.publisher, refs))

    def cancel(self, job_id: uuid.UUID) -> bool:
        """Cancel a job that is not running; False when it is running or already final.
        Inside ``app.bind`` the cancellation commits with the host's transaction."""
        now = self.clock()
        with self.db.begin() as conn:
            res = conn.execute(update(_T).where(
                _T.c.id == job_id, _T.c.state.in_(("available", "retryable"))
            ).values(state="cancelled", finished_at=now, updated_at=now))
            return bool(res.rowcount)

    # --- claiming and settling ---------------------------------------------------------------

    def claim(self, queues: Sequence[str], worker_id: str, *, limit: int = 1,
              lease_seconds: float | None = None, with_scheduled: bool = False
              ) -> list[JobContext]:
        """Lease up to ``limit`` due jobs from ``queues`` for ``worker_id``.

        Due means available or retryable with ``run_at`` passed (any ``run_at`` with
        ``with_scheduled``), or executing with an expired lease (its worker died). Each
        claimed job is ``executing`` with ``attempt`` + 1 and ``locked_until`` = now + lease.
        PostgreSQL picks rows with ``FOR UPDATE SKIP LOCKED``, so concurrent claimers never
        wait on nor share a row; SQLite serialises writers (BEGIN IMMEDIATE), so one
        ``UPDATE ... RETURNING`` is atomic there.
        """
        rows = leases.claim_rows(self.db, queues, worker_id, limit=limit,
                                 lease_seconds=lease_seconds or self.lease_seconds,
                                 now=self.clock(), with_scheduled=with_scheduled)
        return [self._context(r, worker_id) for r in rows]

    def claim_by_id(self, job_id: uuid.UUID, worker_id: str, *,
                    lease_seconds: float | None = None) -> JobContext | None:
        """Lease the one job ``job_id`` for ``worker_id``, as :meth:`claim` would lease it
        (``executing``, ``attempt`` + 1, ``locked_until`` = now + lease); None when it is
        not claimable now: unknown, not yet due, leased by a live worker, or final.

        What an external executor's task calls with the id it was handed: a duplicate or
        stale message finds nothing to claim and does nothing.
        """
        row = leases.claim_one(self.db, job_id, worker_id,
                               lease_seconds=lease_seconds or self.lease_seconds,
                               now=self.clock())
        return None if row is None else self._context(row, worker_id)

    def _context(self, r: Row[Any], worker_id: str) -> JobContext:
        return JobContext(id=r.id, kind=r.kind, queue=r.queue, args=dict(r.args or {}),
                          attempt=r.attempt, max_attempts=r.max_attempts, worker_id=worker_id,
                          timeout=getattr(self._handlers.get(r.kind), "timeout", None))

    def _settle(self, job: JobContext, **values: Any) -> bool:
        """Record ``job``'s outcome unless its lease passed to another worker (logged as
        ``lease_lost``) or the job was cancelled while it ran (logged at info)."""
        if leases.settle(self.db, job.id, job.worker_id, now=self.clock(), **values):
            return True
        with self.db.engine.connect() as conn:
            state = conn.execute(select(_T.c.state).where(_T.c.id == job.id)).scalar()
        if state == "cancelled":  # cancelled while it ran (app.cancel_processing)
            log.info("rindle.job.cancelled_while_running id=%s kind=%s: outcome not recorded",
                     job.id, job.kind)
        else:
            log.warning("rindle.job.lease_lost id=%s kind=%s: another worker owns it now",
                        job.id, job.kind)
        return False

    def complete_many(self, jobs: Sequence[JobContext]) -> int:
        """Mark several successfully run jobs ``completed`` in one transaction (batched
        acks), each guarded by its owner; returns how many were written."""
        return leases.complete(self.db, [(job.id, job.worker_id) for job in jobs],
                               now=self.clock())

    def extend_leases(self, worker_id: str, job_ids: Sequence[uuid.UUID], *,
                      lease_seconds: float | None = None) -> int:
        """Push the lease of ``worker_id``'s running jobs forward (the worker heartbeat)."""
        return leases.extend(self.db, worker_id, job_ids, lease_seconds or self.lease_seconds,
                             now=self.clock())

    def has_due(self, queues: Sequence[str]) -> bool:
        """Whether any job on ``queues`` could be claimed now."""
        return leases.any_due(self.db, queues, now=self.clock())

    def release(self, jobs: Sequence[JobContext]) -> int:
        """Hand claimed but never started jobs back to the queue (worker shutdown), undoing
        the attempt their claim counted; returns how many went back."""
        return leases.release(self.db, [(j.id, j.worker_id, j.attempt) for j in jobs],
                              now=self.clock())

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``: exponential with jitter."""
        base = min(self.backoff_base * (2 ** max(attempt - 1, 0)), self.backoff_cap)
        return float(base * random.uniform(0.8, 1.2))

    def execute(self, job: JobContext, *, settle_success: bool = True) -> str:
        """Run one claimed job and record its outcome; returns that outcome.

        Outcomes: ``completed``; ``cancelled`` (the handler raised :class:`Cancel`);
        ``retryable`` (any other exception, run again after a backoff); ``discarded`` (an
        exception on the last attempt, or a :class:`~rindle.errors.RindleError` with
        ``permanent`` set on any attempt: retrying cannot fix a failure the input or the
        recipe causes, so it is not retried and ``last_error`` starts with
        ``permanent <code>:``).

        With ``settle_success=False`` a success is not written: the caller acknowledges it
        later with :meth:`complete_many` (batched acks).
        """
        tel = self.app.telemetry
        meta = {"queue": job.queue, "kind": job.kind}
        if job.attempt > job.max_attempts:  # its last worker died holding it
            self._settle(job, state="discarded", finished_at=self.clock(),
                         last_error="lease expired on the final attempt (worker lost)")
            tel.emit("rindle.job.stop", {"duration_ms": 0}, {**meta, "outcome": "discarded"})
            return "discarded"
        started = time.perf_counter()
        tel.emit("rindle.job.start", {"system_time": time.time_ns()}, meta)
        try:
            reg = self._registration(job.kind)
            reg.handler(self.app, job)
        except Cancel as exc:
            outcome = "cancelled"
            self._settle(job, state="cancelled", finished_at=self.clock(),
                         last_error=exc.reason)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            tel.emit("rindle.job.exception", {"duration_ms": _ms(started)},
                     {**meta, "error": type(exc).__name__})
            permanent = isinstance(exc, RindleError) and exc.permanent
            if isinstance(exc, RindleError) and permanent:
                error = f"permanent {exc.code}: {error}"
            if permanent or job.attempt >= job.max_attempts:
                outcome = "discarded"
                self._settle(job, state="discarded", finished_at=self.clock(),
                             last_error=_trim(error, exc))
            else:
                outcome = "retryable"
                delay = exc.delay if isinstance(exc, Retry) and exc.delay is not None else (
                    self.backoff(job.attempt))
                self._settle(job, state="retryable", last_error=_trim(error, exc),
                             run_at=self.clock() + dt.timedelta(seconds=delay))
        else:
            outcome = "completed"
            if job.timeout is not None and _ms(started) > job.timeout * 1000:
                log.warning("rindle.job.overran id=%s kind=%s: took %.1f s, timeout %.1f s",
                            job.id, job.kind, _ms(started) / 1000, job.timeout)
            if settle_success:
                self._settle(job, state="completed", finished_at=self.clock(), last_error=None)
        tel.emit("rindle.job.stop", {"duration_ms": _ms(started)}, {**meta, "outcome": outcome})
        return outcome

    def queue_names(self) -> list[str]:
        """Every queue a job can be on: the standard ones and those kinds registered."""
        return sorted({*QUEUES, *self.kinds.values()})

    def drain(self, queues: Sequence[str] | None = None, *, with_scheduled: bool = False,
              limit: int | None = None) -> int:
        """Run every due job in this thread until none is due; returns how many ran.

        Jobs the run enqueues are run too. ``with_scheduled`` also runs jobs whose ``run_at``
        is still ahead, retries included (so a failing job runs until it is discarded).
        ``limit`` caps how many run. Jobs leased by a live worker are left to it.
        """
        names = list(queues) if queues else self.queue_names()
        worker_id = f"drain-{uuid.uuid4().hex[:8]}"
        ran = 0
        while limit is None or ran < limit:
            jobs = self.claim(names, worker_id, limit=1, with_scheduled=with_scheduled)
            if not jobs:
                return ran
            self.execute(jobs[0])
            ran += 1
        return ran

    # --- inspection -----------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per queue per state."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(_T.c.queue, _T.c.state, func.count())
                                .group_by(_T.c.queue, _T.c.state)).all()
        out: dict[str, dict[str, int]] = {}
        for q, state, n in rows:
            out.setdefault(q, {})[state] = int(n)
        return out

    def prune(self, older_than: dt.timedelta) -> int:
        """Delete final jobs finished longer ago than ``older_than``."""
        with self.db.engine.begin() as conn:
            res = conn.execute(delete(_T).where(
                _T.c.state.notin_(LIVE_JOB_STATES),
                _T.c.finished_at < self.clock() - older_than))
        return int(res.rowcount or 0)


def _publish(publisher: Publisher, refs: Sequence[JobRef]) -> None:
    """Hand committed jobs to ``publisher``. A failure (the broker is down) is logged and
    swallowed: the jobs are committed, and the relay's sweep publishes every due job
    nobody holds."""
    try:
        publisher(refs)
    except Exception as exc:
        log.warning("rindle.job.publish_failed jobs=%d error=%s: the relay sweep will "
                    "publish them", len(refs), type(exc).__name__)


def _insert_unique(session: Session | Connection) -> Any:
    """``INSERT ... ON CONFLICT (unique_key) WHERE <live> DO NOTHING RETURNING id``."""
    bind = session.get_bind() if isinstance(session, Session) else session
    ins = postgresql.insert(_T) if bind.dialect.name == "postgresql" else sqlite.insert(_T)
    return ins.on_conflict_do_nothing(
        index_elements=["unique_key"], index_where=text(_LIVE_PREDICATE)
    ).returning(_T.c.id)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _trim(error: str, exc: BaseException) -> str:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=5))
    return (error + "\n" + tb)[:4000]
