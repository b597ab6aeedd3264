"""An app for the ``/static/`` route's tests, which read no database."""

from __future__ import annotations

from pathlib import Path

from rindle import Rindle
from tests.web.conftest import Other, Photo


def static_app(folder: Path) -> Rindle:
    """An app with SQLite in ``folder``, never migrated (a database read would fail)."""
    return Rindle(database_url=f"sqlite:///{folder / 'none.db'}", secret_key="test-secret",
                  storages={"default": {"backend": "local", "root": str(folder / "media")}},
                  profiles=[Photo, Other], load_entrypoints=False)
