"""uvicorn on a loopback port in a background thread, for tests over real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

__all__ = ["UvicornThread"]

#: How long start/stop may take before the test fails (a bound, not a wait).
DEADLINE = 15.0


class UvicornThread:
    """Binds 127.0.0.1:<free port> at once (``port``); :meth:`start` serves an ASGI app
    there until :meth:`stop`. ``lifespan`` is ``"on"``: the app must answer it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self, app: Any, **options: Any) -> None:
        """Serve ``app``; returns once uvicorn accepts connections (lifespan done)."""
        # h11 unless told: the [test] extra installs plain uvicorn, and a developer venv
        # with httptools (uvicorn picks it when present) must see the same server.
        options.setdefault("http", "h11")
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False,
                                **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + DEADLINE
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Ask uvicorn to exit (lifespan shutdown included) and wait for its thread."""
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=DEADLINE)
            assert not self.thread.is_alive(), "uvicorn did not stop"
        self.sock.close()
