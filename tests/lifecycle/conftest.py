"""Profiles and sample files for the image lifecycle tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from PIL import Image

from rindle import Delivery, Profile, Rindle, variants
from tests.apps import MakeApp


class Photo(Profile):
    name = "photo"
    allow_mime = ("image/jpeg", "image/png", "image/webp")
    max_bytes = 5 * 1024 * 1024
    max_pixels = 30_000_000
    variants = {
        "thumb": variants.Image(mode="fill", width=64, height=64, format="webp"),
        "large": variants.Image(mode="fit", width=400, format="jpeg", quality=80),
    }
    delivery = Delivery(public=False, signed_url_ttl=600)


class JpegOnly(Profile):
    name = "jpeg_only"
    allow_mime = ("image/jpeg",)
    variants = {"small": variants.Image(mode="fit", width=32, height=32)}


class PublicBanner(Profile):
    name = "banner"
    variants = {}
    delivery = Delivery(public=True)


PROFILES = [Photo, JpegOnly, PublicBanner]


def jpeg_bytes(size: tuple[int, int] = (640, 480), color: str = "orange") -> bytes:
    buf = BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def png_bytes(size: tuple[int, int] = (300, 200)) -> bytes:
    buf = BytesIO()
    Image.new("RGB", size, "teal").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> Any:
    folder = tmp_path / "in"
    folder.mkdir()

    def make(name: str, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@pytest.fixture
def served_app(db_url: str, tmp_path: Path) -> Iterator[tuple[Rindle, str]]:
    """An app whose local storage URLs point at a real loopback server running its WSGI app."""
    from rindle.delivery import wsgi_app

    holder: dict[str, Any] = {}

    def dispatch(environ: Any, start_response: Any) -> Any:
        return holder["wsgi"](environ, start_response)

    server = make_server("127.0.0.1", 0, dispatch, server_class=_ThreadingServer,
                         handler_class=_Quiet)
    base = f"http://127.0.0.1:{server.server_port}"
    app = Rindle(database_url=db_url, secret_key="test-secret", profiles=PROFILES,
                 storages={"default": {"backend": "local", "root": str(tmp_path / "media"),
                                       "base_url": base}},
                 tmp_dir=str(tmp_path / "tmp"), load_entrypoints=False)
    holder["wsgi"] = wsgi_app(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, base
    finally:
        server.shutdown()
        server.server_close()
        app.close()


@pytest.fixture
def photo_app(make_app: MakeApp) -> Rindle:
    return make_app(profiles=PROFILES)
