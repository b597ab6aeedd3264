"""The FastAPI example: an upload page, a gallery rendered with rindle.html, and rindle's
delivery app mounted as native ASGI.

Every rindle call reads or writes the database or the storage and blocks, so the async
routes run them (and the template rendering, which calls ``picture``) in Starlette's
thread pool with ``run_in_threadpool``.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from rindle import Profile, Rindle, variants
from rindle.delivery import asgi_app
from rindle.errors import UploadRejected
from rindle.html import register_jinja

__all__ = ["Entry", "Photo", "Photos", "create_app"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


class Photo(Profile):
    """What the gallery accepts, and the two widths it shows."""

    name = "photo"
    allow_mime = ("image/jpeg", "image/png")
    max_bytes = 10 * 1024 * 1024
    variants = {"small": variants.Image(mode="fit", width=320, format="webp"),
                "large": variants.Image(mode="fit", width=960, format="webp")}


@dataclass(frozen=True)
class Entry:
    """One photo of the gallery: the host's own row, holding the rindle asset id."""

    asset_id: str
    title: str


class Photos:
    """The host app's table of photos (in a real app: a model with an asset id column)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS photos (id INTEGER PRIMARY KEY, "
                             "asset_id TEXT NOT NULL, title TEXT NOT NULL)")

    def add(self, asset_id: str, title: str) -> None:
        """Record a photo."""
        with self._lock, self._db:
            self._db.execute("INSERT INTO photos (asset_id, title) VALUES (?, ?)",
                             (asset_id, title))

    def all(self) -> list[Entry]:
        """Every photo, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT asset_id, title FROM photos ORDER BY id DESC")
            return [Entry(asset_id, title) for asset_id, title in rows]

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


def create_app(rindle: Rindle, photos: Photos, *, mount: str = "/rindle") -> FastAPI:
    """The FastAPI app: ``GET /`` (form and gallery), ``POST /upload`` (proxied upload) and
    rindle's delivery app under ``mount`` (the local storage's ``base_url`` must end with
    it, e.g. ``http://127.0.0.1:8000/rindle``)."""
    api = FastAPI()
    templates = Jinja2Templates(directory=TEMPLATES)
    register_jinja(templates.env, rindle)  # picture/video/audio/media_url in templates
    page = templates.get_template("index.html")

    def render(error: str | None = None) -> str:
        return page.render(photos=photos.all(), upload_url="/upload", error=error)

    @api.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(await run_in_threadpool(render))

    @api.post("/upload", response_model=None)
    async def upload(title: Annotated[str, Form(max_length=200)],
                     file: Annotated[UploadFile, File()]) -> HTMLResponse | RedirectResponse:
        try:
            asset = await run_in_threadpool(rindle.upload, "photo", file.file,
                                            filename=file.filename or "upload")
        except UploadRejected as exc:
            return HTMLResponse(await run_in_threadpool(render, exc.message), status_code=422)
        await run_in_threadpool(photos.add, str(asset.id), title)
        return RedirectResponse("/", status_code=303)

    api.mount(mount, asgi_app(rindle))
    return api
