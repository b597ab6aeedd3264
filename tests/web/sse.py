"""A Server-Sent Events client for the live progress tests: one real HTTP connection,
read block by block (each read bounded by the socket timeout, never by a sleep)."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rindle import Rindle
from rindle.web import events_asgi, events_wsgi
from rindle.web.events import EventsCore
from tests.web.conftest import serve_asgi, serve_wsgi

#: Seconds any one read may block before the test fails (a bound, not a wait).
READ_TIMEOUT = 30.0


class Block(dict[str, Any]):
    """One SSE block: ``event``, ``id``, ``data`` (parsed JSON), ``retry`` and ``comment``."""


class SSE:
    """``GET path`` on ``base``; :meth:`next` reads one block (``None`` at the end)."""

    def __init__(self, base: str, path: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                               timeout=READ_TIMEOUT)
        self.conn.request("GET", path, headers=headers or {})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}

    def json(self) -> Any:
        """The body of a refusal, as JSON."""
        return json.loads(self.response.read())

    def next(self) -> Block | None:
        """The next block, or ``None`` when the server ended the stream."""
        block = Block()
        while True:
            line = self.response.readline()
            if not line:
                return block or None
            text = line.decode("utf-8").rstrip("\n")
            if not text:
                if block:
                    return block
                continue
            field, _, value = text.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "":
                block["comment"] = value
            elif field == "data":
                block["data"] = json.loads(value)
            else:
                block[field] = value

    def until(self, wanted: Callable[[Block], bool], limit: int = 10_000) -> list[Block]:
        """Blocks read up to and including the first one ``wanted`` accepts."""
        seen: list[Block] = []
        for _ in range(limit):
            block = self.next()
            assert block is not None, f"the stream ended before the wanted block: {seen}"
            seen.append(block)
            if wanted(block):
                return seen
        raise AssertionError(f"no wanted block within {limit}: {seen[-5:]}")

    def close(self) -> None:
        """Close the connection (the response holds the socket too)."""
        self.response.close()
        self.conn.close()


def events(blocks: list[Block]) -> list[dict[str, Any]]:
    """The data of the event blocks among ``blocks``."""
    return [b["data"] for b in blocks if "event" in b]


def wait_for(condition: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    """Poll ``condition`` until it holds; fail after ``limit`` seconds (a bound)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@contextmanager
def served_events(app: Rindle, server: str, **options: Any
                  ) -> Iterator[tuple[EventsCore, str]]:
    """The events app for ``app`` on a loopback server (``wsgi``: rindle's threading
    server; ``asgi``: uvicorn): yields its core (the counters) and base URL."""
    options.setdefault("poll_interval", 0.05)
    mounted: Any = (events_wsgi if server == "wsgi" else events_asgi)(app, **options)
    serve = serve_wsgi if server == "wsgi" else serve_asgi
    try:
        with serve(mounted) as base:
            yield mounted.core, base
    finally:
        mounted.core.close()


@contextmanager
def sqlite_app(template: Path, folder: Path, **options: Any) -> Iterator[Rindle]:
    """An app on a copy of the migrated SQLite ``template``, for tests whose answers do not
    depend on the dialect (token checks, refusals): they run once, not once per dialect.
    ``options``: more ``Rindle(...)`` arguments (``events={...}``)."""
    shutil.copyfile(template, folder / "events.db")
    app = Rindle(database_url=f"sqlite:///{folder / 'events.db'}", secret_key="test-secret",
                 storages={"default": {"backend": "local", "root": str(folder / "media")}},
                 tmp_dir=str(folder / "tmp"), load_entrypoints=False, **options)
    try:
        yield app
    finally:
        app.close()


def in_thread(target: Callable[[], object]) -> threading.Thread:
    """Run ``target`` in a started daemon thread."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread
