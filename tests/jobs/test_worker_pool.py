"""The worker's per-queue pool: one claiming loop per queue, job threads started lazily.

With the default settings the ``provider`` queue runs up to 16 jobs at once
(:data:`~rindle.jobs.worker.DEFAULT_CONCURRENCY`) and never more; a queue with nothing to
do starts no job threads; a stop lets the running jobs finish and hands claimed unstarted
ones back. Jobs block on events, so nothing here depends on timing: real-time bounds
(:data:`PATIENCE`) are reached only when something is broken. Both dialects.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, func, select

from rindle import Rindle
from rindle.context import AppContext
from rindle.domain.models import Job
from rindle.jobs import Cancel, JobContext, Retry, Worker
from rindle.jobs.worker import DEFAULT_CONCURRENCY

_T: Table = Job.__table__  # type: ignore[assignment]
PATIENCE = 120.0
PROVIDER_DEFAULT = 16


def wait_for(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after :data:`PATIENCE`."""
    deadline = time.monotonic() + PATIENCE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def states(app: Rindle) -> dict[tuple[str, int], int]:
    """(state, attempt) -> how many jobs."""
    with app.db.engine.connect() as conn:
        rows = conn.execute(select(_T.c.state, _T.c.attempt, func.count())
                            .group_by(_T.c.state, _T.c.attempt)).all()
    return {(s, a): n for s, a, n in rows}


