"""Engine, transactions and migrations for one rindle database."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rindle.errors import ConfigError, DatabaseUnavailable, SchemaOutOfDate
from rindle.telemetry import redact_url

__all__ = ["Database"]

_ALEMBIC_LOCK = threading.Lock()  # Alembic's command layer keeps global state
_MIGRATION_LOCK_ID = 0x52494E444C45  # "RINDLE": PostgreSQL advisory lock for concurrent migrate


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    with contextlib.suppress(Exception):  # in-memory databases refuse WAL; harmless
        cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock up front so concurrent writers queue on busy_timeout instead of
    # failing with "database is locked" when a read transaction upgrades to a write.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One configured database: an engine, a session factory and the migration runner.

    The URL is never shown unredacted in errors or reprs.
    """

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(
                f"database_url {url!r} is not a database URL; "
                "expected e.g. sqlite:///rindle.db or postgresql+psycopg://user@host/db"
            ) from exc
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        self.dialect_name = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect_name == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if parsed.database:
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (NoSuchModuleError, ImportError) as exc:
            extra = " Install it with `pip install 'rindle[postgresql]'`." if (
                self.dialect_name == "postgresql"
            ) else ""
            raise ConfigError(
                f"no database driver for {self.redacted_url!r}: {exc}.{extra}"
            ) from exc
        if self.dialect_name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def redacted_url(self) -> str:
        """The URL with its password hidden."""
        return redact_url(self.url.render_as_string(hide_password=False))

    def __repr__(self) -> str:
        return f"<Database {self.redacted_url}>"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session inside one transaction: committed on success, rolled back on error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    def check_connection(self) -> None:
        """Raise :class:`DatabaseUnavailable` unless a connection can be opened and queried."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (OperationalError, SQLAlchemyError, OSError) as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()
            first = reason[0] if reason else type(exc).__name__
            raise DatabaseUnavailable(
                f"cannot connect to database {self.redacted_url}: {first}. "
                "Fix database_url in rindle.toml (or RINDLE_DATABASE_URL) and check the "
                "server is running."
            ) from None

    # --- migrations -------------------------------------------------------------------

    def _alembic_config(self, connection: Any = None) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", "rindle:migrations")
        cfg.attributes["connection"] = connection
        return cfg

    def head_revision(self) -> str | None:
        """The newest migration revision shipped with this rindle."""
        from alembic.script import ScriptDirectory

        heads = ScriptDirectory.from_config(self._alembic_config()).get_heads()
        return heads[0] if heads else None

    def current_revision(self) -> str | None:
        """The revision the database is at, or None for a database never migrated."""
        from alembic.runtime.migration import MigrationContext

        self.check_connection()
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (default: the newest shipped migration)."""
        self._run_alembic("upgrade", revision)

    def downgrade(self, revision: str) -> None:
        """Take the schema back to ``revision`` (``"base"`` drops every rindle table)."""
        self._run_alembic("downgrade", revision)

    def _run_alembic(self, verb: str, revision: str) -> None:
        from alembic import command

        self.check_connection()
        with _ALEMBIC_LOCK, self.engine.connect() as conn:
            if self.dialect_name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
                conn.commit()
            try:
                getattr(command, verb)(self._alembic_config(conn), revision)
                conn.commit()
            finally:
                if self.dialect_name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_ID})
                    conn.commit()

    def ensure_schema_current(self) -> None:
        """Raise :class:`SchemaOutOfDate` naming the fix unless the schema is at head."""
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            state = "has no rindle tables" if current is None else f"is at {current}"
            raise SchemaOutOfDate(
                f"the database {state}, rindle needs {head}. Run `rindle migrate` "
                "(or app.migrate())."
            )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
