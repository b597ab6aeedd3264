"""rindle on Django's database connection: every rindle transaction is a Django atomic block.

:class:`DjangoDatabase` is a :class:`rindle.database.Database` whose SQLAlchemy engine never
opens a connection of its own: its ``creator`` hands out :class:`DjangoConnection`, a DBAPI
connection that forwards to Django's connection of the current thread
(``django.db.connections[alias]``). A transaction SQLAlchemy begins on it enters
``transaction.atomic(using=alias)``; its commit leaves that block normally and its rollback
leaves it with an exception. So

* outside any ``atomic()`` a rindle call commits on its own, as in plain rindle;
* inside the caller's ``atomic()`` it is a savepoint: rindle's rows, jobs and state changes
  commit with the caller's transaction, or vanish with its rollback;
* effects rindle runs after a commit (:meth:`DjangoDatabase.when_committed`, and those a
  session hangs on its commit: jobs handed to an executor such as ``inline``, telemetry)
  wait for Django's commit (``transaction.on_commit``) and are dropped with a rollback.
  Undo effects rindle asks for on a host's rollback (:meth:`DjangoDatabase.if_rolled_back`:
  deleting the object a proxied upload stored) are kept until Django's outermost block
  ends; a commit drops them (through ``on_commit``), and those still held after a
  rollback run when the request finishes, or when :func:`run_rollback_effects` is called
  (outside requests: commands, workers, shells). Django has no rollback callback, and a
  rindle call cannot tell a rolled-back block from one whose commit hooks are still
  running, so neither runs them.

The pool (``SingletonThreadPool``) keeps one wrapper per thread and never closes Django's
connection; SQLAlchemy's reset-on-return is off (the wrapper's rollback only ever rolls
back the atomic block it entered itself).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.pool import SingletonThreadPool

from rindle.database import Database

__all__ = ["DjangoConnection", "DjangoDatabase", "run_rollback_effects"]

log = logging.getLogger(__name__)


class _RindleRollback(Exception):
    """Handed to an atomic block's ``__exit__`` to make Django roll it back."""


def _plain(value: Any) -> Any:
    """A value as SQLite stores it: Django's sqlite3 converters turn DATETIME, DATE and TIME
    columns into objects, SQLAlchemy's SQLite types expect the stored text."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


class _SQLiteCursor:
    """A sqlite3 cursor whose rows hold stored text instead of Django's converted values."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def _row(self, row: Any) -> Any:
        return None if row is None else tuple(_plain(v) for v in row)

    def execute(self, *args: Any) -> _SQLiteCursor:
        self._cursor.execute(*args)
        return self

    def executemany(self, *args: Any) -> _SQLiteCursor:
        self._cursor.executemany(*args)
        return self

    def fetchone(self) -> Any:
        return self._row(self._cursor.fetchone())

    def fetchmany(self, *args: Any) -> list[Any]:
        return [self._row(r) for r in self._cursor.fetchmany(*args)]

    def fetchall(self) -> list[Any]:
        return [self._row(r) for r in self._cursor.fetchall()]

    def __iter__(self) -> Iterator[Any]:
        for row in self._cursor:
            yield self._row(row)


def _parse_json(cursor: Any) -> None:
    """Give a psycopg cursor psycopg's own JSON loaders: Django registers text loaders for
    ``json``/``jsonb`` on its connections (it parses JSON itself), SQLAlchemy expects the
    driver to have parsed it."""
    from psycopg.types.json import JsonbLoader, JsonLoader

    cursor.adapters.register_loader("jsonb", JsonbLoader)
    cursor.adapters.register_loader("json", JsonLoader)


class DjangoConnection:
    """The DBAPI connection SQLAlchemy sees: Django's connection of this thread.

    Attributes and cursors come from Django's live DBAPI connection (opened by Django when
    needed, reopened after Django closed it). :meth:`begin`, :meth:`commit` and
    :meth:`rollback` enter and leave Django atomic blocks, innermost first; with no block of
    its own open, commit and rollback do nothing (never touching a transaction the caller
    owns). :meth:`close` does nothing: the connection is Django's.
    """

    def __init__(self, alias: str) -> None:
        from django.db import connections

        self.alias = alias
        self._wrapper = connections[alias]
        self._atomics: list[AbstractContextManager[Any]] = []
        self._autocommit = False

    @property
    def raw(self) -> Any:
        """Django's DBAPI connection, connected."""
        self._wrapper.ensure_connection()
        return self._wrapper.connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        """A cursor of Django's connection (rows as SQLAlchemy expects them)."""
        cursor = self.raw.cursor(*args, **kwargs)
        if self._wrapper.vendor == "sqlite":
            return _SQLiteCursor(cursor)
        _parse_json(cursor)
        return cursor

    def begin(self) -> None:
        """Enter ``transaction.atomic(using=alias)``: a transaction, or a savepoint of the
        caller's."""
        from django.db import transaction

        block = transaction.atomic(using=self.alias)
        block.__enter__()
        self._atomics.append(block)

    def commit(self) -> None:
        """Leave the innermost block this connection entered, keeping its work."""
        if self._atomics:
            self._atomics.pop().__exit__(None, None, None)

    @property
    def autocommit(self) -> bool:
        """What SQLAlchemy's ``isolation_level="AUTOCOMMIT"`` asked for (Django's own
        autocommit setting is never changed): a statement run so is kept even when
        SQLAlchemy ends its transaction without a commit."""
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self._autocommit = bool(value)

    def rollback(self) -> None:
        """Leave the innermost block this connection entered, undoing its work (in
        ``autocommit`` mode keeping it, unless the database refused a statement)."""
        if self._atomics:
            block = self._atomics.pop()
            if self._autocommit and not self._failed():
                block.__exit__(None, None, None)
                return
            error = _RindleRollback()
            block.__exit__(_RindleRollback, error, None)

    def _failed(self) -> bool:
        """Whether the transaction is aborted by a failed statement (PostgreSQL)."""
        info = getattr(self.raw, "info", None)
        status = getattr(info, "transaction_status", None)
        return status is not None and getattr(status, "name", "") == "INERROR"

    def close(self) -> None:
        """Nothing: Django closes its own connections."""


