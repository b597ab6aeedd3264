"""The lifecycle contract on the local backend: signed PUTs and deliveries go over real HTTP
to a loopback server running the app's WSGI delivery app (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rindle import Rindle
from rindle.delivery import wsgi_app
from rindle.testing.lifecycle import LifecycleContract
from tests.lifecycle.conftest import _Quiet, _ThreadingServer


class LoopbackServer:
    """A loopback WSGI server that serves whichever app is attached to it."""

    def __init__(self) -> None:
        from wsgiref.simple_server import make_server

        self.wsgi: Any = None
        self.server = make_server("127.0.0.1", 0, self._dispatch,
                                  server_class=_ThreadingServer, handler_class=_Quiet)
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def _dispatch(self, environ: Any, start_response: Any) -> Any:
        return self.wsgi(environ, start_response)


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


class TestLocalLifecycle(LifecycleContract):
    backend_name = "local"
    created_status = 201  # the delivery app's create-only PUT
    load_entrypoints = False

    @pytest.fixture
    def database_url(self, db_url: str) -> str:
        return db_url

    @pytest.fixture
    def storage_settings(self, tmp_path: Path, loopback: LoopbackServer) -> dict[str, str]:
        return {"backend": "local", "root": str(tmp_path / "media"), "base_url": loopback.base}

    @pytest.fixture(autouse=True)
    def serve(self, lifecycle_app: Rindle, loopback: LoopbackServer) -> None:
        loopback.wsgi = wsgi_app(lifecycle_app)
