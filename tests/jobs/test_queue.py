"""The job queue on SQLite and PostgreSQL: enqueue, uniqueness, outcomes, leases, workers."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select, update

from rindle import Rindle
from rindle.domain.models import Job, utcnow
from rindle.errors import JobError
from rindle.jobs import Cancel, JobContext, Retry, Worker


@pytest.fixture
def japp(make_app: Any) -> Rindle:
    return make_app(jobs={"backoff_base": 0.0, "lease_seconds": 30})  # type: ignore[no-any-return]


def states(app: Rindle) -> list[tuple[str, int, str | None]]:
    with app.db.sessionmaker() as s:
        return [(j.state, j.attempt, j.last_error) for j in s.scalars(select(Job).order_by(Job.id))]


def test_enqueue_is_transactional(japp: Rindle) -> None:
    japp.jobs.register("t.ok", lambda app, job: None, queue="maintenance")
    with pytest.raises(RuntimeError), japp.db.transaction() as s:
        japp.jobs.enqueue(s, "t.ok", {"n": 1})
        raise RuntimeError("rollback")
    assert states(japp) == []
    with japp.db.transaction() as s:
        japp.jobs.enqueue(s, "t.ok", {"n": 2})
    assert japp.jobs.drain() == 1
    assert states(japp) == [("completed", 1, None)]


def test_unknown_kind_is_refused(japp: Rindle) -> None:
    with pytest.raises(JobError, match="unknown job kind 'nope'"):
        japp.jobs.enqueue_now("nope", {})


def test_duplicate_unique_key_is_skipped_while_live(japp: Rindle) -> None:
    japp.jobs.register("t.ok", lambda app, job: None, queue="maintenance")
    first = japp.jobs.enqueue_now("t.ok", {}, unique_key="k")
    with japp.db.transaction() as s:
        dup = japp.jobs.enqueue(s, "t.ok", {}, unique_key="k")
        other = japp.jobs.enqueue(s, "t.ok", {}, unique_key="k2")  # transaction still usable
    assert not first.skipped and dup.skipped and dup.job_id is None and not other.skipped
    japp.jobs.drain()
    again = japp.jobs.enqueue_now("t.ok", {}, unique_key="k")  # the first one is final now
    assert not again.skipped


def test_failures_retry_with_backoff_then_discard(japp: Rindle) -> None:
    calls: list[int] = []

    def flaky(app: Rindle, job: JobContext) -> None:
        calls.append(job.attempt)
        raise Retry("not yet")

    japp.jobs.register("t.flaky", flaky, queue="process", max_attempts=3)
    japp.jobs.enqueue_now("t.flaky", {})
    japp.jobs.drain()
    assert calls == [1, 2, 3]
    [(state, attempt, error)] = states(japp)
    assert (state, attempt) == ("discarded", 3) and error and "not yet" in error


def test_backoff_puts_retries_in_the_future(make_app: Any) -> None:
    app = make_app(jobs={"backoff_base": 60.0})

    def boom(app: Rindle, job: JobContext) -> None:
        raise ValueError("boom")

    app.jobs.register("t.boom", boom, queue="process")
    app.jobs.enqueue_now("t.boom", {})
    assert app.jobs.drain() == 1  # the retry is not due yet
    with app.db.sessionmaker() as s:
        job = s.scalars(select(Job)).one()
    assert job.state == "retryable" and job.run_at > utcnow() + dt.timedelta(seconds=40)
    assert app.jobs.backoff(3) > app.jobs.backoff(1)


def test_cancel_is_final_and_never_retried(japp: Rindle) -> None:
    calls: list[int] = []

    def give_up(app: Rindle, job: JobContext) -> None:
        calls.append(job.attempt)
        raise Cancel("pointless")

    japp.jobs.register("t.cancel", give_up, queue="process", max_attempts=5)
    japp.jobs.enqueue_now("t.cancel", {})
    japp.jobs.drain()
    japp.jobs.drain()
    assert calls == [1]
    assert states(japp) == [("cancelled", 1, "pointless")]


def test_cancel_a_waiting_job(japp: Rindle) -> None:
    japp.jobs.register("t.ok", lambda app, job: None, queue="maintenance")
    job_id = japp.jobs.enqueue_now("t.ok", {}).job_id
    assert job_id is not None and japp.jobs.cancel(job_id)
    assert japp.jobs.drain() == 0
    assert not japp.jobs.cancel(job_id)


def test_a_dead_workers_job_runs_again_after_its_lease(japp: Rindle) -> None:
    runs: list[str | None] = []
    japp.jobs.register("t.rec", lambda app, job: runs.append(job.worker_id), queue="process")
    japp.jobs.enqueue_now("t.rec", {})
    [claimed] = japp.jobs.claim(["process"], "dead-worker", lease_seconds=0.2)
    assert japp.jobs.drain() == 0  # leased: nobody else may run it yet
    time.sleep(0.4)
    assert japp.jobs.drain() == 1
    assert len(runs) == 1 and runs[0] != "dead-worker"
    # the dead worker comes back and tries to settle: it must not overwrite the outcome
    assert japp.jobs._settle(claimed, state="discarded") is False
    assert states(japp)[0][0] == "completed"


def test_a_job_killed_on_its_last_attempt_is_discarded(japp: Rindle) -> None:
    japp.jobs.register("t.rec", lambda app, job: None, queue="process", max_attempts=1)
    japp.jobs.enqueue_now("t.rec", {})
    japp.jobs.claim(["process"], "dead", lease_seconds=0.1)
    time.sleep(0.3)
    japp.jobs.drain()
    [(state, attempt, error)] = states(japp)
    assert state == "discarded" and attempt == 2 and error and "worker lost" in error


def test_worker_threads_run_everything_and_record_a_heartbeat(japp: Rindle) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def record(app: Rindle, job: JobContext) -> None:
        with lock:
            seen.append(job.args["n"])

    japp.jobs.register("t.rec", record, queue="process")
    with japp.db.engine.begin() as conn:
        japp.jobs.enqueue_many(conn, "t.rec", [{"n": i} for i in range(60)])
    worker = Worker(japp, {"process": 3}, cron=False, poll_interval=0.01)
    assert worker.run_until_empty(timeout=60) == 60
    assert sorted(seen) == list(range(60))


@pytest.fixture
def pg_app(pg_server: Any, tmp_path: Any) -> Any:
    """An app on its own PostgreSQL database (the acceptance run is specified for PostgreSQL)."""
    url = pg_server.create_database(f"accept_{uuid.uuid4().hex[:8]}", template="rindle_template")
    app = Rindle(database_url=url, secret_key="s", load_entrypoints=False,
                 storages={"default": {"backend": "local", "root": str(tmp_path)}},
                 jobs={"backoff_base": 0.0})
    yield app
    app.close()


@pytest.mark.postgres
def test_four_workers_drain_2000_row_inserting_jobs_exactly_once(pg_app: Rindle) -> None:
    japp = pg_app
    side = Table("job_effects", MetaData(), Column("n", Integer, primary_key=True))
    side.create(japp.db.engine)

    def effect(app: Rindle, job: JobContext) -> None:
        with app.db.engine.begin() as conn:
            conn.execute(insert(side).values(n=job.args["n"]))

    japp.jobs.register("t.effect", effect, queue="process", max_attempts=1)
    with japp.db.engine.begin() as conn:
        japp.jobs.enqueue_many(conn, "t.effect", [{"n": i} for i in range(2000)])
    workers = [Worker(japp, {"process": 1}, cron=False, poll_interval=0.01,
                      worker_id=f"w{i}") for i in range(4)]
    threads = [threading.Thread(target=w.run_until_empty, kwargs={"timeout": 240})
               for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with japp.db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(side)).scalar() == 2000
        done = conn.execute(select(func.count()).select_from(Job.__table__).where(
            Job.__table__.c.state == "completed")).scalar()
    assert done == 2000
    assert sum(w.executed for w in workers) == 2000
    assert all(w.executed > 0 for w in workers)


def test_retry_after_lease_theft_keeps_the_new_owner(japp: Rindle) -> None:
    japp.jobs.register("t.ok", lambda app, job: None, queue="process")
    japp.jobs.enqueue_now("t.ok", {})
    [old] = japp.jobs.claim(["process"], "old", lease_seconds=0.1)
    time.sleep(0.25)
    [new] = japp.jobs.claim(["process"], "new")
    assert new.id == old.id and new.attempt == 2
    assert not japp.jobs._settle(old, state="completed")
    with japp.db.engine.begin() as conn:
        row = conn.execute(select(Job.__table__.c.locked_by, Job.__table__.c.state)).one()
    assert tuple(row) == ("new", "executing")
    with japp.db.engine.begin() as conn:  # tidy: let the new owner finish
        conn.execute(update(Job.__table__).values(state="completed"))
