"""The job queue on SQLite and PostgreSQL: enqueue, uniqueness, outcomes, leases, drain."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Table, select, update

from rindle import Rindle
from rindle.clock import ManualClock
from rindle.context import AppContext
from rindle.domain.models import Job, utcnow
from rindle.errors import JobError, ProviderUnavailable, StorageUnavailable
from rindle.jobs import Cancel, JobContext, Retry
from rindle.jobs.kinds import PROCESS_VARIANT, PROMOTE, PURGE
from tests.apps import MakeApp

_T: Table = Job.__table__  # type: ignore[assignment]


@pytest.fixture
def japp(make_app: MakeApp) -> Rindle:
    return make_app(jobs={"backoff_base": 0.0, "lease_seconds": 30})


@pytest.fixture
def clock(japp: Rindle) -> ManualClock:
    """The queue's clock, standing still until a test moves it past a lease."""
    japp.jobs.clock = manual = ManualClock()
    return manual


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
    with japp.db.engine.begin() as conn:
        assert japp.jobs.enqueue_unique_batch(conn, "t.ok", [({}, "k"), ({}, "k3")]) == 1
    japp.jobs.drain()
    again = japp.jobs.enqueue_now("t.ok", {}, unique_key="k")  # the first one is final now
    assert not again.skipped


def test_core_kinds_get_the_design_attempts_and_queues(app: Rindle) -> None:
    expected = {PROMOTE: ("promote", 3), PROCESS_VARIANT: ("process", 5),
                PURGE: ("purge", 3), "rindle.maintenance.cleanup_orphans": ("maintenance", 3)}
    for kind in expected:
        app.jobs.enqueue_now(kind, {}, run_at=utcnow() + dt.timedelta(days=1))
    with app.db.engine.connect() as conn:
        rows = {r.kind: (r.queue, r.max_attempts)
                for r in conn.execute(select(_T.c.kind, _T.c.queue, _T.c.max_attempts))}
    assert rows == expected
    assert app.jobs.kinds["rindle.noop"] == "maintenance"


def test_failures_retry_with_backoff_then_discard(japp: Rindle) -> None:
    calls: list[int] = []

    def flaky(app: AppContext, job: JobContext) -> None:
        calls.append(job.attempt)
        raise Retry("not yet")

    japp.jobs.register("t.flaky", flaky, queue="process", max_attempts=3)
    japp.jobs.enqueue_now("t.flaky", {})
    japp.jobs.drain()
    assert calls == [1, 2, 3]
    [(state, attempt, error)] = states(japp)
    assert (state, attempt) == ("discarded", 3) and error and "not yet" in error


@pytest.mark.parametrize("error", [
    StorageUnavailable("s3 GET 'k' failed (SlowDown: slow down)"),
    ProviderUnavailable("mux get asset failed: HTTP 503", status=503),
])
def test_transient_errors_are_retried_until_the_attempts_run_out(
        japp: Rindle, error: Exception) -> None:
    calls: list[int] = []

    def down(app: AppContext, job: JobContext) -> None:
        calls.append(job.attempt)
        raise error

    japp.jobs.register("t.down", down, queue="process", max_attempts=3)
    japp.jobs.enqueue_now("t.down", {})
    japp.jobs.drain()
    assert calls == [1, 2, 3]
    [(state, attempt, last)] = states(japp)
    assert (state, attempt) == ("discarded", 3)
    assert last is not None and last.startswith(f"{type(error).__name__}: ")


