"""Provider sync against a slow, rate-limited Mux: ``sync-due`` + the worker vs a loop.

A loopback fake Mux (a threaded stdlib HTTP server in this file) answers
``GET /video/v1/assets/{id}`` after 20 ms, checks the HTTP Basic credentials, and counts the
requests arriving in each wall-clock second. N provider rows (default 2,000) are seeded
``processing``, last updated two minutes ago; Mux reports every asset ``ready``. Then, on
the same database (PostgreSQL by default) and the same fake:

* baseline: select every due row, then per row, sequentially, rindle's own
  ``provider.get_asset`` (same HTTP client, auth and pacing) and one guarded
  ``UPDATE ... WHERE state = 'processing'`` in its own transaction;
* rindle: ``app.streaming.sync_due()`` (what ``rindle streaming sync-due`` and the cron job
  run; at most ``provider_polling_batch_size`` = 1,000 rows per run, default) then
  ``Worker(...).run_until_empty()``, repeated until a run enqueues nothing; once with the
  default worker settings (``Worker(app)`` as ``rindle worker`` builds it: every queue,
  the provider queue at ``DEFAULT_CONCURRENCY["provider"]``) and once with only the
  provider queue at ``--threads``.

``[streaming.mux] rate_limit_per_second`` is set to ``--rate-limit`` (rindle has no default:
unset means no pacing); the fake's busiest second must never exceed it (exit 1 if it
does). Bar: rindle with the DEFAULT worker settings >= 10x the baseline's rows/s within
the rate limit (the ``--threads`` row is for comparison).

    python bench/mux_sync.py [--rows 2000] [--threads 32] [--rate-limit 500] [--sqlite]
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("RINDLE_DISABLE_PLUGIN_AUTOLOAD", "1")

TOKEN_ID, TOKEN_SECRET = "bench-token-id", "bench-token-secret-0123456789"
LATENCY = 0.020
BAR = 10.0


class FakeMux:
    """Loopback Mux: every known asset is ``ready``; per-second request counts."""

    def __init__(self, latency: float = LATENCY) -> None:
        self.latency = latency
        self.assets: set[str] = set()
        self.per_second: collections.Counter[int] = collections.Counter()
        self.lock = threading.Lock()
        expected = base64.b64encode(f"{TOKEN_ID}:{TOKEN_SECRET}".encode()).decode()
        self.expected_auth = f"Basic {expected}"
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeMux:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def reset_counts(self) -> None:
        with self.lock:
            self.per_second.clear()

    def busiest_second(self) -> int:
        with self.lock:
            return max(self.per_second.values(), default=0)

    def answer(self, method: str, path: str, auth: str | None) -> tuple[int, Any]:
        with self.lock:
            self.per_second[int(time.time())] += 1
        time.sleep(self.latency)
        if auth != self.expected_auth:
            return 401, {"error": {"type": "unauthorized", "messages": ["bad token"]}}
        parts = path.strip("/").split("/")
        if method == "GET" and parts[:3] == ["video", "v1", "assets"] and len(parts) == 4:
            if parts[3] not in self.assets:
                return 404, {"error": {"type": "not_found", "messages": ["not found"]}}
            return 200, {"data": {"id": parts[3], "status": "ready",
                                  "playback_ids": [{"id": f"pb-{parts[3]}", "policy": "signed"}],
                                  "duration": 30.5, "max_resolution_tier": "1080p"}}
        return 404, {"error": {"type": "not_found"}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                status, body = state.answer(self.command, self.path,
                                            self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


PROFILE_SRC = '''
from rindle import Delivery, Profile, variants

class Clip(Profile):
    name = "clip"
    allow_mime = ("video/mp4",)
    variants = {"web_720p": variants.Video(preset="web_720p")}
    delivery = Delivery(public=False, signed_url_ttl=600,
                        streaming={"provider": "mux", "playback_policy": "signed",
                                   "ingest_mode": "server_push", "source_variant": "web_720p"})
'''


def make_app(url: str, work: Path, mux: FakeMux, rate_limit: float):  # type: ignore[no-untyped-def]
    if str(work) not in sys.path:
        sys.path.insert(0, str(work))
    from bench_mux_profiles import Clip  # type: ignore[import-not-found]

    import rindle_mux.plugin
    from rindle import Rindle
    from rindle.plugins import make_plugin_manager

    pm = make_plugin_manager(load_entrypoints=False)
    pm.register(rindle_mux.plugin, name="mux")
    streaming = {"mux": {"token_id": TOKEN_ID, "token_secret": TOKEN_SECRET,
                         "base_url": mux.url, "rate_limit_per_second": rate_limit}}
    app = Rindle(database_url=url, secret_key="bench-secret-bench-secret", profiles=[Clip],
                 storages={"default": {"backend": "local", "root": str(work / "media")}},
                 tmp_dir=str(work / "tmp"), plugin_manager=pm, streaming=streaming,
                 load_entrypoints=False)
    app.migrate()
    return app


def seed(app: Any, mux: FakeMux, n: int) -> None:
    """``n`` clip assets, each with a Mux row ``processing`` for two minutes."""
    from sqlalchemy import insert

    from rindle.domain.models import Asset, ProviderAsset, utcnow
    from rindle.ids import uuid7

    now = utcnow()
    when = now - dt.timedelta(seconds=120)
    assets, rows = [], []
    for _ in range(n):
        aid, mux_id = uuid7(), uuid.uuid4().hex + uuid.uuid4().hex[:4]
        mux.assets.add(mux_id)
        assets.append({"id": aid, "state": "ready", "storage_key": f"clip/{aid}/o.mp4",
                       "profile": "clip", "kind": "video", "content_type": "video/mp4",
                       "metadata": {}, "inserted_at": now, "updated_at": now})
        rows.append({"id": uuid7(), "asset_id": aid, "profile": "clip", "provider_name": "mux",
                     "provider_asset_id": mux_id, "state": "processing", "playback_ids": [],
                     "playback_policy": "signed", "ingest_mode": "server_push",
                     "raw_provider_metadata": {}, "inserted_at": when, "updated_at": when})
    with app.db.engine.begin() as conn:
        conn.execute(insert(Asset.__table__), assets)
        conn.execute(insert(ProviderAsset.__table__), rows)


def reset(app: Any) -> None:
    """Every row ``processing`` again, two minutes old; the job table emptied."""
    from sqlalchemy import delete, update

    from rindle.domain.models import Job, ProviderAsset, utcnow

    table = ProviderAsset.__table__
    with app.db.engine.begin() as conn:
        conn.execute(update(table).values(  # type: ignore[arg-type]
            state="processing", playback_ids=[], raw_provider_metadata={},
            updated_at=utcnow() - dt.timedelta(seconds=120)))
        conn.execute(delete(Job.__table__))  # type: ignore[arg-type]


def ready_count(app: Any) -> int:
    from sqlalchemy import func, select

    from rindle.domain.models import ProviderAsset

    with app.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(
            ProviderAsset.state == "ready")).scalar_one())


def run_naive(app: Any) -> float:
    """Sequential: one query for the due rows, then GET + guarded UPDATE per row."""
    from sqlalchemy import select, update

    from rindle.domain.models import ProviderAsset, utcnow

    table = ProviderAsset.__table__
    provider = app.streaming.provider("mux")
    started = time.perf_counter()
    with app.db.engine.connect() as conn:
        rows = conn.execute(select(ProviderAsset.id, ProviderAsset.provider_asset_id).where(
            ProviderAsset.state == "processing")).all()
    for row_id, mux_id in rows:
        live = provider.get_asset(mux_id)
        with app.db.engine.begin() as conn:
            conn.execute(update(table).where(  # type: ignore[arg-type]
                table.c.id == row_id, table.c.state == "processing").values(
                state=live.state, playback_ids=list(live.playback_ids),
                raw_provider_metadata=dict(live.raw), updated_at=utcnow()))
    return time.perf_counter() - started


def run_rindle(app: Any, threads: int | None) -> tuple[float, int]:
    """``sync_due`` then the worker until idle, until ``sync_due`` finds nothing due.

    Without ``threads`` the worker is built as ``rindle worker`` builds it: every queue at
    its default concurrency (cron off); with it, only the provider queue at ``threads``."""
    from rindle.jobs import Worker

    started = time.perf_counter()
    runs = 0
    while app.streaming.sync_due().jobs_enqueued:
        runs += 1
        worker = (Worker(app, {"provider": threads}, cron=False) if threads
                  else Worker(app, cron=False))
        worker.run_until_empty()
    return time.perf_counter() - started, runs


def bench(n: int, threads: int, rate_limit: float, postgres: bool) -> int:
    """Seed, measure, print; returns the exit status."""
    import contextlib

    from rindle.jobs.worker import DEFAULT_CONCURRENCY
    from rindle.testing.postgres import TempPostgres

    with tempfile.TemporaryDirectory(prefix="rindle-bench-mux-") as tmp, FakeMux() as mux, \
            (TempPostgres() if postgres else contextlib.nullcontext()) as pg:
        work = Path(tmp)
        (work / "bench_mux_profiles.py").write_text(PROFILE_SRC)
        url = pg.create_database("muxbench") if pg else f"sqlite:///{work / 'bench.db'}"
        app = make_app(url, work, mux, rate_limit)
        seed(app, mux, n)
        results: dict[str, tuple[float, int, int]] = {}
        for name, run in (("naive", lambda: (run_naive(app), 0)),
                          ("rindle-default", lambda: run_rindle(app, None)),
                          (f"rindle-{threads}", lambda: run_rindle(app, threads))):
            reset(app)
            mux.reset_counts()
            seconds, cycles = run()
            done = ready_count(app)
            results[name] = (seconds, done, mux.busiest_second())
            print(f"  {name}: {seconds:.2f}s, {done} rows ready, busiest second "
                  f"{mux.busiest_second()} requests" + (f", {cycles} sync-due runs"
                                                        if cycles else ""), flush=True)
        app.close()
    default_threads = DEFAULT_CONCURRENCY["provider"]
    print(f"\n{n} Mux rows, fake Mux adds {LATENCY * 1000:.0f} ms per request, "
          f"rate_limit_per_second = {rate_limit:g}, {'PostgreSQL' if postgres else 'SQLite'}")
    print(f"{'contender':<40}{'seconds':>9}{'rows/s':>9}{'ready':>7}{'max req/s':>11}")
    labels = {"naive": "sequential get-asset loop (baseline)",
              "rindle-default": f"sync-due + worker, provider x{default_threads} (default)",
              f"rindle-{threads}": f"sync-due + worker, provider x{threads}"}
    for name, (seconds, done, peak) in results.items():
        print(f"{labels[name]:<40}{seconds:>9.2f}{n / seconds:>9.1f}{done:>7}{peak:>11}")
    failures = []
    naive = results["naive"][0]
    for name in ("rindle-default", f"rindle-{threads}"):
        print(f"{labels[name]} / baseline: {naive / results[name][0]:.1f}x")
    best = naive / results["rindle-default"][0]
    print(f"bar: default worker settings >= {BAR:.0f}x within the rate limit -> {best:.1f}x")
    if best < BAR:
        failures.append(f"rindle with the default worker settings is below {BAR:.0f}x")
    peak = max(r[2] for r in results.values())
    print(f"busiest second at the fake: {peak} requests (limit {rate_limit:g})")
    if peak > rate_limit:
        failures.append(f"RATE LIMIT EXCEEDED: {peak} requests in one second")
    if any(r[1] != n for r in results.values()):
        failures.append("not every row reached ready")
    print("result: " + ("bar met" if not failures else "BAR MISSED: " + "; ".join(failures)))
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=32,
                        help="provider queue concurrency of the comparison run")
    parser.add_argument("--rate-limit", type=float, default=500.0,
                        help="[streaming.mux] rate_limit_per_second")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    args = parser.parse_args()
    return bench(args.rows, args.threads, args.rate_limit, postgres=not args.sqlite)


if __name__ == "__main__":
    sys.exit(main())
