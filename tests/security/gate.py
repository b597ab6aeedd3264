"""A rindle app whose local storage is served over real loopback HTTP, for the attack tests
of the trust gate and the delivery origin (imported by the test modules that use it)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image

from rindle import Delivery, Profile, Rindle, variants
from rindle.cli.serve import make_threading_server
from rindle.delivery import wsgi_app
from rindle.storage.local import LocalStorage


class Photo(Profile):
    name = "photo"
    allow_mime = ("image/jpeg", "image/png")
    max_bytes = 2 * 1024 * 1024
    max_pixels = 30_000_000
    variants = {"thumb": variants.Image(mode="fill", width=32, height=32, format="webp")}
    delivery = Delivery(public=False, signed_url_ttl=600)


class JpegOnly(Profile):
    name = "jpeg_only"
    allow_mime = ("image/jpeg",)
    variants = {"small": variants.Image(mode="fit", width=16, height=16)}


class AnyImage(Profile):
    name = "any_image"
    allow_mime = ("image/*",)
    variants = {}


class Vector(Profile):
    """A profile that opts in to SVG explicitly: it is accepted, never served inline."""

    name = "vector"
    allow_mime = ("image/svg+xml",)
    variants = {}


class Unbounded(Profile):
    name = "unbounded"
    allow_mime = ("image/jpeg",)
    max_bytes = None
    variants = {}


PROFILES = [Photo, JpegOnly, AnyImage, Vector, Unbounded]


def jpeg(size: tuple[int, int] = (200, 200), color: str = "orange") -> bytes:
    buf = BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def png(size: tuple[int, int]) -> bytes:
    """A PNG of ``size``; a uniform image compresses to a few KB even at 13000x13000."""
    buf = BytesIO()
    Image.new("1", size, 0).save(buf, "PNG", optimize=True)
    return buf.getvalue()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Gate:
    """The app, the server's base URL, and a raw HTTP client that sends what it is told."""

    app: Rindle
    base: str
    port: int

    @property
    def storage(self) -> LocalStorage:
        storage = self.app.storage()
        assert isinstance(storage, LocalStorage)
        return storage

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        parts = urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "") if parts.scheme else url
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                          resp.read())
        finally:
            conn.close()

    def put(self, url: str, data: bytes, headers: dict[str, str] | None = None) -> int:
        return self.request("PUT", url, data, headers).status

    def get(self, url: str) -> Answer:
        return self.request("GET", url)


def gate_app(db_url: str, tmp_path: Path, base: str) -> Rindle:
    """The attack tests' app: :data:`PROFILES`, a local storage served at ``base``."""
    return Rindle(database_url=db_url, secret_key="gate-secret", profiles=PROFILES,
                  storages={"default": {"backend": "local", "root": str(tmp_path / "media"),
                                        "base_url": base}},
                  tmp_dir=str(tmp_path / "tmp"), load_entrypoints=False)


@pytest.fixture
def gate(db_url: str, tmp_path: Path) -> Iterator[Gate]:
    """A migrated app (SQLite and PostgreSQL) behind ``rindle serve``'s threaded server."""
    holder: dict[str, Any] = {}

    def dispatch(environ: Any, start_response: Any) -> Any:
        return holder["wsgi"](environ, start_response)

    server = make_threading_server(dispatch, "127.0.0.1", 0, quiet=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app = gate_app(db_url, tmp_path, base)
    holder["wsgi"] = wsgi_app(app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield Gate(app, base, server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        app.close()
