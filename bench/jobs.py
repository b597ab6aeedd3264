"""Job throughput: 20,000 no-op jobs on SQLite (1 worker) and PostgreSQL (4 workers).

Prints jobs/s, double executions, and a ratio against a naive baseline measured in the
same run on the same PostgreSQL (one thread: SELECT ... LIMIT 1, then UPDATE, per job,
no SKIP LOCKED). Bar: >= 1,000 jobs/s on PostgreSQL with 4 workers, zero doubles.

    python bench/jobs.py [--jobs 20000]

Exits 1 if any job ran twice or never (correctness), not for a slow machine.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RINDLE_DISABLE_PLUGIN_AUTOLOAD", "1")

from sqlalchemy import Table, select, update

from rindle import Rindle
from rindle.domain.models import Job, utcnow
from rindle.jobs import JobContext, Worker
from rindle.testing.postgres import TempPostgres

PREFETCH = 20


def make_app(url: str, tmp: Path) -> tuple[Rindle, collections.Counter[str]]:
    app = Rindle(database_url=url, secret_key="bench", load_entrypoints=False,
                 storages={"default": {"backend": "local", "root": str(tmp / "m")}})
    app.migrate()
    runs: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def noop(_app: Rindle, job: JobContext) -> None:
        with lock:
            runs[str(job.id)] += 1

    app.jobs.register("bench.noop", noop, queue="process", max_attempts=1)
    return app, runs


def seed(app: Rindle, n: int) -> None:
    with app.db.engine.begin() as conn:
        for start in range(0, n, 5000):
            app.jobs.enqueue_many(conn, "bench.noop",
                                  [{"i": i} for i in range(start, min(n, start + 5000))])


def run_workers(app: Rindle, workers: int) -> float:
    ws = [Worker(app, {"process": 1}, cron=False, poll_interval=0.005, worker_id=f"b{i}",
                 prefetch=PREFETCH)
          for i in range(workers)]
    threads = [threading.Thread(target=w.run_until_empty) for w in ws]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def naive_baseline(app: Rindle, n: int) -> float:
    """One thread, SELECT one due row then UPDATE it, per job: what people write first."""
    table: Table = Job.__table__  # type: ignore[assignment]
    start = time.perf_counter()
    done = 0
    while done < n:
        with app.db.engine.begin() as conn:
            row = conn.execute(select(table.c.id).where(table.c.state == "available")
                               .order_by(table.c.id).limit(1)).first()
            if row is None:
                break
            conn.execute(update(table).where(table.c.id == row.id)
                         .values(state="executing", attempt=table.c.attempt + 1))
        with app.db.engine.begin() as conn:
            conn.execute(update(table).where(table.c.id == row.id)
                         .values(state="completed", finished_at=utcnow()))
        done += 1
    return time.perf_counter() - start


def report(label: str, n: int, seconds: float, runs: collections.Counter[str]
           ) -> tuple[float, bool]:
    """Print one line; returns (jobs/s, every job ran exactly once)."""
    doubles = sum(1 for c in runs.values() if c > 1)
    missing = n - len(runs)
    rate = n / seconds
    print(f"{label:<34} {rate:>9,.0f} jobs/s  {seconds:7.2f} s  doubles={doubles} "
          f"missing={missing}")
    return rate, doubles == 0 and missing == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    args = parser.parse_args()
    n = args.jobs
    print(f"bench/jobs.py: {n} no-op jobs ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        app, runs = make_app(f"sqlite:///{tmp / 'bench.db'}", tmp)
        seed(app, n)
        _, exact = report("SQLite, 1 worker", n, run_workers(app, 1), runs)
        app.close()
        with TempPostgres() as pg:
            app, runs = make_app(pg.create_database("bench"), tmp)
            seed(app, n)
            pg_rate, pg_exact = report("PostgreSQL, 4 workers", n, run_workers(app, 4), runs)
            exact &= pg_exact
            ok = pg_rate >= 1000 and pg_exact
            base_n = min(n, 5000)
            app2, _ = make_app(pg.create_database("naive"), tmp)
            seed(app2, base_n)
            base_rate = base_n / naive_baseline(app2, base_n)
            print(f"{'PostgreSQL naive baseline, 1 thread':<34} {base_rate:>9,.0f} jobs/s "
                  f"(on {base_n} jobs)")
            print(f"ratio rindle 4 workers / naive baseline: {pg_rate / base_rate:.2f}x")
            print(f"bar: >= 1,000 jobs/s on PostgreSQL with 4 workers, 0 doubles -> "
                  f"{'MET' if ok else 'NOT MET'}")
            app.close()
            app2.close()
    return 0 if exact else 1  # a double or lost run is a bug; a slow run is only reported


if __name__ == "__main__":
    sys.exit(main())
