"""``[jobs] executor = "inline"`` / ``Rindle(jobs="inline")``: jobs run in the committing
thread once their transaction commits, so an app's tests need no worker.

Every assertion reads the job rows and the handlers' own records after the call returned:
nothing waits for a background thread.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from rindle import Rindle
from rindle.config import load_settings
from rindle.domain.models import Job
from rindle.errors import ConfigError
from rindle.jobs import JobContext
from tests.domain import attach_kit
from tests.lifecycle.conftest import PROFILES, jpeg_bytes

#: One migrated database per dialect for the whole module (tests.domain.attach_kit): each
#: test reads only the jobs it enqueued and the assets it uploaded.
module_db_url = attach_kit.module_db_url


@pytest.fixture
def inline_app(module_db_url: str, tmp_path: Path) -> Iterator[Rindle]:
    app = Rindle(database_url=module_db_url, secret_key="test-secret", profiles=PROFILES,
                 jobs="inline", tmp_dir=str(tmp_path / "tmp"), load_entrypoints=False,
                 storages={"default": {"backend": "local", "root": str(tmp_path / "media")}})
    yield app
    app.close()


class Recorder:
    """Handlers for test kinds; records (kind, attempt, thread) per run."""

    def __init__(self, app: Rindle) -> None:
        self.runs: list[tuple[str, int, str]] = []
        self.fail_until: dict[str, int] = {}
        for kind in ("t.flaky", "t.parent", "t.child"):
            app.jobs.register(kind, self.handle, queue="maintenance", max_attempts=3)

    def handle(self, app: Any, job: JobContext) -> None:
        self.runs.append((job.kind, job.attempt, threading.current_thread().name))
        if job.kind == "t.parent":
            with app.db.transaction() as s:
                app.jobs.enqueue(s, "t.child", {"n": 1})
                app.jobs.enqueue(s, "t.child", {"n": 2})
            self.runs.append(("t.parent.after_enqueue", job.attempt, ""))
        if job.attempt < self.fail_until.get(job.kind, 0):
            raise RuntimeError(f"attempt {job.attempt} fails")


def enqueue(app: Rindle, kind: str, **options: Any) -> Any:
    with app.db.transaction() as s:
        return app.jobs.enqueue(s, kind, {}, **options).job_id


def job_row(app: Rindle, job_id: Any) -> Any:
    with app.db.engine.connect() as conn:
        return conn.execute(select(Job.state, Job.attempt, Job.last_error)
                            .where(Job.id == job_id)).one()


def test_upload_returns_with_the_asset_promoted_and_its_variants_ready(
        inline_app: Rindle) -> None:
    asset = inline_app.upload("photo", jpeg_bytes(), filename="a.jpg")
    assert asset.state == "ready"
    assert {n: v.state for n, v in asset.variants.items()} == {"large": "ready",
                                                                "thumb": "ready"}
    assert f"/{asset.id}/thumb-" in inline_app.url(asset.id, "thumb")
    with inline_app.db.engine.connect() as conn:
        states = conn.execute(select(Job.kind, Job.state).where(
            Job.args["asset_id"].as_string() == str(asset.id))).all()
    assert sorted(states) == [("rindle.process_variant", "completed"),
                              ("rindle.process_variant", "completed"),
                              ("rindle.promote", "completed")]  # nothing left for a worker


def test_jobs_run_in_the_committing_thread_after_the_commit(inline_app: Rindle) -> None:
    rec = Recorder(inline_app)
    job_id = enqueue(inline_app, "t.flaky")
    assert rec.runs == [("t.flaky", 1, threading.current_thread().name)]
    assert job_row(inline_app, job_id) == ("completed", 1, None)


def test_a_rolled_back_enqueue_runs_nothing(inline_app: Rindle) -> None:
    rec = Recorder(inline_app)
    with pytest.raises(RuntimeError), inline_app.db.transaction() as s:
        inline_app.jobs.enqueue(s, "t.flaky", {})
        raise RuntimeError("the caller fails")
    assert rec.runs == []


def test_a_failing_job_runs_its_attempts_back_to_back_then_is_discarded(
        inline_app: Rindle) -> None:
    rec = Recorder(inline_app)
    rec.fail_until["t.flaky"] = 99
    job_id = enqueue(inline_app, "t.flaky")  # no exception reaches the caller
    assert [attempt for _, attempt, _ in rec.runs] == [1, 2, 3]  # max_attempts = 3
    state, attempt, last_error = job_row(inline_app, job_id)
    assert (state, attempt) == ("discarded", 3)
    assert last_error.startswith("RuntimeError: attempt 3 fails")


def test_a_job_that_recovers_completes_on_the_attempt_that_passed(inline_app: Rindle) -> None:
    rec = Recorder(inline_app)
    rec.fail_until["t.flaky"] = 3  # attempts 1 and 2 fail
    job_id = enqueue(inline_app, "t.flaky")
    assert [attempt for _, attempt, _ in rec.runs] == [1, 2, 3]
    assert job_row(inline_app, job_id) == ("completed", 3, None)


def test_jobs_a_job_enqueues_run_after_it_in_order(inline_app: Rindle) -> None:
    rec = Recorder(inline_app)
    enqueue(inline_app, "t.parent")
    assert [kind for kind, _, _ in rec.runs] == [
        "t.parent", "t.parent.after_enqueue", "t.child", "t.child"]


def test_a_job_due_later_is_left_for_a_worker(inline_app: Rindle) -> None:
    rec = Recorder(inline_app)
    later = inline_app.jobs.clock() + dt.timedelta(hours=1)
    job_id = enqueue(inline_app, "t.flaky", run_at=later)
    assert rec.runs == []
    assert job_row(inline_app, job_id) == ("available", 0, None)
    inline_app.jobs.execute(inline_app.jobs.claim(["maintenance"], "test", with_scheduled=True,
                                                  limit=1)[0])
    assert job_row(inline_app, job_id) == ("completed", 1, None)


def test_inside_bind_jobs_wait_for_the_hosts_commit(inline_app: Rindle,
                                                    module_db_url: str) -> None:
    rec = Recorder(inline_app)
    parsed = make_url(module_db_url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    host = create_engine(parsed)
    try:
        with host.connect() as conn:
            with inline_app.bind(conn):
                enqueue(inline_app, "t.flaky")
            assert rec.runs == []  # committed only into the host's transaction
            conn.rollback()
        assert rec.runs == []
        with host.connect() as conn:
            with inline_app.bind(conn):
                job_id = enqueue(inline_app, "t.flaky")
                assert rec.runs == []
            conn.commit()
        assert [kind for kind, _, _ in rec.runs] == ["t.flaky"]
        assert job_row(inline_app, job_id) == ("completed", 1, None)
    finally:
        host.dispose()


def test_the_setting_and_its_options(tmp_path: Path) -> None:
    config = tmp_path / "rindle.toml"
    config.write_text('[jobs]\nexecutor = "inline"\n')
    assert load_settings(config).jobs.executor == "inline"
    app = Rindle(settings=load_settings(config), database_url=f"sqlite:///{tmp_path}/x.db",
                 load_entrypoints=False)
    app.migrate()
    try:
        assert app.executor is not None
        assert type(app.executor).__name__ == "InlineExecutor"
    finally:
        app.close()
    config.write_text('[jobs]\nexecutor = "inline"\n[jobs.executor_options]\nspeed = 1\n')
    bad = Rindle(settings=load_settings(config), database_url=f"sqlite:///{tmp_path}/x.db",
                 load_entrypoints=False)
    try:
        with pytest.raises(ConfigError, match="the inline executor takes no options, got speed"):
            _ = bad.executor
    finally:
        bad.close()


def test_jobs_inline_keeps_the_other_jobs_settings(tmp_path: Path) -> None:
    from rindle.config import JobsSettings, Settings

    app = Rindle(settings=Settings(jobs=JobsSettings(lease_seconds=42)), jobs="inline",
                 database_url=f"sqlite:///{tmp_path}/x.db", load_entrypoints=False)
    assert (app.settings.jobs.executor, app.settings.jobs.lease_seconds) == ("inline", 42.0)
