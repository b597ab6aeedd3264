"""Real servers for tests of rindle on Celery: a ``redis-server`` and ``celery worker``
processes on loopback, started and stopped by context managers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CeleryWorker", "RedisServer", "celery_worker", "free_port", "redis_server",
           "start_celery_worker"]

#: Seconds a server may take to come up before the start counts as failed (generous: only
#: a broken server, never a loaded machine, takes that long).
START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pings(port: int) -> bool:
    """Whether a Redis server answers PING on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` child on 127.0.0.1 with no persistence (``--save ''``), its files
    in ``directory``; :meth:`stop` and :meth:`start` again reuse the same port."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).is_file():
            raise RuntimeError("redis-server not found: install the Debian package "
                               "redis-server (scripts/system-deps.sh)")
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT``: add ``/0``, ``/1`` for a database."""
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        """Start the server and return once it answers PING."""
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no",
             "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while not _pings(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited at start-up ({self.proc.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT:.0f} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Kill the server (it keeps nothing: every queued message is lost) and wait."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@contextmanager
def redis_server(directory: Path, port: int | None = None) -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped when the block ends."""
    server = RedisServer(directory, port).start()
    try:
        yield server
    finally:
        server.stop()


class CeleryWorker:
    """One ``celery worker`` child process; its log (stderr) goes to ``log``."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, name: str) -> None:
        self.proc = proc
        self.log = log
        self.name = name

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Return once the worker logged that it is ready to take tasks."""
        deadline = time.monotonic() + timeout
        while b" ready." not in self.log.read_bytes():
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker {self.name} exited at start-up "
                                   f"({self.proc.returncode}): {self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery worker {self.name} not ready within "
                                   f"{timeout:.0f} s: {self.tail()}")
            time.sleep(0.05)

    def tail(self, chars: int = 3000) -> str:
        """The end of the worker's log."""
        return self.log.read_bytes()[-chars:].decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker (no cleanup, no acknowledgement) and wait for it."""
        self.proc.kill()
        self.proc.wait()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (warm shutdown), then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def start_celery_worker(app: str, *, directory: Path, name: str,
                        env: Mapping[str, str] | None = None, queues: Sequence[str] = (),
                        pool: str = "solo", concurrency: int = 1,
                        pythonpath: Sequence[Path] = (), extra: Sequence[str] = ()
                        ) -> CeleryWorker:
    """Start ``celery -A app worker -P pool -c concurrency`` (default ``-P solo -c 1``) in
    ``directory`` (where its log goes) with ``env`` added and ``pythonpath`` first on
    ``sys.path``; returns at once (:meth:`CeleryWorker.wait_ready` waits for it). ``queues``
    restricts the Celery queues it consumes."""
    argv = [sys.executable, "-m", "celery", "-A", app, "worker", "-P", pool,
            "-c", str(concurrency),
            "-n", f"{name}@%h", "-l", "INFO", "--without-gossip", "--without-mingle",
            "--without-heartbeat", *(["-Q", ",".join(queues)] if queues else []), *extra]
    environ = {**os.environ, **(env or {})}
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (*map(str, pythonpath), environ.get("PYTHONPATH", "")) if p)
    log = directory / f"celery-{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=directory, env=environ, stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL)
    return CeleryWorker(proc, log, name)


@contextmanager
def celery_worker(app: str, *, directory: Path, name: str, env: Mapping[str, str] | None = None,
                  queues: Sequence[str] = (), pool: str = "solo",
                  pythonpath: Sequence[Path] = (), extra: Sequence[str] = ()
                  ) -> Iterator[CeleryWorker]:
    """A ready worker (:func:`start_celery_worker`), stopped when the block ends."""
    worker = start_celery_worker(app, directory=directory, name=name, env=env, queues=queues,
                                 pool=pool, pythonpath=pythonpath, extra=extra)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