def test_backoff_puts_retries_in_the_future(make_app: Any) -> None:
    app = make_app(jobs={"backoff_base": 60.0})

    def boom(app: AppContext, job: JobContext) -> None:
        if job.args.get("delay"):
            raise Retry("later", delay=job.args["delay"])
        raise ValueError("boom")

    app.jobs.register("t.boom", boom, queue="process")
    app.jobs.enqueue_now("t.boom", {})
    app.jobs.enqueue_now("t.boom", {"delay": 7200})
    assert app.jobs.drain() == 2  # neither retry is due yet
    with app.db.sessionmaker() as s:
        jobs = list(s.scalars(select(Job).order_by(Job.id)))
    now = utcnow()
    assert [j.state for j in jobs] == ["retryable", "retryable"]
    assert jobs[0].run_at > now + dt.timedelta(seconds=40)  # 60 s +- 20 % jitter
    assert "ValueError: boom" in (jobs[0].last_error or "")
    assert jobs[1].run_at > now + dt.timedelta(seconds=7000)  # Retry(delay=) wins
    delays = [app.jobs.backoff(n) for n in (1, 2, 3, 20)]
    assert delays[0] < delays[2] and delays[3] <= app.jobs.backoff_cap * 1.2


def test_drain_with_scheduled_runs_future_jobs(japp: Rindle) -> None:
    ran: list[int] = []
    japp.jobs.register("t.rec", lambda app, job: ran.append(job.args["n"]), queue="process")
    japp.jobs.enqueue_now("t.rec", {"n": 1}, run_at=utcnow() + dt.timedelta(hours=1))
    japp.jobs.enqueue_now("t.rec", {"n": 2})
    assert japp.jobs.drain() == 1 and ran == [2]
    assert japp.jobs.drain(["promote"], with_scheduled=True) == 0  # other queues only
    assert japp.jobs.drain(with_scheduled=True) == 1 and ran == [2, 1]


def test_cancel_is_final_and_never_retried(japp: Rindle) -> None:
    calls: list[int] = []

    def give_up(app: AppContext, job: JobContext) -> None:
        calls.append(job.attempt)
        raise Cancel("pointless")

    japp.jobs.register("t.cancel", give_up, queue="process", max_attempts=5)
    japp.jobs.enqueue_now("t.cancel", {})
    japp.jobs.drain()
    japp.jobs.drain(with_scheduled=True)
    assert calls == [1]
    assert states(japp) == [("cancelled", 1, "pointless")]


def test_cancel_a_waiting_job(japp: Rindle) -> None:
    japp.jobs.register("t.ok", lambda app, job: None, queue="maintenance")
    job_id = japp.jobs.enqueue_now("t.ok", {}).job_id
    assert job_id is not None and japp.jobs.cancel(job_id)
    assert japp.jobs.drain() == 0
    assert not japp.jobs.cancel(job_id)
    running = japp.jobs.enqueue_now("t.ok", {}).job_id
    assert running is not None
    japp.jobs.claim(["maintenance"], "w")
    assert not japp.jobs.cancel(running)  # a running job is not cancelled under its worker


def test_a_dead_workers_job_runs_again_after_its_lease(japp: Rindle,
                                                       clock: ManualClock) -> None:
    runs: list[str | None] = []
    japp.jobs.register("t.rec", lambda app, job: runs.append(job.worker_id), queue="process")
    japp.jobs.enqueue_now("t.rec", {})
    [claimed] = japp.jobs.claim(["process"], "dead-worker", lease_seconds=0.2)
    assert japp.jobs.drain() == 0  # leased: nobody else may run it yet
    clock.advance(0.4)
    assert japp.jobs.drain() == 1
    assert len(runs) == 1 and runs[0] != "dead-worker"
    # the dead worker comes back and tries to settle: it must not overwrite the outcome
    assert japp.jobs._settle(claimed, state="discarded") is False
    assert japp.jobs.complete_many([claimed]) == 0
    assert states(japp) == [("completed", 2, None)]


def test_a_job_killed_on_its_last_attempt_is_discarded(japp: Rindle,
                                                       clock: ManualClock) -> None:
    japp.jobs.register("t.rec", lambda app, job: None, queue="process", max_attempts=1)
    japp.jobs.enqueue_now("t.rec", {})
    japp.jobs.claim(["process"], "dead", lease_seconds=0.1)
    clock.advance(0.3)
    japp.jobs.drain()
    [(state, attempt, error)] = states(japp)
    assert state == "discarded" and attempt == 2 and error and "worker lost" in error


