"""What the rindle-celery tests run: a profile, job handlers, and their registration.

Imported by the test process and by the Celery workers (``celery_tasks.py``), so both
sides know the same kinds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from rindle import Profile, variants
from rindle.jobs import JobContext, JobQueue

#: Longest a blocked job waits for the test's go-ahead (a safety net, not a timing).
BLOCK_DEADLINE = 60.0


class Photo(Profile):
    """A small image profile with one variant."""

    name = "photo"
    allow_mime = ("image/jpeg", "image/png")
    max_bytes = 5 * 1024 * 1024
    variants = {"thumb": variants.Image(mode="fill", width=32, height=32, format="webp")}


def block(_app: Any, job: JobContext) -> None:
    """Say it started (file ``started-<attempt>``), wait until the test creates ``go``, then
    record the completed run (one line in ``done``)."""
    where = Path(job.args["dir"])
    (where / f"started-{job.attempt}").write_text(job.worker_id or "")
    deadline = time.monotonic() + BLOCK_DEADLINE
    while not (where / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never said go")
        time.sleep(0.02)
    with open(where / "done", "a") as out:
        out.write(f"{job.id} {job.attempt}\n")


def insert(app: Any, job: JobContext) -> None:
    """Insert one row into ``celery_probe`` (a double run would insert two)."""
    with app.db.engine.begin() as conn:
        conn.execute(text("INSERT INTO celery_probe (job_id, n) VALUES (:job, :n)"),
                     {"job": str(job.id), "n": job.args["n"]})


def register(jobs: JobQueue[Any]) -> None:
    """Register the test kinds on ``jobs``."""
    jobs.register("test.block", block, queue="process", max_attempts=3)
    jobs.register("test.insert", insert, queue="process", max_attempts=3)
