"""Workers on SQLite and PostgreSQL: threads, heartbeats, graceful stop, exactly-once runs.

Nothing here waits for real time to pass: leases run out when a test moves the queue's
:class:`~rindle.clock.ManualClock`, signals follow events the worker exposes, and every
real-time bound (:data:`PATIENCE`) only matters when something is broken.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select

from rindle import Rindle
from rindle.clock import ManualClock
from rindle.context import AppContext
from rindle.domain.models import Job, WorkerHeartbeat
from rindle.errors import ConfigError
from rindle.jobs import JobContext, Worker

_T: Table = Job.__table__  # type: ignore[assignment]
_HB: Table = WorkerHeartbeat.__table__  # type: ignore[assignment]

#: Seconds any wait here may take before the test fails: reached only when something is
#: broken, never by a slow or loaded machine.
PATIENCE = 120.0


def wait_for(check: Callable[[], bool], what: str, timeout: float = PATIENCE) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def heartbeats(app: Rindle) -> list[str]:
    with app.db.engine.connect() as conn:
        return list(conn.execute(select(_HB.c.worker_id)).scalars())


def job_states(app: Rindle) -> list[str]:
    with app.db.engine.connect() as conn:
        return list(conn.execute(select(_T.c.state).order_by(_T.c.id)).scalars())


def test_worker_threads_run_everything_once(app: Rindle) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def record(app: AppContext, job: JobContext) -> None:
        with lock:
            seen.append(job.args["n"])

    app.jobs.register("t.rec", record, queue="process")
    with app.db.engine.begin() as conn:
        app.jobs.enqueue_many(conn, "t.rec", [{"n": i} for i in range(60)])
    worker = Worker(app, {"process": 3}, cron=False, poll_interval=0.01, prefetch=4)
    assert worker.run_until_empty(timeout=PATIENCE) == 60
    assert sorted(seen) == list(range(60))
    assert set(job_states(app)) == {"completed"} and heartbeats(app) == []


def test_follow_up_jobs_on_another_queue_run_too(app: Rindle) -> None:
    app.jobs.register("t.second", lambda app, job: None, queue="purge")
    app.jobs.register("t.first", lambda a, job: a.jobs.enqueue_now("t.second", {}),
                      queue="process")
    app.jobs.enqueue_now("t.first", {})
    worker = Worker(app, {"process": 1, "purge": 1}, cron=False, poll_interval=0.01)
    assert worker.run_until_empty(timeout=PATIENCE) == 2
    assert job_states(app) == ["completed", "completed"]


def locked_until(app: Rindle) -> Any:
    with app.db.engine.connect() as conn:
        return conn.execute(select(_T.c.locked_until)).scalar_one()


def test_run_keeps_a_heartbeat_and_stop_lets_the_running_job_finish(app: Rindle) -> None:
    clock = app.jobs.clock = ManualClock()
    started, release = _slow_job(app)
    worker = Worker(app, {"process": 1}, cron=False, poll_interval=0.01,
                    heartbeat_interval=0.05, lease_seconds=1.0, worker_id="hb-worker")
    runner = threading.Thread(target=worker.run)
    runner.start()
    try:
        assert started.wait(PATIENCE)
        assert heartbeats(app) == ["hb-worker"]
        clock.advance(timedelta(seconds=2.2))  # twice the lease: only a heartbeat saves it
        wait_for(lambda: locked_until(app) > clock(), "a heartbeat to extend the lease")
        assert app.jobs.claim(["process"], "thief") == []
        worker.stop()
    finally:
        release.set()
        runner.join(PATIENCE)
    assert not runner.is_alive()
    assert job_states(app) == ["completed"] and heartbeats(app) == []


def test_stop_hands_prefetched_jobs_back(app: Rindle) -> None:
    worker: Worker

    def first_stops(app: AppContext, job: JobContext) -> None:
        worker.stop()

    app.jobs.register("t.stop", first_stops, queue="process")
    with app.db.engine.begin() as conn:
        app.jobs.enqueue_many(conn, "t.stop", [{} for _ in range(5)])
    worker = Worker(app, {"process": 1}, cron=False, prefetch=5)
    assert worker.run_until_empty(timeout=PATIENCE) == 1
    with app.db.engine.connect() as conn:
        rows = conn.execute(select(_T.c.state, _T.c.attempt, _T.c.locked_by)).all()
    assert sorted(tuple(r) for r in rows) == [("available", 0, None)] * 4 + [
        ("completed", 1, None)]


def test_bad_queues_and_cron_kinds_fail_at_start(make_app: Any) -> None:
    app = make_app()
    with pytest.raises(ConfigError, match=r"unknown queue.*proces"):
        Worker(app, {"proces": 2}, cron=False)
    with pytest.raises(ConfigError, match="positive integer"):
        Worker(app, {"process": 0}, cron=False)
    assert Worker(app, ["process", "purge"], concurrency=3, cron=False).queues == {
        "process": 3, "purge": 3}
    bad = make_app(cron={"nightly_mystery": "0 1 * * *"})
    with pytest.raises(ConfigError, match=r"\[cron\] nightly_mystery: job kind "
                       r"'rindle.maintenance.nightly_mystery' is not registered"):
        Worker(bad)
    ok = make_app(cron={"cleanup_orphans": {"schedule": "0 2 * * *", "dry_run": False}})
    [entry] = Worker(ok).cron_entries
    assert entry.kind == "rindle.maintenance.cleanup_orphans" and entry.args == {
        "dry_run": False}


def _slow_job(app: Rindle, ran_on: list[int] | None = None
              ) -> tuple[threading.Event, threading.Event]:
    """Enqueue a job that sets ``started`` and then blocks until ``release``; the id of the
    thread running it is appended to ``ran_on``."""
    started, release = threading.Event(), threading.Event()

    def slow(app: AppContext, job: JobContext) -> None:
        if ran_on is not None:
            ran_on.append(threading.get_ident())
        started.set()
        release.wait(PATIENCE)

    app.jobs.register("t.slow", slow, queue="process")
    app.jobs.enqueue_now("t.slow", {})
    return started, release


def _to_process(sig: int) -> None:
    os.kill(os.getpid(), sig)


def _signal_when(started: threading.Event, worker: Worker, *signals: int,
                 then: Callable[[], object] = lambda: None,
                 kill: Callable[[int], None] = _to_process) -> threading.Thread:
    """Once the job ``started``, send each signal in turn (to this process, or with
    ``kill``); after the first, wait until the worker handled it (its stop was requested),
    so two signals never merge into one delivery. ``then`` runs once it was handled."""
    def send() -> None:
        started.wait(PATIENCE)
        for i, sig in enumerate(signals):
            kill(sig)
            if i == 0:
                worker.wait_for_stop(PATIENCE)
                then()

    t = threading.Thread(target=send)
    t.start()
    return t


def test_a_signal_stops_run_after_the_running_job(app: Rindle) -> None:
    started, release = _slow_job(app)
    before = signal.getsignal(signal.SIGINT)
    worker = Worker(app, {"process": 1}, cron=False, poll_interval=0.01)
    # the job ends only after the signal arrived
    sender = _signal_when(started, worker, signal.SIGINT, then=release.set)
    worker.run()  # returns once the job finished
    sender.join(PATIENCE)
    assert not sender.is_alive()
    assert job_states(app) == ["completed"] and worker.executed == 1
    assert signal.getsignal(signal.SIGINT) is before and heartbeats(app) == []


def test_a_second_signal_exits_at_once(app: Rindle) -> None:
    started, release = _slow_job(app)
    before = signal.getsignal(signal.SIGTERM)
    worker = Worker(app, {"process": 1}, cron=False, poll_interval=0.01)
    sender = _signal_when(started, worker, signal.SIGTERM, signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exc:
            worker.run()
        assert exc.value.code == 128 + signal.SIGTERM
        assert job_states(app) == ["executing"]  # left to its lease
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        release.set()
        sender.join(PATIENCE)
    assert not sender.is_alive()
    wait_for(lambda: job_states(app) == ["completed"], "the abandoned thread to finish")


def test_signals_a_job_thread_catches_still_stop_and_exit(app: Rindle) -> None:
    """The kernel may hand a process-directed signal to any thread, but only the main
    thread runs Python's handlers: both signals go to the running job's own thread here,
    and the second still exits while that job runs."""
    ran_on: list[int] = []
    started, release = _slow_job(app, ran_on)
    before = signal.getsignal(signal.SIGTERM)
    worker = Worker(app, {"process": 1}, cron=False, poll_interval=0.01)
    sender = _signal_when(started, worker, signal.SIGTERM, signal.SIGTERM,
                          kill=lambda sig: signal.pthread_kill(ran_on[0], sig))
    try:
        with pytest.raises(SystemExit) as exc:
            worker.run()
        assert exc.value.code == 128 + signal.SIGTERM
        assert job_states(app) == ["executing"]  # left to its lease
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        release.set()
        sender.join(PATIENCE)
    assert not sender.is_alive()
    wait_for(lambda: job_states(app) == ["completed"], "the abandoned thread to finish")


@pytest.fixture
def config_file(db_url: str, tmp_path: Path) -> Path:
    path = tmp_path / "rindle.toml"
    path.write_text(f'database_url = "{db_url}"\nsecret_key = "s"\n'
                    f'[jobs]\npoll_interval = 0.05\n'
                    f'[storages.default]\nbackend = "local"\nroot = "{tmp_path / "m"}"\n')
    return path


def test_sigterm_stops_the_worker_process_cleanly(app: Rindle, config_file: Path) -> None:
    env = {**os.environ, "RINDLE_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rindle", "--config", str(config_file), "worker",
         "--queue", "maintenance=1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        wait_for(lambda: len(heartbeats(app)) == 1 or proc.poll() is not None, "heartbeat")
        app.jobs.enqueue_now("rindle.noop", {})
        wait_for(lambda: job_states(app) == ["completed"], "the noop job to run")
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=PATIENCE)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "queues maintenance=1" in err and "stopped after 1 job(s)" in err
    assert heartbeats(app) == []


@pytest.fixture
def pg_app(pg_server: Any, tmp_path: Path) -> Iterator[Rindle]:
    """An app on its own PostgreSQL database (the acceptance run is specified for PostgreSQL)."""
    name = f"accept_{uuid.uuid4().hex[:8]}"
    url = pg_server.create_database(name, template="rindle_template")
    app = Rindle(database_url=url, secret_key="s", load_entrypoints=False,
                 storages={"default": {"backend": "local", "root": str(tmp_path)}},
                 jobs={"backoff_base": 0.0})
    yield app
    app.close()
    pg_server.drop_database(name)


@pytest.mark.postgres
def test_four_workers_drain_2000_row_inserting_jobs_exactly_once(pg_app: Rindle) -> None:
    side = Table("job_effects", MetaData(), Column("n", Integer, primary_key=True))
    side.create(pg_app.db.engine)

    def effect(app: AppContext, job: JobContext) -> None:
        with app.db.engine.begin() as conn:  # a duplicate run would violate the primary key
            conn.execute(insert(side).values(n=job.args["n"]))

    pg_app.jobs.register("t.effect", effect, queue="process", max_attempts=1)
    with pg_app.db.engine.begin() as conn:
        pg_app.jobs.enqueue_many(conn, "t.effect", [{"n": i} for i in range(2000)])
    workers = [Worker(pg_app, {"process": 1}, cron=False, poll_interval=0.01,
                      worker_id=f"w{i}") for i in range(4)]
    threads = [threading.Thread(target=w.run_until_empty, kwargs={"timeout": 240})
               for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pg_app.db.engine.connect() as conn:
        rows = conn.execute(select(func.count(), func.count(side.c.n.distinct()),
                                   func.min(side.c.n), func.max(side.c.n))).one()
        states = {s: n for s, n in conn.execute(
            select(_T.c.state, func.count()).group_by(_T.c.state))}
    assert tuple(rows) == (2000, 2000, 0, 1999)
    assert states == {"completed": 2000}
    assert sum(w.executed for w in workers) == 2000
    assert all(w.executed > 0 for w in workers)
