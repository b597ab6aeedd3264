"""The Celery app the tests' workers run (``celery -A celery_tasks worker``): the rindle app
from ``RINDLE_CONFIG`` with the test kinds registered.

With ``RINDLE_TEST_SHUTDOWN_PROBE`` (a file), ``RINDLE_TEST_PG_ADMIN`` (a libpq URL) and
``RINDLE_TEST_PG_ROLE`` set, the worker also writes, at ``worker_shutdown`` and after
rindle's own receivers ran (connected later), how many PostgreSQL sessions that role still
has: what this process left open when it shut down, measured while it is still alive (so
a session closed only by the process's exit is counted).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import celerykit
import psycopg
from celery import signals

from rindle import Rindle
from rindle_celery import celery_app

#: Longest the shutdown probe waits for the count to reach 0 (only sessions never closed,
#: never a loaded machine, take that long).
PROBE_DEADLINE = 10.0

rindle_app = Rindle.from_config()
celerykit.register(rindle_app.jobs)
app = celery_app(rindle_app)


def _probe_sessions(sender: object = None, **_: object) -> None:
    """Write the role's open session count to the probe file once it is 0, or as it is
    after :data:`PROBE_DEADLINE` (a server ends a closed session's backend a moment after
    the close, so the count is polled; sessions never closed stay counted)."""
    deadline = time.monotonic() + PROBE_DEADLINE
    with psycopg.connect(os.environ["RINDLE_TEST_PG_ADMIN"], autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s",
                               (os.environ["RINDLE_TEST_PG_ROLE"],)).fetchone()
            count = row[0] if row else -1
            if count == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    Path(os.environ["RINDLE_TEST_SHUTDOWN_PROBE"]).write_text(str(count))


if os.environ.get("RINDLE_TEST_SHUTDOWN_PROBE"):
    signals.worker_shutdown.connect(_probe_sessions, weak=False)
