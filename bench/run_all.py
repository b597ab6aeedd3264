"""Run every benchmark in bench/ one after another (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Modules of bench/ that are not benchmarks: this runner, and the Celery app that
#: ``jobs.py --celery`` hands to its ``celery worker`` processes (it needs their env).
NOT_BENCHMARKS = frozenset({"run_all.py", "celery_bench_app.py"})


def main() -> int:
    """Run each ``bench/*.py`` (except this file) and report which failed."""
    failed = []
    for script in sorted(HERE.glob("*.py")):
        if script.name in NOT_BENCHMARKS or script.name.startswith("_"):
            continue
        print(f"\n### {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
