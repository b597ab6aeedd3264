"""``Database.kept_connection``: one autocommit connection per thread on PostgreSQL (what
job claims and settles run on), bounded by ``max_kept``, closed for ended threads, by
``drop_kept`` and by ``dispose``; ``after_fork`` leaves the parent's sessions alone."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from sqlalchemy import Connection, text

from rindle.database import Database
from rindle.testing.postgres import TempPostgres

_V = TypeVar("_V")
DEADLINE = 30.0
_names = itertools.count()


def _until(what: str, probe: Callable[[], _V]) -> _V:
    """Poll ``probe`` until truthy, for at most :data:`DEADLINE` seconds."""
    deadline = time.monotonic() + DEADLINE
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


@pytest.fixture
def pg_db(pg_server: TempPostgres) -> Iterator[Database]:
    """A :class:`Database` on an empty PostgreSQL database of its own."""
    name = f"kept_{os.getpid()}_{next(_names)}"
    database = Database(pg_server.create_database(name))
    try:
        yield database
    finally:
        database.dispose()
        pg_server.drop_database(name)


def _pid(conn: Connection) -> int:
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _alive(db: Database, pid: int) -> bool:
    with db.engine.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                                 {"p": pid}).scalar_one())


def _in_thread(db: Database, then: threading.Event | None = None
               ) -> tuple[threading.Thread, list[Connection | None]]:
    """A thread that takes its kept connection, then (with ``then``) waits for it."""
    got: list[Connection | None] = []
    ready = threading.Event()

    def run() -> None:
        got.append(db.kept_connection())
        ready.set()
        if then is not None:
            then.wait(DEADLINE)

    thread = threading.Thread(target=run)
    thread.start()
    assert ready.wait(DEADLINE)
    return thread, got


def test_kept_connection_by_dialect(db_url: str, dialect: str) -> None:
    db = Database(db_url)
    try:
        kept = db.kept_connection()
        if dialect == "sqlite":  # a write takes the database's lock: nothing to keep
            assert kept is None and db.kept_count() == 0
        else:
            assert kept is not None and db.kept_count() == 1
            assert kept.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        db.dispose()


def test_one_per_thread_at_most_max_kept_and_ended_threads_free_theirs(
        pg_db: Database) -> None:
    db = pg_db
    db.max_kept = 2
    mine = db.kept_connection()
    assert mine is not None and db.kept_connection() is mine  # the same, every call
    release = threading.Event()
    other, [theirs] = _in_thread(db, release)
    assert theirs is not None and theirs is not mine and db.kept_count() == 2
    _, [third] = _in_thread(db)  # max_kept live threads keep one: none for a third
    assert third is None and db.kept_count() == 2
    release.set()
    other.join(DEADLINE)
    late, [fourth] = _in_thread(db)  # the ended thread's is closed, its slot reused
    late.join(DEADLINE)
    assert fourth is not None and theirs.closed and db.kept_count() == 2
    pid = _pid(mine)
    db.drop_kept()  # this thread's: invalidated, a fresh one next time
    assert mine.invalidated and db.kept_count() == 1
    _until("the dropped session to end", lambda: not _alive(db, pid))
    again = db.kept_connection()  # and the ended thread's is closed on the way
    assert again is not None and again is not mine and fourth.closed
    assert db.kept_count() == 1
    hold = threading.Event()
    live, [fifth] = _in_thread(db, hold)
    assert fifth is not None
    pids = [_pid(again), _pid(fifth)]
    db.dispose()  # every thread's, a live thread's included
    hold.set()
    live.join(DEADLINE)
    assert again.closed and fifth.closed and db.kept_count() == 0
    _until("the kept sessions to end", lambda: not any(_alive(db, p) for p in pids))


def test_a_forked_child_opens_its_own_and_leaves_the_parents_alone(pg_db: Database) -> None:
    db = pg_db
    parent = db.kept_connection()
    assert parent is not None
    parent_pid = _pid(parent)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report its own session's pid, then leave at once
        code = 1
        try:
            db.after_fork()
            own = db.kept_connection()
            assert own is not None
            os.write(write, str(_pid(own)).encode())
            db.dispose()
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_pid = int(pipe.read() or "0")
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_pid not in (0, parent_pid)
    # the parent's session survived the child's exit and its dispose
    assert db.kept_connection() is parent and _pid(parent) == parent_pid
