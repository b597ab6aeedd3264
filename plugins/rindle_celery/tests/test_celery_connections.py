"""How many PostgreSQL sessions a real ``celery worker`` holds, read from the server's
``pg_stat_activity`` for a role only the worker logs in as: none before it starts, a
number fixed by its threads (not by how many tasks ran) while it works, none left when
it shuts down (rindle's ``worker_shutdown`` receiver closes them, checked from inside the
exiting worker) and none after it exited."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import Rig
from sqlalchemy.engine import URL
from test_celery_executor import make_probe_table, probe_rows, wait_for

_roles = itertools.count()
THREADS = 4
#: Sessions a worker of THREADS threads may hold: one kept per thread, and one pooled per
#: thread and for the lease keeper (``Database.kept_connection``).
BOUND = 2 * THREADS + 1


class Sessions:
    """A login role for the worker alone, and its open sessions counted by the server."""

    def __init__(self, rig: Rig) -> None:
        self.role = f"celery_app_{os.getpid()}_{next(_roles)}"
        url = rig.app.db.url
        self.admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.worker_url: URL = url.set(username=self.role)
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE ROLE "{self.role}" LOGIN')
            conn.execute(f'GRANT USAGE ON SCHEMA public TO "{self.role}"')
            conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public '
                         f'TO "{self.role}"')

    def count(self) -> int:
        """The role's sessions now (this admin connection is another role's)."""
        with psycopg.connect(self.admin, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s",
                               (self.role,)).fetchone()
        assert row is not None
        return int(row[0])

    def drop(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE usename = %s", (self.role,))
            conn.execute(f'DROP OWNED BY "{self.role}"')
            conn.execute(f'DROP ROLE "{self.role}"')


@pytest.fixture
def sessions(pg_rig: Rig) -> Iterator[Sessions]:
    make_probe_table(pg_rig)  # before the grants: the worker's role may write it
    found = Sessions(pg_rig)
    try:
        yield found
    finally:
        found.drop()


def _run_batch(rig: Rig, start: int, size: int) -> None:
    with rig.app.db.transaction() as s:
        rig.app.jobs.enqueue_many(s, "test.insert", [{"n": n} for n in range(start,
                                                                            start + size)])
    total = start + size
    wait_for(f"{total} rows", lambda: probe_rows(rig) == (total, total))
    wait_for("every job to settle", lambda: rig.app.jobs.counts() == {
        "process": {"completed": total + THREADS}})


def test_a_threaded_worker_holds_bounded_sessions_and_closes_them_at_shutdown(
        pg_rig: Rig, sessions: Sessions, tmp_path: Path) -> None:
    rig = pg_rig
    probe = tmp_path / "sessions-at-shutdown"
    assert sessions.count() == 0
    [worker] = rig.workers(1, pool="threads", concurrency=THREADS, env={
        "RINDLE_DATABASE_URL": sessions.worker_url.render_as_string(hide_password=False),
        "RINDLE_TEST_SHUTDOWN_PROBE": str(probe), "RINDLE_TEST_PG_ADMIN": sessions.admin,
        "RINDLE_TEST_PG_ROLE": sessions.role})
    assert sessions.count() == 0  # a worker connects for its first job, not before
    # every thread holds a job at once: each claimed it on the connection it keeps
    spots = [tmp_path / f"spot{i}" for i in range(THREADS)]
    with rig.app.db.transaction() as s:
        for spot in spots:
            spot.mkdir()
            rig.app.jobs.enqueue(s, "test.block", {"dir": str(spot)})
    wait_for("every thread to run a job", lambda: all((s / "started-1").exists()
                                                      for s in spots))
    held = sessions.count()
    for spot in spots:
        (spot / "go").touch()
    wait_for("the blocked jobs to settle", lambda: rig.app.jobs.counts() == {
        "process": {"completed": THREADS}})
    _run_batch(rig, 0, 40)
    after_40 = sessions.count()
    _run_batch(rig, 40, 80)
    after_120 = sessions.count()
    # one kept connection per thread, plus the pool's: what the handlers and the lease
    # keeper used at once, at most one each; 30 times more tasks than threads add none
    assert THREADS <= held <= BOUND and THREADS <= after_40 <= after_120 <= BOUND, (
        held, after_40, after_120)
    worker.stop()
    assert worker.proc.returncode == 0, worker.tail()
    assert probe.read_text() == "0"  # closed by the worker itself, before it exited
    assert sessions.count() == 0
