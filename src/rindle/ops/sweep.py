"""``sweep-orphaned-temp-files``: remove processing leftovers under the tmp root.

Looks at run directories (``<tmp>/runs/*``) and spooled uploads (``<tmp>/uploads/*``)
older than the threshold. A directory whose marker names a live process is in use and is
never removed. Dry run by default.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rindle import defaults
from rindle.ops.report import Report, log_failure
from rindle.processing.rundir import RUNS_DIR, marker_is_live

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.jobs import JobContext

__all__ = ["DEFAULT_THRESHOLD", "SweepReport", "sweep_orphaned_temp_files"]

DEFAULT_THRESHOLD = defaults.SWEEP_THRESHOLD

log = logging.getLogger(__name__)


@dataclass
class SweepReport(Report):
    """Counters of one sweep."""

    dry_run: bool = True
    root: str = ""
    scanned: int = 0
    removed: int = 0
    kept_in_use: int = 0
    kept_young: int = 0
    bytes_freed: int = 0
    errors: int = 0


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def sweep_orphaned_temp_files(app: AppContext, *, dry_run: bool = True,
                              threshold_sec: int = DEFAULT_THRESHOLD) -> SweepReport:
    """Remove temp entries older than ``threshold_sec`` that no live process owns."""
    if threshold_sec < 0:
        from rindle.errors import UsageError

        raise UsageError("threshold_sec must be >= 0")
    root = app.settings.resolved_tmp_dir
    report = SweepReport(dry_run=dry_run, root=str(root))
    cutoff = time.time() - threshold_sec
    for folder in (root / RUNS_DIR, root / "uploads"):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            report.scanned += 1
            try:
                if entry.is_dir() and marker_is_live(entry):
                    report.kept_in_use += 1
                    continue
                if entry.lstat().st_mtime > cutoff:
                    report.kept_young += 1
                    continue
                size = _size(entry)
                if not dry_run:
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
                report.removed += 1
                report.bytes_freed += size
            except OSError as exc:
                report.errors += 1
                log_failure(log, "sweep-orphaned-temp-files", exc, "temp entry",
                            f"{folder.name}/{entry.name}")
    app.telemetry.emit("rindle.media.sweep_orphans.stop",
                       {"scanned": report.scanned, "removed": report.removed,
                        "bytes_freed": report.bytes_freed, "errors": report.errors},
                       {"dry_run": dry_run})
    return report


def handle(app: AppContext, job: JobContext) -> None:
    """Job handler for ``rindle.maintenance.sweep_orphaned_temp_files``."""
    sweep_orphaned_temp_files(app, dry_run=bool(job.args.get("dry_run", True)),
                              threshold_sec=int(job.args.get("threshold_sec",
                                                             DEFAULT_THRESHOLD)))
