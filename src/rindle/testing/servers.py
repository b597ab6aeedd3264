"""Real servers on loopback for backend test suites, and a plain HTTP client for them.

Plugin authors start the emulator their backend talks to (moto, gcp-storage-emulator, a
recorded-shape API server) as a child process with :func:`serving`, and make the requests
a browser would make with :func:`http`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from typing import IO

__all__ = ["free_port", "http", "serving"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(argv: Sequence[str], *, ready_url: str, name: str, ready_data: bytes | None = None,
            cwd: Path | None = None, timeout: float = 120.0) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; enter once ``ready_url`` answers HTTP at all.

    ``ready_data`` makes the readiness probe a POST. A server that exits or stays silent
    for ``timeout`` seconds (generous by default: only a broken server, never a loaded
    machine, takes that long) raises ``RuntimeError`` naming ``name`` with the tail of its
    stderr. On exit the server is terminated, then killed if it lingers.
    """
    # stderr goes to an anonymous temporary file, never a pipe: a server that logs a line
    # per request (moto, werkzeug) would fill a pipe nobody reads and stall on its next
    # write, and a reader thread can die with the test process's other threads.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(ready_url, data=ready_data, timeout=1):
                        break
                except urllib.error.HTTPError:
                    break  # it answered: ready, whatever it thought of the probe
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited at start-up: {_tail(log)}") from None
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not answer within {timeout:.0f} s: "
                                           f"{_tail(log)}") from None
                    time.sleep(0.1)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tail(log: IO[bytes], size: int = 2000) -> str:
    """The last ``size`` bytes ``log`` holds, decoded leniently."""
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - size))
    return log.read().decode(errors="replace")


def http(method: str, url: str, data: bytes | None = None,
         headers: Mapping[str, str] | None = None, *, timeout: float = 60.0
         ) -> tuple[int, bytes, Message]:
    """One request as a browser sends it: ``(status, body, headers)``, errors included.

    The body is labelled ``application/octet-stream`` unless ``headers`` say otherwise
    (urllib would call it a form).
    """
    sent = {"Content-Type": "application/octet-stream", **(headers or {})}
    req = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(), exc.headers
