"""The Celery app ``bench/jobs.py --celery`` runs its workers on (``celery -A
celery_bench_app worker``): rindle's tasks (the rindle app from ``RINDLE_CONFIG``, with the
``bench.noop`` kind) and a plain Celery no-op task, both on the same Redis broker.

Both no-ops record their run the same way (``HINCRBY`` on the ``runs`` hash of Redis
database 2), so the comparison measures what rindle adds: claim by id, settle.
"""

from __future__ import annotations

import os
from typing import Any

import redis

from rindle import Rindle
from rindle.jobs import JobContext
from rindle_celery import celery_app

_runs = redis.Redis.from_url(os.environ["BENCH_RUNS_URL"])


def record(key: str) -> None:
    """Count one run of ``key``."""
    _runs.hincrby("runs", key, 1)


def noop(_app: Any, job: JobContext) -> None:
    """rindle's no-op job."""
    record(str(job.id))


rindle_app = Rindle.from_config()
rindle_app.jobs.register("bench.noop", noop, queue="process", max_attempts=1)
app = celery_app(rindle_app)


@app.task(name="bench.plain_noop", ignore_result=True, shared=False)  # type: ignore[untyped-decorator]
def plain_noop(key: str) -> None:
    """The plain Celery no-op task."""
    record(key)