def test_stale_owner_cannot_settle_after_lease_theft(japp: Rindle,
                                                     clock: ManualClock) -> None:
    japp.jobs.register("t.ok", lambda app, job: None, queue="process")
    japp.jobs.enqueue_now("t.ok", {})
    [old] = japp.jobs.claim(["process"], "old", lease_seconds=0.1)
    clock.advance(0.25)
    [new] = japp.jobs.claim(["process"], "new")
    assert new.id == old.id and new.attempt == 2
    assert japp.jobs.execute(old) == "completed"  # the handler ran, but the write is refused
    assert japp.jobs.extend_leases("old", [old.id]) == 0 and japp.jobs.release([old]) == 0
    with japp.db.engine.connect() as conn:
        row = conn.execute(select(_T.c.locked_by, _T.c.state)).one()
    assert tuple(row) == ("new", "executing")
    assert japp.jobs.complete_many([new]) == 1
    assert states(japp) == [("completed", 2, None)]


def test_release_gives_unstarted_claims_back(japp: Rindle) -> None:
    japp.jobs.register("t.ok", lambda app, job: None, queue="process")
    for _ in range(3):
        japp.jobs.enqueue_now("t.ok", {})
    claimed = japp.jobs.claim(["process"], "w", limit=3)
    assert len(claimed) == 3 and japp.jobs.release(claimed[1:]) == 2
    with japp.db.engine.connect() as conn:
        rows = conn.execute(select(_T.c.state, _T.c.attempt, _T.c.locked_by)
                            .order_by(_T.c.id)).all()
    assert [tuple(r) for r in rows] == [("executing", 1, "w"), ("available", 0, None),
                                        ("available", 0, None)]


def test_telemetry_start_stop_and_exception(japp: Rindle) -> None:
    events: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    japp.telemetry.attach(lambda e, m, md: events.append((e, m, md)))

    def handler(app: AppContext, job: JobContext) -> None:
        if job.args["do"] == "fail":
            raise RuntimeError("secret detail")
        if job.args["do"] == "cancel":
            raise Cancel("no")

    japp.jobs.register("t.tel", handler, queue="process", max_attempts=1)
    for do in ("ok", "fail", "cancel"):
        japp.jobs.enqueue_now("t.tel", {"do": do})
    japp.jobs.drain()
    jobs = [e for e in events if e[0].startswith("rindle.job.")]
    stops = [(md["outcome"], md["queue"], md["kind"]) for e, m, md in jobs
             if e == "rindle.job.stop" and m["duration_ms"] >= 0]
    assert stops == [("completed", "process", "t.tel"), ("discarded", "process", "t.tel"),
                     ("cancelled", "process", "t.tel")]
    assert [e for e, _, _ in jobs].count("rindle.job.start") == 3
    [exc] = [md for e, _, md in jobs if e == "rindle.job.exception"]
    assert exc["error"] == "RuntimeError" and "secret" not in str(exc)


def test_timeout_reaches_the_handler(japp: Rindle) -> None:
    seen: list[float | None] = []
    japp.jobs.register("t.slow", lambda app, job: seen.append(job.timeout), queue="process",
                       timeout=12.5)
    japp.jobs.enqueue_now("t.slow", {})
    japp.jobs.drain()
    assert seen == [12.5]


def test_prune_keeps_live_jobs(japp: Rindle) -> None:
    japp.jobs.register("t.ok", lambda app, job: None, queue="process")
    japp.jobs.enqueue_now("t.ok", {})
    japp.jobs.drain()
    japp.jobs.enqueue_now("t.ok", {})
    with japp.db.engine.begin() as conn:
        conn.execute(update(_T).values(finished_at=utcnow() - dt.timedelta(days=30)))
    assert japp.jobs.prune(dt.timedelta(days=7)) == 1
    assert japp.jobs.counts() == {"process": {"available": 1}}
