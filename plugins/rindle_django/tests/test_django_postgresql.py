"""The whole rindle-django suite again on PostgreSQL, in a child pytest run.

pytest-django builds one test database per run from ``DATABASES``, which is read when
Django starts; this run's Django is on SQLite. The child gets the suite's throwaway
PostgreSQL server (the root conftest's ``pg_server``) through
``RINDLE_DJANGO_TEST_DATABASE`` and runs the other tests of this folder there
(:data:`NOT_IN_CHILD` are deselected by name, this one so it does not start itself again).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rindle.testing.postgres import TempPostgres

HERE = Path(__file__).resolve().parent
#: Deselected in the child: this test, and the two that start processes of their own on a
#: SQLite file (the command tests in process run on PostgreSQL).
NOT_IN_CHILD = ("test_suite_on_postgresql", "test_manage_py_child_process_exit_codes",
                "test_startup_builds_no_app_and_touches_no_database")
REPO = HERE.parents[2]


@pytest.mark.postgres
def test_suite_on_postgresql(pg_server: TempPostgres, tmp_path: Path) -> None:
    name = f"dj_{os.getpid()}"
    url = pg_server.create_database(name)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(RINDLE_DJANGO_TEST_DATABASE=url, RINDLE_DJANGO_TEST_MEDIA=str(tmp_path),
               RINDLE_DISABLE_PLUGIN_AUTOLOAD="1")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:sybil",
             "--rootdir", str(REPO), str(HERE), "-k", f"not ({' or '.join(NOT_IN_CHILD)})"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    finally:
        pg_server.drop_database(name)
    tail = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    # every test ran and passed: nothing failed, errored or skipped; only NOT_IN_CHILD left
    last = proc.stdout.strip().splitlines()[-1]
    summary = re.fullmatch(rf"(\d+) passed, {len(NOT_IN_CHILD)} deselected in [\d.]+s", last)
    assert summary is not None and int(summary.group(1)) >= 30, tail
