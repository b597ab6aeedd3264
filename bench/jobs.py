"""Job throughput: 20,000 no-op jobs on SQLite (1 worker) and PostgreSQL (4 workers).

Prints jobs/s, double executions, and a ratio against a naive baseline measured in the
same run on the same PostgreSQL (one thread: SELECT ... LIMIT 1, then UPDATE, per job,
no SKIP LOCKED). Bar: >= 1,000 jobs/s on PostgreSQL with 4 workers, zero doubles. The
PostgreSQL run is made twice: with the bench's tuned worker options (prefetch 20, 5 ms
polls) and with the default ``[jobs]`` settings (bar: >= 2,000 jobs/s).

With rindle-celery installed it then compares, on one redis-server and 4 ``celery worker
-P solo`` processes, rindle's Celery executor (the job table as outbox, each task claiming
its row by id) with plain Celery no-op tasks (``--celery-jobs``, default 5,000 each); both
no-ops record their run in Redis. Bar: rindle-on-Celery >= 0.5x plain Celery, 0 doubles.

    python bench/jobs.py [--jobs 20000] [--celery-jobs 5000 | --no-celery]

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
from typing import Any

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


def run_workers(app: Rindle, workers: int, *, tuned: bool = True) -> float:
    options: dict[str, Any] = {"poll_interval": 0.005, "prefetch": PREFETCH} if tuned else {}
    ws = [Worker(app, {"process": 1}, cron=False, worker_id=f"b{i}", **options)
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


def celery_compare(pg: TempPostgres, tmp: Path, n: int) -> bool:
    """rindle's Celery executor vs plain Celery no-ops, 4 solo workers on one redis-server;
    prints both rates and the ratio; returns whether every job ran exactly once."""
    try:
        import redis

        import rindle_celery.plugin
        from rindle.plugins import make_plugin_manager
        from rindle_celery.testing import redis_server, start_celery_worker
    except ImportError:
        print("rindle-celery is not installed: Celery comparison skipped")
        return True
    where = tmp / "celery"
    where.mkdir()
    with redis_server(where) as server:
        url = pg.create_database("celery_bench")
        config = where / "rindle.toml"
        config.write_text(
            f'database_url = "{url}"\nsecret_key = "bench"\n\n[storages.default]\n'
            f'backend = "local"\nroot = "{where / "m"}"\n\n[jobs]\nexecutor = "celery"\n\n'
            f'[jobs.executor_options]\nbroker_url = "{server.url}/0"\nqueue_prefix = "bench."\n')
        pm = make_plugin_manager(load_entrypoints=False)
        pm.register(rindle_celery.plugin, name="celery")
        app = Rindle.from_config(config, plugin_manager=pm)
        app.migrate()
        app.jobs.register("bench.noop", lambda _app, _job: None, queue="process",
                          max_attempts=1)
        env = {"RINDLE_CONFIG": str(config), "RINDLE_DISABLE_PLUGIN_AUTOLOAD": "0",
               "RINDLE_LOAD_PLUGINS": "celery", "BENCH_RUNS_URL": f"{server.url}/2"}
        workers = [start_celery_worker("celery_bench_app", directory=where, name=f"c{i}",
                                       env=env, queues=["bench.process", "bench.plain"],
                                       pythonpath=[Path(__file__).resolve().parent])
                   for i in range(4)]
        try:
            for w in workers:
                w.wait_ready()
            runs = redis.Redis.from_url(f"{server.url}/2")
            celery = app.executor.celery  # type: ignore[union-attr]

            def finish(label: str, start: float) -> tuple[float, bool]:
                while runs.hlen("runs") < n:
                    time.sleep(0.01)
                seconds = time.perf_counter() - start
                counts = collections.Counter({k.decode(): int(v)
                                              for k, v in runs.hgetall("runs").items()})
                runs.delete("runs")
                return report(label, n, seconds, counts)

            start = time.perf_counter()
            with celery.producer_or_acquire() as producer:
                for i in range(n):
                    celery.send_task("bench.plain_noop", (f"p{i}",), queue="bench.plain",
                                     producer=producer)
            plain_rate, plain_exact = finish("plain Celery no-op, 4 workers", start)
            start = time.perf_counter()
            with app.db.transaction() as session:  # published to Celery once it commits
                app.jobs.enqueue_many(session, "bench.noop", [{"i": i} for i in range(n)])
            rindle_rate, rindle_exact = finish("rindle on Celery, 4 workers", start)
            while app.jobs.counts().get("process", {}).get("completed", 0) < n:
                time.sleep(0.02)  # each job settles right after its run was recorded
        finally:
            for w in workers:
                w.kill()
            app.close()
    ratio = rindle_rate / plain_rate
    print(f"ratio rindle on Celery / plain Celery: {ratio:.2f}x")
    print(f"bar: rindle on Celery >= 0.5x plain Celery, 0 doubles -> "
          f"{'MET' if ratio >= 0.5 and rindle_exact and plain_exact else 'NOT MET'}")
    return rindle_exact and plain_exact


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--celery-jobs", type=int, default=5_000)
    parser.add_argument("--no-celery", dest="celery_jobs", action="store_const", const=0)
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
            app_d, runs_d = make_app(pg.create_database("defaults"), tmp)
            seed(app_d, n)
            d_rate, d_exact = report("PostgreSQL, 4 workers, defaults", n,
                                     run_workers(app_d, 4, tuned=False), runs_d)
            exact &= d_exact
            print(f"bar: >= 2,000 jobs/s on PostgreSQL with 4 workers, default settings -> "
                  f"{'MET' if d_rate >= 2000 and d_exact else 'NOT MET'}")
            app_d.close()
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
            if args.celery_jobs:
                exact &= celery_compare(pg, tmp, args.celery_jobs)
    return 0 if exact else 1  # a double or lost run is a bug; a slow run is only reported


if __name__ == "__main__":
    sys.exit(main())
