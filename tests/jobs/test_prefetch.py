"""The worker's adaptive prefetch: a deep queue of short jobs grows the claim (up to
ADAPTIVE_PREFETCH_MAX); a short claim or a slow batch drops it back to ``prefetch``."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table, func, select

from rindle import Rindle
from rindle.domain.models import Job
from rindle.jobs import JobContext, Worker
from rindle.jobs import worker as worker_module
from rindle.jobs.worker import ADAPTIVE_PREFETCH_MAX, ADAPTIVE_WINDOW, next_prefetch

_T: Table = Job.__table__  # type: ignore[assignment]


def test_next_prefetch_doubles_only_after_a_full_fast_batch() -> None:
    assert ADAPTIVE_PREFETCH_MAX == 32 and ADAPTIVE_WINDOW == 0.25
    assert next_prefetch(1, 1, 1, 0.0) == 2
    assert next_prefetch(1, 2, 2, ADAPTIVE_WINDOW) == 4  # at the window: still fast
    assert next_prefetch(1, 2, 2, ADAPTIVE_WINDOW + 1e-9) == 1  # one past it: slow
    assert next_prefetch(1, 4, 3, 0.0) == 1  # the queue ran short
    assert next_prefetch(1, 16, 16, 0.0) == 32
    assert next_prefetch(1, 32, 32, 0.0) == 32  # the cap
    assert next_prefetch(5, 1, 1, 0.0) == 5  # never below the configured prefetch
    assert next_prefetch(40, 40, 40, 0.0) == 40  # a prefetch above the cap stays


def drain_recording_batches(app: Rindle, jobs: int) -> list[int]:
    """Drain ``jobs`` no-op jobs with one default worker thread; for each job, how many
    jobs its worker held (executing) while it ran: the size of its claim (successes are
    acknowledged together once the batch ran)."""
    held: list[int] = []

    def count(ctx: Any, job: JobContext) -> None:
        with app.db.engine.connect() as conn:
            held.append(conn.execute(select(func.count()).where(
                _T.c.state == "executing", _T.c.locked_by == job.worker_id)).scalar_one())

    app.jobs.register("t.count", count, queue="process")
    with app.db.engine.begin() as conn:
        app.jobs.enqueue_many(conn, "t.count", [{} for _ in range(jobs)])
    assert Worker(app, {"process": 1}, cron=False).run_until_empty(timeout=120) == jobs
    return held


def test_a_deep_queue_of_short_jobs_grows_the_claim(
        app: Rindle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "ADAPTIVE_WINDOW", float("inf"))  # every batch is fast
    held = drain_recording_batches(app, 100)
    # claims of 1, 2, 4, 8, 16, 32, then 32 and the 5 left
    claims = [1, 2, 4, 8, 16, 32, 32, 5]
    assert held == [n for n in claims for _ in range(n)]


def test_slow_batches_keep_the_configured_prefetch(
        app: Rindle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "ADAPTIVE_WINDOW", -1.0)  # every batch is slow
    assert drain_recording_batches(app, 20) == [1] * 20
