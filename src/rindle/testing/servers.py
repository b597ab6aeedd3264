"""Real servers on loopback for backend test suites, and a plain HTTP client for them.

Plugin authors start the emulator their backend talks to (moto, gcp-storage-emulator, a
recorded-shape API server) as a child process with :func:`serving`, and make the requests
a browser would make with :func:`http`.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from email.message import Message
from io import BufferedReader
from pathlib import Path

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
    proc = subprocess.Popen(list(argv), cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
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
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise RuntimeError(f"{name} exited at start-up: {err[-2000:]}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not answer within {timeout:.0f} s") from None
                time.sleep(0.1)
        if proc.stderr is not None:
            # a server that logs a line per request (moto, werkzeug) would fill the pipe
            # (64 KiB) and stall on its next write: keep reading it, and throw it away
            stderr, proc.stderr = proc.stderr, None  # the drain closes it at end of file
            threading.Thread(target=_drain, args=(stderr,), daemon=True,
                             name=f"{name} stderr").start()
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _drain(stream: BufferedReader) -> None:
    """Read ``stream`` until its end, discarding what it says; then close it."""
    with contextlib.suppress(OSError, ValueError), stream:
        while stream.read1(65536):
            pass


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
