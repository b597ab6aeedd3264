"""A real loopback HTTP server running the delivery app, and a tiny HTTP client.

``serve`` is parametrized: every test using it runs against the WSGI app under
``rindle serve``'s server (``wsgi``) and against the native ASGI app under uvicorn
(``asgi``), over real HTTP, so both answer the same.
"""

from __future__ import annotations

import http.client
import io
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import pytest

from rindle import Rindle
from rindle.cli.serve import make_threading_server
from rindle.delivery import DeliveryApp, DeliveryASGIApp, asgi_app, wsgi_app
from rindle.domain.models import Asset
from rindle.ids import uuid7
from rindle.storage.local import LocalStorage
from tests.delivery_kit import make_url_app, module_db_url
from tests.uvicorn_server import UvicornThread

__all__ = ["make_url_app", "module_db_url"]  # fixtures of the URL tests (tests.delivery_kit)


@dataclass
class Response:
    """What the server answered."""

    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Served:
    """A running server: the rindle app, its default local storage and captured events."""

    app: Rindle
    wsgi: DeliveryApp | DeliveryASGIApp  # the app under test, whichever protocol
    port: int
    server: str = "wsgi"
    events: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    @property
    def storage(self) -> LocalStorage:
        storage = self.app.storage()
        assert isinstance(storage, LocalStorage)
        return storage

    def request(self, method: str, url: str, body: bytes | Iterable[bytes] | None = None,
                headers: dict[str, str] | None = None, *, chunked: bool = False) -> Response:
        """Send one request; ``url`` may be absolute or a path (sent verbatim)."""
        parts = urlsplit(url)
        target = url if not parts.scheme else (
            parts.path + ("?" + parts.query if parts.query else ""))
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, target, body=body, headers=headers or {},
                         encode_chunked=chunked)
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def events_named(self, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(m, md) for e, m, md in self.events if e == name]

    def register(self, key: str, content_type: str | None, *, state: str = "ready"
                 ) -> uuid.UUID:
        """Record an asset whose original is ``key`` (the delivery app serves only keys a
        promoted asset or its variant names, with the type recorded for it)."""
        asset_id = uuid7()
        with self.app.db.transaction() as s:
            s.add(Asset(id=asset_id, state=state, storage_key=key, profile="test",
                        content_type=content_type))
        return asset_id

    def publish(self, key: str, data: bytes, content_type: str | None) -> uuid.UUID:
        """Store ``data`` at ``key`` and record it as a ready asset's original."""
        self.storage.put(key, io.BytesIO(data))
        return self.register(key, content_type)


class _Slot:
    """Lets the server bind (and learn its port) before the app exists."""

    def __init__(self) -> None:
        self.target: WSGIApplication | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        assert self.target is not None
        return self.target(environ, start_response)


@pytest.fixture(params=["wsgi", "asgi"])
def serve(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Factory: start the delivery app on 127.0.0.1:<free port>; stopped after the test.

    Keyword arguments go to :func:`wsgi_app` (or :func:`asgi_app`); ``storages`` replaces
    the storage table, where ``{base_url}`` in a value is filled in with the server's URL.
    """
    kind: str = request.param
    stops: list[Callable[[], None]] = []

    def factory(storages: dict[str, dict[str, str]] | None = None, **options: Any) -> Served:
        slot = _Slot()
        if kind == "wsgi":
            server = make_threading_server(slot, "127.0.0.1", 0, quiet=True)
            port = server.server_port
        else:
            uvicorn = UvicornThread()
            port = uvicorn.port
        base_url = f"http://127.0.0.1:{port}"
        table = storages or {"default": {"backend": "local", "root": str(tmp_path / "media")}}
        table = {name: {k: v.format(base_url=base_url) for k, v in conf.items()}
                 for name, conf in table.items()}
        for conf in table.values():
            conf.setdefault("base_url", base_url)
        app = Rindle(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key="test-secret",
                     storages=table, load_entrypoints=False)
        app.migrate()
        if kind == "wsgi":
            wsgi = wsgi_app(app, **options)
            served = Served(app=app, wsgi=wsgi, port=port)
            slot.target = wsgi
            thread = threading.Thread(target=server.serve_forever,
                                      kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()

            def stop() -> None:
                server.shutdown()
                server.server_close()
                thread.join(timeout=10)
        else:
            served = Served(app=app, wsgi=asgi_app(app, **options), port=port, server="asgi")
            uvicorn.start(served.wsgi)
            stop = uvicorn.stop
        app.telemetry.attach(lambda e, m, md: served.events.append((e, m, md)))
        stops.append(stop)
        stops.append(app.close)
        return served

    yield factory
    for stop in stops:
        stop()


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    """The delivery app for one local storage named ``default`` at ``/media``."""
    return serve()


def files_under(root: Path) -> list[Path]:
    """Every regular file below ``root`` (temp files included)."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
