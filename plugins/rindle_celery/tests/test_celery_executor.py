"""rindle on Celery with a real redis-server (broker and result backend) and real
``celery worker`` processes, on SQLite and PostgreSQL: an upload ends ready, a worker
killed mid-job, a broker that goes away, four workers draining 2,000 jobs exactly once."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from conftest import Rig
from PIL import Image
from sqlalchemy import Table, func, select, text, update

from rindle.domain.models import Job
from rindle.jobs import Relay
from rindle_celery import RELAY_TASK, CeleryExecutor

_T: Table = Job.__table__  # type: ignore[assignment]
_V = TypeVar("_V")

#: Longest any condition below is waited for: only a broken setup, never a loaded machine,
#: takes that long.
DEADLINE = 60.0


def wait_for(what: str, probe: Callable[[], _V | None], timeout: float = DEADLINE) -> _V:
    """Poll ``probe`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def job_row(rig: Rig, job_id: uuid.UUID | None) -> Any:
    with rig.app.db.engine.connect() as conn:
        return conn.execute(select(_T).where(_T.c.id == job_id)).one()


def executor(rig: Rig) -> CeleryExecutor:
    found = rig.app.executor
    assert isinstance(found, CeleryExecutor)
    return found


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(out, "JPEG")
    return out.getvalue()


def test_an_upload_ends_ready_and_beat_runs_the_relay(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.workers(1)
    asset = rig.app.upload("photo", jpeg(), filename="p.jpg")  # promotion published at commit

    def ready() -> Any:
        found = rig.app.get_asset(asset.id)
        return found if found.state == "ready" else None

    done = wait_for("the asset to be ready", ready)
    assert done.variants["thumb"].state == "ready"
    with rig.app.db.engine.connect() as conn:
        states = conn.execute(select(_T.c.kind, _T.c.state, _T.c.attempt)
                              .order_by(_T.c.inserted_at)).all()
    assert [tuple(s) for s in states] == [("rindle.promote", "completed", 1),
                                          ("rindle.process_variant", "completed", 1)]
    # the beat task: one relay tick in a worker, its report through the result backend
    result = executor(rig).celery.send_task(RELAY_TASK, queue=f"{rig.prefix}maintenance")
    assert result.get(timeout=DEADLINE) == {"scheduled": 0, "published": 0, "failed": 0}


def test_a_worker_killed_mid_job_gives_one_completed_run(make_rig: Callable[..., Rig],
                                                        tmp_path: Path) -> None:
    rig = make_rig(lease_seconds=2)
    first, = rig.workers(1)
    spot = tmp_path / "block"
    spot.mkdir()
    job_id = rig.app.jobs.enqueue_now("test.block", {"dir": str(spot)}).job_id
    wait_for("the first attempt to start", lambda: (spot / "started-1").exists())
    first.kill()  # kill -9 mid-job: no acknowledgement, no settle, no more heartbeats
    rig.workers(1)
    (spot / "go").touch()
    held = job_row(rig, job_id)
    assert (held.state, held.attempt) == ("executing", 1)
    relay = Relay(rig.app.jobs, executor(rig), min_age=0.0)
    wait_for("the dead worker's lease to run out",
             lambda: job_row(rig, job_id).locked_until < rig.app.jobs.clock())
    assert relay.sweep() == (1, 0)
    wait_for("the job to complete", lambda: job_row(rig, job_id).state == "completed")
    assert (spot / "done").read_text() == f"{job_id} 2\n"  # exactly one completed run
    assert job_row(rig, job_id).attempt == 2
    assert not (spot / "started-3").exists()


def probe_rows(rig: Rig) -> tuple[int, int]:
    with rig.app.db.engine.connect() as conn:
        return tuple(conn.execute(text(  # type: ignore[return-value]
            "SELECT count(*), count(DISTINCT job_id) FROM celery_probe")).one())


def make_probe_table(rig: Rig) -> None:
    with rig.app.db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE celery_probe (job_id VARCHAR(36) NOT NULL, "
                          "n INTEGER NOT NULL)"))


def test_a_stopped_broker_loses_nothing(make_rig: Callable[..., Rig],
                                        caplog: pytest.LogCaptureFixture) -> None:
    rig = make_rig()
    make_probe_table(rig)
    rig.workers(1)
    rig.redis.stop()
    try:
        with rig.app.db.transaction() as s:
            rig.app.jobs.enqueue_many(s, "test.insert", [{"n": n} for n in range(3)])
        assert "rindle.job.publish_failed jobs=3" in caplog.text  # committed all the same
    finally:
        rig.redis.start()  # same port, empty: every message it held is gone
    relay = Relay(rig.app.jobs, executor(rig), min_age=0.0)
    assert wait_for("a sweep to reach the broker again", lambda: relay.sweep()[0]) == 3
    assert wait_for("three rows", lambda: probe_rows(rig) == (3, 3))
    wait_for("the jobs to settle", lambda: rig.app.jobs.counts() == {"process": {
        "completed": 3}})


def test_the_relay_command_publishes_what_was_never_published(
        make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    make_probe_table(rig)
    with rig.app.db.engine.begin() as conn:  # a bare Connection: nothing published at commit
        rig.app.jobs.enqueue_many(conn, "test.insert", [{"n": 1}, {"n": 2}])
        earlier = rig.app.jobs.clock() - dt.timedelta(seconds=5)  # older than the min age
        conn.execute(update(_T).values(run_at=earlier, updated_at=earlier))
    env = {**os.environ, **rig.env, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    out = subprocess.run([str(Path(sys.executable).parent / "rindle"), "relay", "--once",
                          "--json"], env=env, capture_output=True, text=True, timeout=120,
                         cwd=rig.dir)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"scheduled": 0, "published": 2, "failed": 0}
    assert probe_rows(rig) == (0, 0)  # published, not run: no worker yet
    rig.workers(1)
    assert wait_for("two rows", lambda: probe_rows(rig) == (2, 2))


def test_the_relay_runs_until_sigterm(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    make_probe_table(rig)
    with rig.app.db.engine.begin() as conn:  # a bare Connection: nothing published at commit
        rig.app.jobs.enqueue_many(conn, "test.insert", [{"n": 1}])
        earlier = rig.app.jobs.clock() - dt.timedelta(seconds=5)
        conn.execute(update(_T).values(run_at=earlier, updated_at=earlier))
    env = {**os.environ, **rig.env, "PYTHONPATH": str(Path(__file__).resolve().parent)}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "rindle"), "--json", "relay",
                             "--interval", "0.1"], env=env, cwd=rig.dir, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        broker = redis.Redis.from_url(rig.redis.url + "/0")
        # kombu's Redis transport keeps each queue as a list named after it
        wait_for("the job's message", lambda: broker.llen(f"{rig.prefix}process") == 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    # however many ticks ran, the job went out once (republished only after 60 s)
    assert json.loads(out) == {"published": 1}
    assert "rindle relay: executor celery, every 0.1 s" in err


def test_four_workers_drain_2000_jobs_exactly_once_on_postgresql(pg_rig: Rig) -> None:
    rig = pg_rig
    make_probe_table(rig)
    rig.workers(4)
    with rig.app.db.transaction() as s:
        assert rig.app.jobs.enqueue_many(s, "test.insert",
                                         [{"n": n} for n in range(2000)]) == 2000
    wait_for("2,000 rows", lambda: probe_rows(rig)[0] >= 2000, timeout=120)
    wait_for("every job to settle", lambda: rig.app.jobs.counts() == {
        "process": {"completed": 2000}})
    assert probe_rows(rig) == (2000, 2000)
    with rig.app.db.engine.connect() as conn:
        attempts = conn.execute(select(func.sum(_T.c.attempt))).scalar_one()
        workers = conn.execute(select(func.count(func.distinct(_T.c.id)))).scalar_one()
        n_values = conn.execute(text("SELECT count(DISTINCT n) FROM celery_probe")).scalar_one()
    assert (attempts, workers, n_values) == (2000, 2000, 2000)
