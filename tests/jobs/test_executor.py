"""External executors on SQLite and PostgreSQL: publish after commit, claim by id, run_job
outcomes as under ``rindle worker``, the relay's sweep and cron, and the settings."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import Table, select

from rindle import Rindle, hookimpl
from rindle.clock import ManualClock
from rindle.config import JobsSettings
from rindle.domain.models import Job
from rindle.errors import ConfigError, UnknownBackend
from rindle.jobs import Cancel, Executor, JobContext, JobRef, Relay, Retry, run_job
from rindle.plugins import make_plugin_manager
from tests.apps import MakeApp

_T: Table = Job.__table__  # type: ignore[assignment]


class Recording(Executor):
    """An executor that keeps what it is handed (``fail`` makes publish raise)."""

    def __init__(self, app: Any, options: Mapping[str, Any]) -> None:
        super().__init__(app, options)
        self.published: list[JobRef] = []
        self.fail = False
        self.closed = False

    def publish(self, jobs: Sequence[JobRef]) -> int:
        if self.fail:
            raise ConnectionError("broker down")
        self.published.extend(jobs)
        return len(jobs)

    def close(self) -> None:
        self.closed = True


class _Plugin:
    @hookimpl
    def register_executors(self, register: Callable[[str, type], None]) -> None:
        register("recording", Recording)


@pytest.fixture
def xapp(make_app: MakeApp) -> Rindle:
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(_Plugin(), name="recording")
    app = make_app(plugin_manager=pm, jobs={"executor": "recording", "lease_seconds": 30,
                                           "backoff_base": 10.0})
    app.jobs.clock = ManualClock()
    return app


def clock_of(app: Rindle) -> ManualClock:
    clock = app.jobs.clock
    assert isinstance(clock, ManualClock)
    return clock


def recorder(app: Rindle) -> Recording:
    executor = app.executor
    assert isinstance(executor, Recording)
    return executor


def ids(refs: Sequence[JobRef]) -> list[uuid.UUID]:
    return [r.id for r in refs]


def row(app: Rindle, job_id: uuid.UUID | None) -> Any:
    with app.db.engine.connect() as conn:
        return conn.execute(select(_T).where(_T.c.id == job_id)).one()


# --- settings ----------------------------------------------------------------------------


def test_jobs_settings_executor_default_and_checks() -> None:
    assert JobsSettings.parse({}).executor == "worker"
    assert JobsSettings.parse({}).executor_options == {}
    parsed = JobsSettings.parse({"executor": "celery",
                                 "executor_options": {"broker_url": "redis://u:pw@h/0"}})
    assert parsed.executor == "celery" and parsed.executor_options == {
        "broker_url": "redis://u:pw@h/0"}
    assert "pw" not in repr(parsed)  # the options may hold a broker password
    for bad in ("", "  ", 3, None):
        with pytest.raises(ConfigError, match="executor must be an executor name"):
            JobsSettings.parse({"executor": bad})
    with pytest.raises(ConfigError, match=r"\[jobs.executor_options\] must be a table"):
        JobsSettings.parse({"executor_options": "redis://h"})
    with pytest.raises(ConfigError, match="unknown setting"):
        JobsSettings.parse({"executors": "celery"})


def test_an_unknown_executor_fails_at_startup(make_app: MakeApp) -> None:
    with pytest.raises(UnknownBackend) as err:
        make_app(jobs={"executor": "celery"})
    assert err.value.code == "unknown_backend"
    assert "unknown executor backend 'celery'" in str(err.value)
    assert "pip install rindle-celery" in str(err.value)


def test_the_worker_executor_has_no_relay(app: Rindle) -> None:
    assert app.executor is None and app.jobs.publisher is None
    with pytest.raises(ConfigError, match="run `rindle worker`"):
        app.relay()


# --- publishing after commit --------------------------------------------------------------


def test_jobs_are_published_once_their_transaction_commits(xapp: Rindle) -> None:
    xapp.jobs.register("t.ok", lambda app, job: None, queue="process")
    rec = recorder(xapp)
    with pytest.raises(RuntimeError), xapp.db.transaction() as s:
        xapp.jobs.enqueue(s, "t.ok", {})
        raise RuntimeError("rollback")
    assert rec.published == []  # rolled back: never published
    with xapp.db.transaction() as s:
        first = xapp.jobs.enqueue(s, "t.ok", {}, unique_key="u")
        skipped = xapp.jobs.enqueue(s, "t.ok", {}, unique_key="u")
        assert rec.published == []  # not before the commit
    assert skipped.skipped and ids(rec.published) == [first.job_id]
    assert rec.published[0].queue == "process"
    later = xapp.jobs.enqueue_now("t.ok", {}, run_at=clock_of(xapp)() + dt.timedelta(hours=1))
    assert ids(rec.published[1:]) == [later.job_id]
    assert rec.published[1].run_at == clock_of(xapp)() + dt.timedelta(hours=1)
    with xapp.db.transaction() as s:
        made = xapp.jobs.enqueue_unique_batch(s, "t.ok", [({}, "u"), ({}, "v")])
    assert made == 1 and len(rec.published) == 3  # only the new one
    with xapp.db.engine.begin() as conn:  # a bare Connection: left to the relay's sweep
        xapp.jobs.enqueue(conn, "t.ok", {})
    assert len(rec.published) == 3


def test_a_failing_publish_never_fails_the_commit(xapp: Rindle,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    xapp.jobs.register("t.ok", lambda app, job: None, queue="process")
    recorder(xapp).fail = True
    result = xapp.jobs.enqueue_now("t.ok", {})
    assert row(xapp, result.job_id).state == "available"
    assert "rindle.job.publish_failed jobs=1 error=ConnectionError" in caplog.text


def test_close_closes_the_executor(xapp: Rindle) -> None:
    rec = recorder(xapp)
    xapp.close()
    assert rec.closed


# --- claim by id and run_job -------------------------------------------------------------


def test_claim_by_id_takes_only_a_claimable_job(xapp: Rindle) -> None:
    xapp.jobs.register("t.ok", lambda app, job: None, queue="process")
    clock = clock_of(xapp)
    due = xapp.jobs.enqueue_now("t.ok", {"a": 1}).job_id
    later = xapp.jobs.enqueue_now("t.ok", {}, run_at=clock() + dt.timedelta(seconds=1)).job_id
    assert due is not None and later is not None
    assert xapp.jobs.claim_by_id(uuid.uuid4(), "w1") is None  # unknown
    assert xapp.jobs.claim_by_id(later, "w1") is None  # not yet due
    job = xapp.jobs.claim_by_id(due, "w1")
    assert job is not None and (job.attempt, job.args, job.worker_id) == (1, {"a": 1}, "w1")
    assert row(xapp, due).locked_until == clock() + dt.timedelta(seconds=30)
    assert xapp.jobs.claim_by_id(due, "w2") is None  # leased by a live worker
    clock.advance(dt.timedelta(seconds=30))
    assert xapp.jobs.claim_by_id(due, "w2") is None  # at the lease's end: still held
    clock.advance(dt.timedelta(microseconds=1))
    taken = xapp.jobs.claim_by_id(due, "w2")  # one past it: its worker died
    assert taken is not None and taken.attempt == 2
    assert xapp.jobs.execute(taken) == "completed"
    assert xapp.jobs.claim_by_id(due, "w3") is None  # final
    assert xapp.jobs.claim_by_id(later, "w3") is not None  # due now


def test_a_duplicate_message_runs_nothing(xapp: Rindle) -> None:
    runs: list[int] = []
    xapp.jobs.register("t.count", lambda app, job: runs.append(job.attempt), queue="process")
    job_id = xapp.jobs.enqueue_now("t.count", {}).job_id
    assert job_id is not None
    assert run_job(xapp.jobs, job_id, worker_id="c1") == "completed"
    assert run_job(xapp.jobs, str(job_id), worker_id="c2") is None
    assert runs == [1] and row(xapp, job_id).state == "completed"


def test_run_job_outcomes_are_the_workers(xapp: Rindle) -> None:
    def retry(app: Any, job: JobContext) -> None:
        raise Retry("later", delay=7)

    def cancel(app: Any, job: JobContext) -> None:
        raise Cancel("never")

    def boom(app: Any, job: JobContext) -> None:
        raise ValueError("bad")

    xapp.jobs.register("t.retry", retry, queue="process", max_attempts=2)
    xapp.jobs.register("t.cancel", cancel, queue="process")
    xapp.jobs.register("t.boom", boom, queue="process", max_attempts=1)
    rec = recorder(xapp)
    clock = clock_of(xapp)
    r = xapp.jobs.enqueue_now("t.retry", {}).job_id
    c = xapp.jobs.enqueue_now("t.cancel", {}).job_id
    b = xapp.jobs.enqueue_now("t.boom", {}).job_id
    rec.published.clear()
    assert r is not None and c is not None and b is not None
    assert run_job(xapp.jobs, r, worker_id="c", executor=rec) == "retryable"
    # the retry is published again, due when its backoff ends
    assert rec.published == [JobRef(r, "process", clock() + dt.timedelta(seconds=7))]
    assert run_job(xapp.jobs, r, worker_id="c", executor=rec) is None  # not due yet
    clock.advance(dt.timedelta(seconds=7))
    assert run_job(xapp.jobs, r, worker_id="c", executor=rec) == "discarded"  # max attempts
    assert row(xapp, r).attempt == 2 and row(xapp, r).last_error.startswith("Retry: later")
    assert run_job(xapp.jobs, c, worker_id="c") == "cancelled"
    assert row(xapp, c).last_error == "never"
    assert run_job(xapp.jobs, b, worker_id="c") == "discarded"
    assert len(rec.published) == 1  # only the retry was republished


def test_a_lease_that_ran_out_on_the_last_attempt_is_discarded(xapp: Rindle) -> None:
    runs: list[int] = []
    xapp.jobs.register("t.once", lambda app, job: runs.append(1), queue="process",
                       max_attempts=1)
    job_id = xapp.jobs.enqueue_now("t.once", {}).job_id
    assert job_id is not None and xapp.jobs.claim_by_id(job_id, "dead") is not None
    clock_of(xapp).advance(dt.timedelta(seconds=31))
    assert run_job(xapp.jobs, job_id, worker_id="c") == "discarded"
    assert runs == [] and "worker lost" in row(xapp, job_id).last_error


# --- the relay ----------------------------------------------------------------------------


def test_the_sweep_publishes_due_unleased_jobs_once_per_window(xapp: Rindle) -> None:
    xapp.jobs.register("t.ok", lambda app, job: None, queue="process")
    clock = clock_of(xapp)
    rec = recorder(xapp)
    relay = Relay(xapp.jobs, rec, min_age=2.0, republish_after=60.0)
    with xapp.db.engine.begin() as conn:  # enqueued without a publish (a bare Connection)
        xapp.jobs.enqueue_many(conn, "t.ok", [{"n": 1}, {"n": 2}, {"n": 3}])
        xapp.jobs.enqueue(conn, "t.ok", {}, run_at=clock() + dt.timedelta(seconds=10))
    with xapp.db.engine.connect() as conn:
        a, b, c, future = conn.execute(select(_T.c.id).order_by(_T.c.id)).scalars().all()
    assert relay.sweep() == (0, 0)  # younger than min_age: just published at commit
    clock.advance(dt.timedelta(seconds=2))
    assert xapp.jobs.claim_by_id(b, "live") is not None  # leased: left alone
    published, failed = relay.sweep()
    assert (published, failed) == (2, 0) and set(ids(rec.published)) == {a, c}
    assert relay.sweep() == (0, 0)  # published a moment ago
    clock.advance(dt.timedelta(seconds=59))  # b's lease (30 s) ran out, future is due
    rec.published.clear()
    assert relay.sweep() == (2, 0) and set(ids(rec.published)) == {b, future}
    rec.published.clear()
    clock.advance(dt.timedelta(seconds=1))  # 60 s since a and c went out: again
    assert relay.sweep() == (2, 0) and set(ids(rec.published)) == {a, c}


def test_a_failed_sweep_is_retried_next_time(xapp: Rindle) -> None:
    xapp.jobs.register("t.ok", lambda app, job: None, queue="process")
    rec = recorder(xapp)
    job_id = xapp.jobs.enqueue_now("t.ok", {}).job_id
    rec.published.clear()
    relay = Relay(xapp.jobs, rec, min_age=0.0)
    rec.fail = True
    assert relay.sweep() == (0, 1)
    rec.fail = False
    assert relay.sweep() == (1, 0) and ids(rec.published) == [job_id]


def test_a_tick_schedules_cron_then_sweeps(make_app: MakeApp) -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(_Plugin(), name="recording")
    app = make_app(plugin_manager=pm, jobs={"executor": "recording"},
                   cron={"tidy": {"schedule": "* * * * *", "kind": "t.tidy"}})
    app.jobs.register("t.tidy", lambda app, job: None, queue="maintenance")
    app.jobs.clock = clock = ManualClock(dt.datetime(2026, 1, 1, 3, 0, 30, tzinfo=dt.UTC))
    relay = app.relay()
    report = relay.tick()
    assert report.to_dict() == {"scheduled": 1, "published": 0, "failed": 0}  # min_age
    clock.advance(dt.timedelta(seconds=2))
    assert relay.tick().to_dict() == {"scheduled": 0, "published": 1, "failed": 0}
    assert recorder(app).published[0].queue == "maintenance"
    assert app.relay(cron=False).cron_entries == []


def test_rindle_relay_needs_an_external_executor(db_url: str, tmp_path: Any) -> None:
    import json

    from click.testing import CliRunner

    from rindle.cli import cli

    config = tmp_path / "rindle.toml"
    config.write_text(f'database_url = "{db_url}"\nsecret_key = "s"\n\n[storages.default]\n'
                      f'backend = "local"\nroot = "{tmp_path / "media"}"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "relay", "--once", "--json"])
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "config_error"
    assert error["message"].startswith("rindle relay publishes jobs to an external executor, "
                                       "but [jobs] executor is \"worker\"")
