"""Fixtures for the core and plugin suites: every database test runs on SQLite and on a
real PostgreSQL 15."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("RINDLE_DISABLE_PLUGIN_AUTOLOAD", "1")

from tests.apps import MakeApp

from rindle import Rindle
from rindle.database import Database
from rindle.testing.postgres import TempPostgres, find_pg_bin

DIALECTS = ["sqlite", "postgresql"]
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TempPostgres]:
    """A PostgreSQL server for the whole run, with a migrated template database."""
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb/pg_ctl) not found: install postgresql-15")
    server = TempPostgres().start()
    try:
        url = server.create_database("rindle_template")
        db = Database(url)
        db.migrate()
        db.dispose()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file copied for each test (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()
    return path


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, migrated database; the test runs once per dialect."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "rindle.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    server: TempPostgres = request.getfixturevalue("pg_server")
    name = f"t_{os.getpid()}_{next(_counter)}"
    url = server.create_database(name, template="rindle_template")
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def dialect(db_url: str) -> str:
    """``sqlite`` or ``postgresql`` for the current parametrisation."""
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def make_app(db_url: str, tmp_path: Path) -> Iterator[MakeApp]:
    """Factory for a :class:`Rindle` on the test database and a temp local storage."""
    apps: list[Rindle] = []

    def factory(**kwargs: Any) -> Rindle:
        opts: dict[str, Any] = {
            "database_url": db_url,
            "secret_key": "test-secret",
            "storages": {"default": {"backend": "local", "root": str(tmp_path / "media")}},
            "tmp_dir": str(tmp_path / "tmp"),
            "load_entrypoints": False,
        }
        opts.update(kwargs)
        app = Rindle(**opts)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app: MakeApp) -> Rindle:
    """A :class:`Rindle` on a fresh database (once per dialect)."""
    return make_app()


# --- docs are tests -------------------------------------------------------------------------
# Every code block of README.md, guides/*.md and plugins/*/README.md runs, in order, as one
# test per block with a shared namespace per document, in a fresh temporary working directory.
# How each language runs, and what a document's hidden setup blocks can use, is described in
# tests/docs_harness.py. A block that cannot run here is marked visibly: a sentence above it
# says why, and ``<!-- skip: next "the reason" -->`` skips it.

from sybil import Sybil  # noqa: E402
from tests import docs_harness  # noqa: E402

#: The documents whose code blocks run in the suite (relative to this directory).
DOC_FILES = docs_harness.doc_files()


@pytest.fixture(scope="module")
def doc_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh working directory for one document's blocks (removed nothing outside it)."""
    here = Path.cwd()
    path = tmp_path_factory.mktemp("doc")
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(here)


class _Docs(Sybil):
    """Parses exactly :data:`DOC_FILES`, wherever pytest meets them."""

    def should_parse(self, path: Path) -> bool:
        try:
            relative = path.resolve().relative_to(self.path).as_posix()
        except ValueError:
            return False
        return relative in DOC_FILES


pytest_collect_file = _Docs(
    parsers=docs_harness.parsers(),
    path=str(Path(__file__).resolve().parent),
    setup=docs_harness.setup,
    teardown=docs_harness.teardown,
    fixtures=["doc_dir"],
).pytest()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    """A skipped doc block is reported at its own line (``-rs``), not inside unittest."""
    report = yield
    example = getattr(item, "example", None)
    if report.skipped and example is not None and isinstance(report.longrepr, tuple):
        report.longrepr = (str(item.path), example.line - 1, report.longrepr[2])
    return report
