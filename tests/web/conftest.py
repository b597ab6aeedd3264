"""Real loopback servers for the web surfaces: rindle's threading WSGI server and uvicorn."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from rindle import Profile, Rindle
from rindle.cli.serve import make_threading_server
from rindle.testing.servers import free_port
from tests.apps import MakeApp

#: The profile these suites upload to: JPEG/PNG, at most :data:`MAX_BYTES`.
MAX_BYTES = 64 * 1024


class Photo(Profile):
    name = "photo"
    allow_mime = ("image/jpeg", "image/png")
    max_bytes = MAX_BYTES


class Other(Profile):
    name = "other"
    allow_mime = ("image/png",)
    max_bytes = MAX_BYTES


def header_actor(request: Any, profile: type[Profile]) -> str | None:
    """The test hosts' ``authorize``: the ``X-Actor`` header is the actor (none: refused);
    actor ``mallory`` may not use profile ``other``. Works on a WSGI environ and an ASGI
    scope."""
    if "headers" in request and "type" in request:  # an ASGI scope
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in request["headers"]}
        actor = headers.get("x-actor")
    else:
        actor = request.get("HTTP_X_ACTOR")
    if not actor or (actor == "mallory" and profile.name == "other"):
        return None
    return str(actor)


@pytest.fixture
def web_app(make_app: MakeApp) -> Rindle:
    """An app with the :class:`Photo` and :class:`Other` profiles on local storage."""
    return make_app(profiles=[Photo, Other])


@contextmanager
def serve_wsgi(application: Callable[..., Any]) -> Iterator[str]:
    """Serve ``application`` with rindle's threading server; yields its base URL."""
    server = make_threading_server(application, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)  # shutdown() waits for one poll
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def serve_asgi(application: Any) -> Iterator[str]:
    """Serve ``application`` with uvicorn in a thread; yields its base URL once it
    listens (bounded wait on ``server.started``)."""
    port = free_port()
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", access_log=False, http="h11")  # as CI's venv
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
