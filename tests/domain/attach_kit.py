"""Profiles, uploads and a statement counter shared by the read-back, collection and
cancel tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine, event

from rindle import Profile, Rindle, variants
from rindle.domain.models import Asset
from rindle.ids import uuid7


class Pic(Profile):
    """Variant-less: promoted straight to ``available`` (fast, for ordering tests)."""

    name = "pic"
    allow_mime = ("image/jpeg",)


class Gallery(Profile):
    """Its assets go to collection slots by default."""

    name = "gallery"
    allow_mime = ("image/jpeg",)
    collection = True


class Thumbed(Profile):
    """Two tiny image variants."""

    name = "thumbed"
    allow_mime = ("image/jpeg",)
    variants = {"small": variants.Image(mode="fit", width=8, height=8, format="jpeg"),
                "tiny": variants.Image(mode="fit", width=4, height=4, format="jpeg")}


PROFILES = [Pic, Gallery, Thumbed]


def jpeg(color: str = "orange") -> bytes:
    """A 16x16 JPEG."""
    buf = BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, "JPEG")
    return buf.getvalue()


def uploaded(app: Rindle, profile: str = "pic", *, run: bool = True) -> Asset:
    """A fresh asset of ``profile``; with ``run``, every job it queued has run."""
    asset = app.upload(profile, jpeg(), filename="p.jpg")
    if run:
        app.jobs.drain()
    return app.get_asset(asset.id)


def stored(app: Rindle, profile: str = "pic") -> Asset:
    """An ``available`` asset row of ``profile`` written directly (no bytes, no jobs): for
    tests about who holds an asset, not about its media."""
    aid = uuid7()
    with app.db.transaction() as s:
        s.add(Asset(id=aid, profile=profile, state="available", storage_key=f"t/{aid}.jpg",
                    content_type="image/jpeg", filename="p.jpg", byte_size=1))
    return app.get_asset(aid)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database shared by one module's tests (once per dialect): creating a
    PostgreSQL database per test costs more than the tests. Tests sharing it keep apart by
    each using its own owner (:func:`owner`)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("shared-db") / "rindle.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue("pg_server")
    name = f"shared_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url: str = server.create_database(name, template="rindle_template")
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def shared_app(module_db_url: str, tmp_path: Path) -> Iterator[Rindle]:
    """A :class:`Rindle` with :data:`PROFILES` on the module's shared database."""
    app = Rindle(database_url=module_db_url, secret_key="test-secret", profiles=PROFILES,
                 storages={"default": {"backend": "local", "root": str(tmp_path / "media")}},
                 tmp_dir=str(tmp_path / "tmp"), load_entrypoints=False)
    app.db.check_schema_once()  # the first connection's schema check is never counted
    yield app
    app.close()


@pytest.fixture
def owner() -> tuple[str, str]:
    """An owner no other test uses."""
    return ("user", uuid.uuid4().hex[:12])


@contextlib.contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Collects the SQL of every statement ``engine`` sends meanwhile, except the
    transaction control SQLite's ``BEGIN IMMEDIATE`` hook issues."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if not sql.lstrip().upper().startswith("BEGIN"):
            seen.append(sql)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
