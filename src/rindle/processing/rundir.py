"""Private run directories for processing, marked as in use while they exist.

Each run gets ``<tmp_dir>/runs/<uuid>/`` with a ``.rindle-run`` marker holding the owner's
pid and host. The orphan sweep never removes a directory whose marker names a live
process on this host.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rindle.ids import uuid7

__all__ = ["MARKER", "RUNS_DIR", "marker_is_live", "run_directory"]

RUNS_DIR = "runs"
MARKER = ".rindle-run"


@contextmanager
def run_directory(tmp_root: Path, purpose: str) -> Iterator[Path]:
    """Yield a fresh directory under ``tmp_root/runs``; it is removed afterwards, always."""
    path = tmp_root / RUNS_DIR / f"{purpose}-{uuid7().hex}"
    path.mkdir(parents=True)
    (path / MARKER).write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}),
        encoding="utf-8",
    )
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def marker_is_live(directory: Path) -> bool:
    """Whether ``directory`` belongs to a process that is still running on this host."""
    try:
        info = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if info.get("host") != socket.gethostname():
        return True  # another host's run: never ours to judge
    pid = info.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