class DjangoDatabase(Database):
    """A rindle :class:`Database` on the ``DATABASES[alias]`` connection (see the module).

    Made with :meth:`adopt` from the :class:`Database` a :class:`rindle.Rindle` built, so
    every part of the app holding that object uses Django's connection. Migrations
    (:meth:`migrate`) run on Django's connection too: ``manage.py migrate`` (whose
    ``rindle_django`` migration calls it) and ``manage.py rindle migrate`` create rindle's
    tables in the database Django uses, test databases included.
    """

    alias: str

    @classmethod
    def adopt(cls, db: Database, alias: str) -> DjangoDatabase:
        """Turn ``db`` (not yet connected) into a :class:`DjangoDatabase` on ``alias``, in
        place: same object, its engine replaced by one on Django's connection."""
        db.engine.dispose()
        db.__class__ = cls
        assert isinstance(db, cls)
        db.alias = alias
        options: dict[str, Any] = {}
        if db.dialect_name == "postgresql":
            options["use_native_hstore"] = False  # its type lookup wants psycopg's own class
        engine = create_engine(db.url, creator=lambda: DjangoConnection(alias),
                               poolclass=SingletonThreadPool, pool_size=1024,
                               pool_reset_on_return=None, **options)
        event.listen(engine, "begin", _begin)
        # effects rindle hangs on a session's commit (jobs handed to an executor,
        # telemetry) wait for Django's commit, as they do for a bound host transaction
        db.use_engine(engine, effects=_DjangoCommit(alias))
        return db

    def missing_file(self) -> None:
        """Always None: Django creates and owns the database (file)."""
        return None

    def if_rolled_back(self, effect: Callable[[], object]) -> None:
        """Inside a Django atomic block: run ``effect`` if that block's transaction rolls
        back (see the module docstring for when); outside one, rindle's own transaction has
        committed and there is nothing to undo."""
        from django.db import connections, transaction

        wrapper = connections[self.alias]
        if not wrapper.in_atomic_block:
            return
        pending: list[_Undo] = wrapper.__dict__.setdefault(_UNDO, [])
        item = _Undo(effect)
        pending.append(item)
        transaction.on_commit(item.cancel, using=self.alias)

    def when_committed(self, effect: Callable[[], object]) -> None:
        """Run ``effect`` once Django commits (at once outside an atomic block); dropped if
        Django rolls back."""
        from django.db import transaction

        transaction.on_commit(effect, using=self.alias)


_UNDO = "_rindle_rollback_effects"


class _Undo:
    """One rollback effect; :meth:`cancel` (run on Django's commit) disarms it."""

    def __init__(self, effect: Callable[[], object]) -> None:
        self.effect: Callable[[], object] | None = effect

    def cancel(self) -> None:
        self.effect = None


def run_rollback_effects(wrapper: Any = None) -> int:
    """Run the rollback effects still held for a Django connection (default: every
    connection of this thread) whose transaction has ended; returns how many ran.

    An effect is still held after its outermost atomic block ended only if that block (or
    the savepoint it was registered in) rolled back: a commit cancels it. One that raises
    is logged and the others still run.
    """
    from django.db import connections

    ran = 0
    for conn in [wrapper] if wrapper is not None else connections.all(initialized_only=True):
        if conn.in_atomic_block or not conn.__dict__.get(_UNDO):
            continue
        held, conn.__dict__[_UNDO] = conn.__dict__[_UNDO], []
        for item in held:
            if item.effect is None:
                continue
            try:
                item.effect()
                ran += 1
            except Exception:
                log.exception("rindle_django: an effect run after a rollback failed")
    return ran


class _DjangoCommit:
    """Where rindle hands effects that must follow a durable commit: Django's
    ``transaction.on_commit`` (at once outside an atomic block, dropped on rollback)."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def defer(self, effect: Callable[[], object]) -> None:
        """Run ``effect`` after Django's outermost commit."""
        from django.db import transaction

        transaction.on_commit(effect, using=self.alias)

    def on_rollback(self, effect: Callable[[], object]) -> None:
        """Nothing: Django has no rollback callbacks (see the module docstring)."""


def _begin(conn: Any) -> None:
    """``begin`` listener: the transaction SQLAlchemy starts is a Django atomic block."""
    dbapi = conn.connection.dbapi_connection
    if isinstance(dbapi, DjangoConnection):
        dbapi.begin()
