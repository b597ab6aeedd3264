"""The SQL of leases: claim due jobs, settle them guarded by owner, extend, release.

Every write after a claim is guarded by ``locked_by`` (and ``state = 'executing'``), so a
worker whose lease expired and was taken over cannot overwrite the new owner's outcome.
Each function runs one short transaction of its own. None reads the clock: the caller
passes ``now`` (the queue's :attr:`~rindle.jobs.JobQueue.clock`), so whether a lease has
run out depends on that clock alone.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    Table,
    Update,
    and_,
    bindparam,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from rindle.database import Database
from rindle.domain.models import Job, table_of

__all__ = ["any_due", "claim_one", "claim_rows", "complete", "extend", "pinned", "release",
           "settle", "unleased_due"]

_T: Table = table_of(Job)
_NOW = bindparam("now", type_=_T.c.updated_at.type)
_WORKER = bindparam("worker", type_=_T.c.locked_by.type)
_WAITING = ("available", "retryable")


#: The autocommit connection :func:`pinned` lends this thread's single writes, per database.
_PINNED: ContextVar[tuple[Database, Connection] | None] = ContextVar("rindle_pinned",
                                                                     default=None)


@contextmanager
def pinned(db: Database) -> Iterator[None]:
    """Within the block, this thread's single writes on ``db`` (:func:`claim_one`,
    :func:`settle`, :func:`extend`) share one autocommit connection on PostgreSQL: the
    thread's :meth:`~rindle.database.Database.kept_connection`, kept for its next block
    (no pool checkout, nor its liveness ping, per job). A database error inside the block
    drops it (the next block opens a fresh one). Nothing on SQLite, nor when
    ``db.max_kept`` threads already keep one (each write then checks one out)."""
    conn = db.kept_connection() if _PINNED.get() is None else None
    if conn is None:
        yield
        return
    token = _PINNED.set((db, conn))
    try:
        yield
    except DBAPIError:
        db.drop_kept()
        raise
    finally:
        _PINNED.reset(token)


@contextmanager
def _one_statement(db: Database) -> Iterator[Connection]:
    """A connection for a single write: on PostgreSQL in autocommit (the statement is its
    own transaction: no BEGIN and COMMIT round trips), the :func:`pinned` one if any; on
    SQLite a transaction, whose BEGIN IMMEDIATE serialises writers."""
    lent = _PINNED.get()
    if lent is not None and lent[0] is db:
        yield lent[1]
    elif db.dialect_name == "postgresql":
        with db.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
    else:
        with db.engine.begin() as conn:
            yield conn


def _abandoned(now: Any) -> ColumnElement[bool]:
    """Executing under a lease that ran out by ``now``: its worker died."""
    return and_(_T.c.state == "executing", _T.c.locked_until < now)


@functools.cache
def _claim_statements(postgres: bool, with_scheduled: bool) -> tuple[Update, Update]:
    """The two claim statements (due work, then expired leases), built once per flavour.

    Reusing the statement objects spares SQLAlchemy rebuilding them and their cache keys
    on every poll, which dominates a short claim.
    """
    queues = bindparam("queues", expanding=True, type_=_T.c.queue.type)
    room = bindparam("room", type_=Integer())
    # Due work first (partial index ix_rindle_jobs_due), then expired leases
    # (ix_rindle_jobs_leased) only when there is room left: both stay index scans.
    due = select(_T.c.id).where(
        _T.c.queue.in_(queues), _T.c.state.in_(_WAITING)
    ).order_by(_T.c.run_at).limit(room)
    if not with_scheduled:
        due = due.where(_T.c.run_at <= _NOW)
    lost = select(_T.c.id).where(
        _abandoned(_NOW), _T.c.queue.in_(queues)
    ).order_by(_T.c.locked_until).limit(room)
    out = []
    for pick in (due, lost):
        if postgres:
            # A row another claimer holds is skipped, never waited on; a row that
            # changed since our snapshot is re-checked against the WHERE when locked.
            pick = pick.with_for_update(skip_locked=True)
        out.append(
            update(_T).where(_T.c.id.in_(pick.scalar_subquery()))
            .values(state="executing", attempt=_T.c.attempt + 1, locked_by=_WORKER,
                    locked_until=bindparam("until", type_=_T.c.locked_until.type),
                    updated_at=_NOW)
            .returning(_T.c.id, _T.c.kind, _T.c.queue, _T.c.args, _T.c.attempt,
                       _T.c.max_attempts, _T.c.run_at))
    return out[0], out[1]


_COMPLETE = update(_T).where(
    _T.c.id.in_(bindparam("ids", expanding=True, type_=_T.c.id.type)),
    _T.c.state == "executing", _T.c.locked_by == _WORKER,
).values(state="completed", finished_at=_NOW, updated_at=_NOW, locked_by=None,
         locked_until=None, last_error=None)


def claim_rows(db: Database, queues: Sequence[str], worker_id: str, *, limit: int,
               lease_seconds: float, now: dt.datetime, with_scheduled: bool = False
               ) -> list[Row[Any]]:
    """Lease up to ``limit`` jobs due at ``now`` until ``now + lease_seconds``; returns their
    (id, kind, queue, args, attempt, max_attempts, run_at) rows, oldest due first, already
    ``executing`` under ``worker_id``."""
    params: dict[str, Any] = {
        "queues": list(queues), "now": now, "worker": worker_id,
        "until": now + dt.timedelta(seconds=lease_seconds)}
    rows: list[Row[Any]] = []
    with db.engine.begin() as conn:
        for stmt in _claim_statements(db.dialect_name == "postgresql", with_scheduled):
            room = limit - len(rows)
            if room <= 0:
                break
            # RETURNING follows no ORDER BY: sort so a batch runs oldest-due first
            rows.extend(sorted(conn.execute(stmt, {**params, "room": room}).all(),
                               key=lambda r: (r.run_at, r.id)))
    return rows


@functools.cache
def _claim_one_statement() -> Update:
    """Claim one job by id if it is due or its lease ran out (built once)."""
    return (update(_T).where(
        _T.c.id == bindparam("job_id", type_=_T.c.id.type),
        or_(and_(_T.c.state.in_(_WAITING), _T.c.run_at <= _NOW), _abandoned(_NOW)))
        .values(state="executing", attempt=_T.c.attempt + 1, locked_by=_WORKER,
                locked_until=bindparam("until", type_=_T.c.locked_until.type), updated_at=_NOW)
        .returning(_T.c.id, _T.c.kind, _T.c.queue, _T.c.args, _T.c.attempt,
                   _T.c.max_attempts, _T.c.run_at))


def claim_one(db: Database, job_id: uuid.UUID, worker_id: str, *, lease_seconds: float,
              now: dt.datetime) -> Row[Any] | None:
    """Lease the job ``job_id`` until ``now + lease_seconds`` if it is due at ``now`` (or its
    lease ran out); its row as :func:`claim_rows` returns it, or None when it is not
    claimable (unknown, not yet due, leased by a live worker, or final).

    One guarded ``UPDATE ... WHERE id = :id AND <due>``: on PostgreSQL a concurrent claimer
    of the same row waits for the first to commit, then re-checks the WHERE and matches
    nothing; SQLite serialises writers. So of two claims of one id, at most one wins.
    """
    params = {"job_id": job_id, "now": now, "worker": worker_id,
              "until": now + dt.timedelta(seconds=lease_seconds)}
    with _one_statement(db) as conn:
        return conn.execute(_claim_one_statement(), params).first()


def unleased_due(db: Database, *, now: dt.datetime, limit: int) -> list[Row[Any]]:
    """Up to ``limit`` jobs claimable at ``now`` (due and waiting, or executing under a lease
    that ran out), oldest first, as ``(id, queue, run_at, updated_at)`` rows; claims
    nothing."""
    cols = (_T.c.id, _T.c.queue, _T.c.run_at, _T.c.updated_at)
    waiting = select(*cols).where(_T.c.state.in_(_WAITING), _T.c.run_at <= now
                                  ).order_by(_T.c.run_at).limit(limit)
    lost = select(*cols).where(_abandoned(now)).order_by(_T.c.locked_until).limit(limit)
    with db.engine.connect() as conn:
        rows = list(conn.execute(waiting).all())
        rows += conn.execute(lost).all()
    return rows[:limit]


def any_due(db: Database, queues: Sequence[str], *, now: dt.datetime) -> bool:
    """Whether any job on ``queues`` could be claimed at ``now`` (due, or its lease ran
    out)."""
    stmt = select(_T.c.id).where(_T.c.queue.in_(list(queues)), or_(
        and_(_T.c.state.in_(_WAITING), _T.c.run_at <= now), _abandoned(now))).limit(1)
    with db.engine.connect() as conn:
        return conn.execute(stmt).first() is not None


def settle(db: Database, job_id: uuid.UUID, worker_id: str | None, *, now: dt.datetime,
           **values: Any) -> bool:
    """Write one job's outcome (``updated_at`` = ``now``) if ``worker_id`` still owns it;
    False when it does not."""
    params = {"job_id": job_id, "worker": worker_id, "now": now,
              **{f"v_{key}": value for key, value in values.items()}}
    with _one_statement(db) as conn:
        res = conn.execute(_settle_statement(tuple(sorted(values))), params)
    return bool(res.rowcount)


@functools.cache
def _settle_statement(keys: tuple[str, ...]) -> Update:
    """The guarded outcome write for one set of written columns (built once per set: a
    settle is on every job's path, and building the statement cost more than sending
    it)."""
    return update(_T).where(
        _T.c.id == bindparam("job_id", type_=_T.c.id.type), _T.c.state == "executing",
        _T.c.locked_by == _WORKER,
    ).values(updated_at=_NOW, locked_by=None, locked_until=None,
             **{key: bindparam(f"v_{key}", type_=_T.c[key].type) for key in keys})


def complete(db: Database, owned: Sequence[tuple[uuid.UUID, str | None]], *,
             now: dt.datetime) -> int:
    """Mark ``(job_id, worker_id)`` pairs ``completed`` at ``now`` in one transaction
    (batched acks); returns how many were still owned and are now completed."""
    if not owned:
        return 0
    by_worker: dict[str | None, list[uuid.UUID]] = {}
    for job_id, worker_id in owned:
        by_worker.setdefault(worker_id, []).append(job_id)
    done = 0
    with db.engine.begin() as conn:
        for worker_id, ids in by_worker.items():
            res = conn.execute(_COMPLETE, {"ids": ids, "worker": worker_id, "now": now})
            done += int(res.rowcount or 0)
    return done


def extend(db: Database, worker_id: str, job_ids: Sequence[uuid.UUID],
           lease_seconds: float, *, now: dt.datetime) -> int:
    """Push the lease of ``worker_id``'s running jobs to ``now + lease_seconds``; returns
    how many it still held."""
    if not job_ids:
        return 0
    until = now + dt.timedelta(seconds=lease_seconds)
    with _one_statement(db) as conn:
        res = conn.execute(update(_T).where(
            _T.c.id.in_(list(job_ids)), _T.c.locked_by == worker_id,
            _T.c.state == "executing").values(locked_until=until))
    return int(res.rowcount or 0)


def release(db: Database, claimed: Sequence[tuple[uuid.UUID, str | None, int]], *,
            now: dt.datetime) -> int:
    """Give never-started ``(job_id, worker_id, attempt)`` claims back to the queue
    (``updated_at`` = ``now``); returns how many went back.

    The attempt the claim counted is undone; a claim the worker no longer holds (or that
    was claimed again since) is left alone.
    """
    if not claimed:
        return 0
    released = 0
    with db.engine.begin() as conn:
        for job_id, worker_id, attempt in claimed:
            res = conn.execute(update(_T).where(
                _T.c.id == job_id, _T.c.state == "executing", _T.c.locked_by == worker_id,
                _T.c.attempt == attempt,
            ).values(state="available", attempt=_T.c.attempt - 1, locked_by=None,
                     locked_until=None, updated_at=now))
            released += int(res.rowcount or 0)
    return released