class Gate:
    """A handler that counts the jobs inside it, remembers the most at once, sets
    ``reached`` when ``target`` are inside together, and holds every job until ``open``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.lock = threading.Lock()
        self.inside = 0
        self.peak = 0
        self.reached = threading.Event()
        self.open = threading.Event()

    def __call__(self, app: AppContext, job: JobContext) -> None:
        with self.lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
            if self.inside >= self.target:
                self.reached.set()
        try:
            assert self.open.wait(PATIENCE), "the test never opened the gate"
        finally:
            with self.lock:
                self.inside -= 1


def enqueue(app: Rindle, kind: str, n: int) -> None:
    with app.db.engine.begin() as conn:
        app.jobs.enqueue_many(conn, kind, [{"n": i} for i in range(n)])


def test_default_provider_concurrency_is_16_jobs_at_once_and_never_17(app: Rindle) -> None:
    assert DEFAULT_CONCURRENCY["provider"] == PROVIDER_DEFAULT
    gate = Gate(PROVIDER_DEFAULT)
    app.jobs.register("t.gate", gate, queue="provider")
    enqueue(app, "t.gate", PROVIDER_DEFAULT + 1)
    worker = Worker(app, cron=False)  # the default settings
    assert worker.queues["provider"] == PROVIDER_DEFAULT
    ran: list[int] = []
    runner = threading.Thread(target=lambda: ran.append(worker.run_until_empty(
        timeout=PATIENCE)))
    runner.start()
    try:
        assert gate.reached.wait(PATIENCE)
        # 16 running, the 17th neither running nor claimed (nobody hoards it)
        assert states(app) == {("executing", 1): 16, ("available", 0): 1}
        assert gate.inside == 16 and worker.job_threads["provider"] == 16
    finally:
        gate.open.set()
        runner.join(PATIENCE)
    assert not runner.is_alive() and ran == [17]
    assert gate.peak == 16  # the 17th ran in a freed slot, on a thread already started
    assert worker.job_threads == {**dict.fromkeys(worker.queues, 0), "provider": 16}
    assert states(app) == {("completed", 1): 17}


def test_a_queue_runs_exactly_its_concurrency_at_once(app: Rindle) -> None:
    gate = Gate(3)
    app.jobs.register("t.gate", gate, queue="process")
    enqueue(app, "t.gate", 4)
    worker = Worker(app, {"process": 3}, cron=False, prefetch=1)
    runner = threading.Thread(target=worker.run_until_empty, kwargs={"timeout": PATIENCE})
    runner.start()
    try:
        assert gate.reached.wait(PATIENCE)
        assert states(app) == {("executing", 1): 3, ("available", 0): 1}
    finally:
        gate.open.set()
        runner.join(PATIENCE)
    assert not runner.is_alive() and gate.peak == 3
    assert worker.job_threads == {"process": 3} and worker.executed == 4


def test_an_idle_queue_starts_no_job_threads(app: Rindle) -> None:
    worker = Worker(app, cron=False)
    # returns only once every queue's claiming loop found nothing to claim
    assert worker.run_until_empty(timeout=PATIENCE) == 0
    assert worker.job_threads == dict.fromkeys(DEFAULT_CONCURRENCY, 0)


def test_a_running_worker_is_one_poller_per_queue_plus_threads_for_work(app: Rindle) -> None:
    seen = threading.Event()
    names: list[str] = []

    def look(_app: AppContext, _job: JobContext) -> None:
        names.extend(t.name for t in threading.enumerate() if t not in before)
        seen.set()

    def started() -> list[str]:
        return sorted(t.name for t in threading.enumerate() if t not in before)

    app.jobs.register("t.look", look, queue="process")
    worker = Worker(app, cron=False, poll_interval=0.01)
    before = set(threading.enumerate())
    runner = threading.Thread(target=worker.run, kwargs={"install_signals": False},
                              name="test-runner")
    pollers = sorted(f"rindle-{q}" for q in DEFAULT_CONCURRENCY)
    runner.start()
    try:
        wait_for(lambda: started() == sorted([*pollers, "test-runner"]),
                 "one claiming loop per queue")
        app.jobs.enqueue_now("t.look", {})
        assert seen.wait(PATIENCE)
    finally:
        worker.stop()
        runner.join(PATIENCE)
    assert not runner.is_alive()
    assert sorted(names) == sorted([*pollers, "rindle-process-0", "test-runner"])
    assert worker.job_threads == {**dict.fromkeys(DEFAULT_CONCURRENCY, 0), "process": 1}
    # every thread the worker started has ended
    assert not [t for t in threading.enumerate() if t.name.startswith("rindle-")
                and t not in before]


def test_sigterm_lets_the_running_jobs_finish_and_hands_the_claimed_rest_back(
        app: Rindle) -> None:
    gate = Gate(4)
    app.jobs.register("t.gate", gate, queue="provider")
    enqueue(app, "t.gate", 8)
    # a claim of 2 per slot: each of the 4 threads holds its running job and one more
    worker = Worker(app, {"provider": 4}, cron=False, prefetch=2, poll_interval=0.01)

    def send() -> None:
        gate.reached.wait(PATIENCE)
        os.kill(os.getpid(), signal.SIGTERM)
        worker.wait_for_stop(PATIENCE)
        gate.open.set()

    sender = threading.Thread(target=send)
    before = signal.getsignal(signal.SIGTERM)
    sender.start()
    try:
        worker.run()  # in the main thread: returns once the running jobs finished
    finally:
        gate.open.set()
        sender.join(PATIENCE)
    assert signal.getsignal(signal.SIGTERM) is before
    assert gate.peak == 4 and worker.executed == 4
    # the 4 prefetched ones went back with their attempt undone
    assert states(app) == {("completed", 1): 4, ("available", 0): 4}


def test_outcomes_settle_once_each_across_the_pool(app: Rindle) -> None:
    """Success, Cancel, Retry and failure on the last attempt, 8 of each, on 8 threads."""

    def mixed(_app: AppContext, job: JobContext) -> None:
        kind = job.args["n"] % 4
        if kind == 1:
            raise Cancel("not wanted")
        if kind == 2:
            raise Retry("later", delay=3600)
        if kind == 3:
            raise RuntimeError("boom")

    app.jobs.register("t.mixed", mixed, queue="provider", max_attempts=1)
    app.jobs.register("t.mixed_retry", mixed, queue="provider", max_attempts=2)
    with app.db.engine.begin() as conn:
        app.jobs.enqueue_many(conn, "t.mixed", [{"n": i} for i in range(32) if i % 4 != 2])
        app.jobs.enqueue_many(conn, "t.mixed_retry",
                              [{"n": i} for i in range(32) if i % 4 == 2])
    worker = Worker(app, {"provider": 8}, cron=False)
    assert worker.run_until_empty(timeout=PATIENCE) == 32
    assert states(app) == {("completed", 1): 8, ("cancelled", 1): 8, ("retryable", 1): 8,
                           ("discarded", 1): 8}
    assert worker.job_threads == {"provider": 8}


def test_run_until_empty_follows_work_a_pool_job_enqueues(app: Rindle) -> None:
    app.jobs.register("t.leaf", lambda _a, _j: None, queue="maintenance")

    def fan_out(a: Any, job: JobContext) -> None:
        a.jobs.enqueue_now("t.leaf", {"from": job.args["n"]})

    app.jobs.register("t.fan", fan_out, queue="provider")
    enqueue(app, "t.fan", 20)
    worker = Worker(app, cron=False)
    assert worker.run_until_empty(timeout=PATIENCE) == 40
    assert states(app) == {("completed", 1): 40}
    assert worker.job_threads["maintenance"] == 1


def test_a_queue_named_without_a_concurrency_gets_its_default(app: Rindle) -> None:
    assert Worker(app, ["provider", "process", "purge"], cron=False).queues == {
        "provider": 16, "process": 2, "purge": 1}
    assert Worker(app, ["provider"], concurrency=3, cron=False).queues == {"provider": 3}
    app.jobs.register("t.elsewhere", lambda _a, _j: None, queue="elsewhere")
    assert Worker(app, ["elsewhere"], cron=False).queues == {"elsewhere": 1}


def test_cli_queue_option_without_a_number_means_the_default() -> None:
    from rindle.cli.worker import _parse_queue

    assert _parse_queue(None, None, ("provider", "process=3", "purge")) == {  # type: ignore[arg-type]
        "provider": 16, "process": 3, "purge": 1}
    assert _parse_queue(None, None, ("elsewhere",)) == {"elsewhere": 1}  # type: ignore[arg-type]
