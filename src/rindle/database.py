"""Engine, transactions and migrations for one rindle database."""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, quote_plus

from sqlalchemy import Connection, Engine, create_engine, event, orm, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from rindle.errors import ConfigError, DatabaseUnavailable, SchemaOutOfDate, UsageError

__all__ = [
    "SUPPORTED_DIALECTS",
    "UNPARSABLE_URL",
    "Binding",
    "Database",
    "EffectSink",
    "after_commit",
    "bound",
    "is_secret_parameter",
    "redact_url",
    "scrub_secrets",
]

log = logging.getLogger(__name__)

_ALEMBIC_LOCK = threading.Lock()  # Alembic's command layer keeps global state
_MIGRATION_LOCK_ID = 0x52494E444C45  # "RINDLE": PostgreSQL advisory lock for concurrent migrate


#: What :func:`redact_url` shows instead of a URL it cannot parse (no part of it is echoed).
UNPARSABLE_URL = "<unparsable URL>"
#: What stands in for a hidden password or secret query value.
REDACTED = "***"
_SECRET_WORDS = ("password", "passwd", "secret", "token", "credential")
_SECRET_NAMES = frozenset({"pwd", "passfile", "pass"})
_SENTINEL = "RINDLEREDACTEDVALUE"  # survives URL rendering unescaped, then becomes ***
_PARSE_ERRORS = (ArgumentError, ValueError, TypeError)
#: Secrets shorter than this are hidden where a URL shows them, but not hunted for in free
#: text: replacing every "a" of a message would make it unreadable and protect nothing.
MIN_SCRUBBED_LENGTH = 4


def is_secret_parameter(name: str) -> bool:
    """Whether a URL query parameter named ``name`` carries a secret.

    True for ``password``, ``sslpassword``, ``passfile``, ``pwd``, ``pass`` and any name
    containing ``password``, ``passwd``, ``secret``, ``token`` or ``credential``,
    compared case-insensitively.
    """
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(word in lowered for word in _SECRET_WORDS)


def _redacted(parsed: URL) -> URL:
    """``parsed`` with the password and secret query values replaced by the sentinel."""
    changes: dict[str, Any] = {}
    if parsed.password is not None:
        changes["password"] = _SENTINEL
    if parsed.host and "@" in parsed.host:
        # "user:pa@ss@host": the password held an unescaped "@" and spilled into the host
        changes["password"] = _SENTINEL
        changes["host"] = parsed.host.rpartition("@")[2]
    if any(is_secret_parameter(k) for k in parsed.query):
        changes["query"] = {k: (_SENTINEL if is_secret_parameter(k) else v)
                            for k, v in parsed.query.items()}
    return parsed.set(**changes) if changes else parsed


def redact_url(url: str | URL) -> str:
    """Return ``url`` fit to print: the password and every secret query parameter (see
    :func:`is_secret_parameter`) are shown as ``***``, and so is any other part of the URL
    that repeats one of those secrets (when at least :data:`MIN_SCRUBBED_LENGTH` long);
    everything else is kept.

    A string SQLAlchemy's ``make_url`` cannot parse is never echoed, not even in part:
    the answer is then :data:`UNPARSABLE_URL`. Never raises.
    """
    try:
        parsed = make_url(url)
        rendered = _redacted(parsed).render_as_string(hide_password=False)
    except _PARSE_ERRORS:
        return UNPARSABLE_URL
    rendered = rendered.replace(_SENTINEL, REDACTED)
    for secret in _secret_values(parsed):
        rendered = rendered.replace(secret, REDACTED)
    return rendered


def _secret_values(url: str | URL) -> list[str]:
    """The strings in ``url`` that must never be printed: the password (also as it
    spilled into the host), secret query values, in raw and percent-encoded forms; longest
    first, none shorter than :data:`MIN_SCRUBBED_LENGTH`."""
    try:
        parsed = make_url(url)
    except _PARSE_ERRORS:
        return [str(url)] if len(str(url)) >= MIN_SCRUBBED_LENGTH else []
    found: list[str] = []
    if parsed.password:
        found.append(str(parsed.password))
    if parsed.host and "@" in parsed.host:
        found.append(parsed.host.rpartition("@")[0])
    for key, value in parsed.query.items():
        if is_secret_parameter(key):
            found.extend([value] if isinstance(value, str) else list(value))
    out = set()
    for secret in found:
        if len(secret) >= MIN_SCRUBBED_LENGTH:
            out.update({secret, quote(secret, safe=""), quote_plus(secret)})
    return sorted(out, key=len, reverse=True)


def scrub_secrets(message: str, urls: Iterable[str | URL]) -> str:
    """Return ``message`` with every secret of every URL in ``urls`` replaced by ``***``.

    Meant for text that did not come from rindle (driver exceptions, plugin messages):
    each URL's full text becomes its :func:`redact_url` form, then its password and
    secret query values (raw, percent-encoded and ``+``-encoded; at least
    :data:`MIN_SCRUBBED_LENGTH` characters long) become ``***`` wherever they appear.
    Never raises.
    """
    for url in urls:
        raw = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        if raw and raw in message:
            message = message.replace(raw, redact_url(url))
        for secret in _secret_values(url):
            message = message.replace(secret, REDACTED)
    return message


#: The databases rindle runs on (SQLAlchemy backend names).
SUPPORTED_DIALECTS = ("sqlite", "postgresql")


def _check_supported(parsed: URL) -> None:
    """Raise :class:`ConfigError` for a dialect rindle does not run on and for a SQLite URL
    whose path landed in the host part (two slashes)."""
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_DIALECTS:
        raise ConfigError(
            f"database_url {redact_url(parsed)!r} is a {backend} URL; rindle supports SQLite "
            "(sqlite:///rindle.db) and PostgreSQL (postgresql://user@host/dbname) only"
        )
    if backend == "sqlite" and parsed.host:
        raise ConfigError(
            f"database_url {redact_url(parsed)!r} has two slashes after sqlite:, so "
            f"{parsed.host!r} is read as a host name. Use sqlite:///{parsed.host}"
            f"{'/' + parsed.database if parsed.database else ''} (three slashes: relative "
            "to the config file's folder) or sqlite:////abs/path/rindle.db (four: absolute)"
        )


def _sqlite_file(parsed: URL) -> Path | None:
    """The file a SQLite URL names, or None (in-memory, ``file:`` URIs, other dialects)."""
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:") or (
            parsed.query.get("uri") in ("true", "1")):
        return None
    return Path(database).absolute()  # sqlite3 expands no ~


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

    The URL is never shown unredacted in errors or reprs (see :func:`redact_url`), and
    driver messages in rindle's errors pass through :meth:`scrub`.
    """

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10,
                 require_migrated: bool = False) -> None:
        """Build the engine for ``url`` without connecting.

        Raises :class:`ConfigError` when ``url`` cannot be parsed (the message names the
        problem and quotes no part of the URL), is a SQLite URL with two slashes
        (``sqlite://rindle.db``), names a dialect other than SQLite and PostgreSQL, names a
        SQLite file whose folder does not exist (the folder is never created), or names a
        driver that is not installed. Messages show the URL only as :func:`redact_url`.

        With ``require_migrated`` (how :class:`rindle.Rindle` builds it), connections are
        only handed out for a migrated database: the first one (from ``engine``,
        ``sessionmaker`` or :meth:`transaction`) checks the schema revision and raises
        :class:`SchemaOutOfDate` naming ``rindle migrate`` unless it is at head (checked
        once; cached after it passed), and a SQLite file that does not exist is never
        created: connecting raises :class:`SchemaOutOfDate` with code
        ``database_missing`` instead. :meth:`migrate` and :meth:`downgrade` are exempt
        from both; :meth:`check_connection` and :meth:`current_revision` skip the schema
        check.
        """
        self._raw_url = url
        try:
            parsed = make_url(url)
        except _PARSE_ERRORS:
            raise ConfigError(
                "database_url is not a database URL: it could not be parsed; expected "
                "dialect[+driver]://[user[:password]@]host[:port]/database, e.g. "
                "sqlite:///rindle.db or postgresql+psycopg://user@host/db"
            ) from None
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        self.dialect_name = parsed.get_backend_name()
        _check_supported(parsed)
        self.require_migrated = require_migrated
        self._schema_ok = not require_migrated
        self._local = threading.local()  # .internal: skip the schema check; .create: may create
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        self.sqlite_path: Path | None = _sqlite_file(parsed)
        """The file of a file-backed SQLite database (``None`` otherwise), as connected to."""
        if self.dialect_name == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if self.sqlite_path is not None and not self.sqlite_path.parent.is_dir():
                raise ConfigError(
                    f"database_url {redact_url(parsed)!r}: the folder "
                    f"{str(self.sqlite_path.parent)!r} does not exist (rindle creates the "
                    "SQLite file, never its folder). Create the folder, or fix the path: "
                    "sqlite:///rindle.db is relative to the config file's folder, "
                    "sqlite:////abs/path/rindle.db is absolute."
                )
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
                f"no database driver for {self.redacted_url!r}: {self.scrub(str(exc))}.{extra}"
            ) from exc
        if self.dialect_name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        if require_migrated:
            if self.sqlite_path is not None:
                event.listen(self.engine, "do_connect", self._refuse_to_create)
            event.listen(self.engine, "engine_connect", self._check_on_connect)
        self._sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        #: Threads' kept autocommit connections (:meth:`kept_connection`), by thread.
        self._kept: dict[threading.Thread, Connection] = {}
        self._kept_lock = threading.Lock()
        self._inherited: list[Connection] = []  # a parent process's, see after_fork
        #: At most this many threads keep a connection: the other half of the pool
        #: (``pool_size`` + overflow ``pool_size``) stays free for sessions and handlers.
        self.max_kept = pool_size

    def use_engine(self, engine: Engine, *, effects: EffectSink | None = None) -> None:
        """Run on ``engine`` from now on: the hook for a host framework that lends rindle
        its own connection (rindle-django's ``DjangoDatabase``).

        ``engine`` replaces :attr:`engine` and the session factory; with
        ``require_migrated`` its first connection checks the schema, as the engine built
        here does. With ``effects``, what rindle's sessions would run after their commit
        (:func:`after_commit`: telemetry, jobs handed to the executor) is handed to
        ``effects.defer`` at that commit instead, for the host to run after *its* commit.
        The caller owns ``engine`` (:meth:`dispose` disposes it).
        """
        self.engine = engine
        if self.require_migrated:
            event.listen(engine, "engine_connect", self._check_on_connect)
        info: dict[str, Any] = {_BINDING: effects} if effects is not None else {}
        self._sessionmaker = sessionmaker(engine, expire_on_commit=False, info=info)

    def is_bound(self) -> bool:
        """Whether, in this thread or task, rindle's writes join a host's transaction
        (inside :meth:`bind`, until the host's transaction ends)."""
        return bound(self) is not None

    @property
    def sessionmaker(self) -> orm.sessionmaker[Session]:
        """The session factory rindle's code opens its sessions with.

        Inside :meth:`bind` (in that thread or task) its sessions join the host's
        transaction through a savepoint each; elsewhere they use the engine.
        """
        binding = bound(self)
        if binding is None:
            return self._sessionmaker
        return sessionmaker(bind=binding.connection, expire_on_commit=False,
                            join_transaction_mode="create_savepoint",
                            info={_BINDING: binding})

    @contextmanager
    def bind(self, host: Connection | Session) -> Iterator[Binding]:
        """Within the block (this thread or task only), rindle's writes join ``host``'s
        transaction.

        ``host`` is a SQLAlchemy :class:`~sqlalchemy.Connection` or
        :class:`~sqlalchemy.orm.Session` on this same database (its own engine is fine).
        Every session rindle opens in the block works in a savepoint of the host's
        transaction (begun here if the host had none): a rindle call that fails rolls
        back its own savepoint only, and nothing rindle writes is committed until the
        host commits. Effects rindle runs after a commit (telemetry, jobs handed to the
        executor or run inline, storage deletes, aborting a backend upload: every service
        runs them through :meth:`when_committed` or :func:`after_commit`) wait for the
        host's commit, whenever it happens (inside or after the block), and are dropped if
        the host rolls back.

        Raises :class:`UsageError` with code ``bind_nested`` when this database is already
        bound in this thread or task, and ``bind_other_database`` when ``host`` is
        connected to another database.
        """
        if bound(self) is not None:
            raise UsageError(
                "app.bind(...) is already active in this thread for this database; "
                "rindle joins one host transaction at a time: leave the outer "
                "`with app.bind(...)` block first (or keep using it)", code="bind_nested")
        if isinstance(host, Session):
            session: Session | None = host
            connection = host.connection()
        elif isinstance(host, Connection):
            session, connection = None, host
            if not connection.in_transaction():
                connection.begin()
        else:
            raise UsageError(f"app.bind() takes a SQLAlchemy Connection or Session, not "
                             f"{type(host).__name__}", code="bind_not_connection")
        if not _same_database(connection.engine.url, self.url):
            raise UsageError(
                f"app.bind() was given a connection to {redact_url(connection.engine.url)}, "
                f"but this rindle uses {self.redacted_url}; rindle's rows can only share "
                "a transaction on the same database: bind a connection of that one",
                code="bind_other_database")
        if self.dialect_name == "sqlite":
            dbapi = connection.connection.dbapi_connection
            if dbapi is not None and not dbapi.in_transaction:
                # pysqlite opens its transaction lazily, at the first write: without this,
                # rindle's SAVEPOINT would open (and its RELEASE commit) one of its own
                connection.exec_driver_sql("BEGIN IMMEDIATE")
        if not self._schema_ok:  # through the host's connection: on SQLite it holds the lock
            self._check_schema_on(connection)
        binding = Binding(self, connection, session)
        token = _BOUND.set((*_BOUND.get(), binding))
        try:
            yield binding
        finally:
            _BOUND.reset(token)

    def _check_schema_on(self, connection: Connection) -> None:
        """:meth:`check_schema_once`, asking over ``connection`` (a host's)."""
        from alembic.runtime.migration import MigrationContext

        self._require_head(MigrationContext.configure(connection).get_current_revision())

    def when_committed(self, effect: Effect) -> None:
        """Run ``effect`` now, or, inside :meth:`bind`, after the host commits (dropped if
        it rolls back). The one way rindle's services run what follows a transaction they
        have just ended (telemetry, storage deletes, abort of a backend upload).

        Unbound, ``effect`` runs at once and what it raises propagates to the caller (the
        transaction has committed). Bound, it runs in the host's committing thread after
        the commit, and one that raises is logged (the host's commit cannot be undone).
        """
        binding = bound(self)
        if binding is None:
            effect()
        else:
            binding.defer(effect)

    def if_rolled_back(self, effect: Effect) -> None:
        """Inside :meth:`bind`: run ``effect`` if the host rolls back (undo what cannot be
        rolled back with it, e.g. a stored object). Outside: nothing to do, as the
        transaction rindle has just ended committed."""
        binding = bound(self)
        if binding is not None:
            binding.on_rollback(effect)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction of its own, committed when the block ends: like
        ``engine.begin()``, but inside :meth:`bind` a savepoint of the host's transaction
        (committed only with the host's)."""
        binding = bound(self)
        if binding is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with binding.connection.begin_nested():
            yield binding.connection

    @property
    def redacted_url(self) -> str:
        """The URL fit to print: password and secret query parameters shown as ``***``."""
        return redact_url(self.url)

    def scrub(self, message: str) -> str:
        """``message`` with this database's URL redacted and its secrets (password, secret
        query values, as given and as normalised) replaced by ``***``."""
        return scrub_secrets(message, (self._raw_url, self.url))

    def __repr__(self) -> str:
        return f"<Database {self.redacted_url}>"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session inside one transaction: committed on success, rolled back on error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    def check_connection(self) -> None:
        """Raise :class:`DatabaseUnavailable` unless a connection can be opened and queried.

        The message shows the redacted URL and the first line of the driver's reason,
        scrubbed of the URL's secrets. With ``require_migrated``, a SQLite file that does
        not exist raises :class:`SchemaOutOfDate` (``database_missing``) and is not created.
        """
        try:
            with self._internal(), self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (OperationalError, SQLAlchemyError, OSError) as exc:
            reason = self.scrub(str(getattr(exc, "orig", exc))).strip().splitlines()
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
        """The revision the database is at, or None for a database never migrated.

        With ``require_migrated``, a SQLite file that does not exist is such a database:
        the answer is None and the file is not created.
        """
        from alembic.runtime.migration import MigrationContext

        if self.missing_file() is not None:
            return None
        self.check_connection()
        with self._internal(), self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (default: the newest shipped migration)."""
        self._run_alembic("upgrade", revision)

    def downgrade(self, revision: str) -> None:
        """Take the schema back to ``revision`` (``"base"`` drops every rindle table)."""
        self._run_alembic("downgrade", revision)

    def _run_alembic(self, verb: str, revision: str) -> None:
        from alembic import command

        with self._internal(create=True):
            self.check_connection()
        with _ALEMBIC_LOCK, self._internal(create=True), self.engine.connect() as conn:
            if self.dialect_name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
                conn.commit()
            try:
                getattr(command, verb)(self._alembic_config(conn), revision)
                conn.commit()
            finally:
                self._schema_ok = not self.require_migrated  # the next use checks again
                if self.dialect_name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_ID})
                    conn.commit()

    def ensure_schema_current(self) -> None:
        """Raise :class:`SchemaOutOfDate` naming the fix unless the schema is at head.

        Always asks the database (no cache). The code is ``database_missing`` when, with
        ``require_migrated``, the SQLite file does not exist (it is not created), else
        ``schema_out_of_date``; :class:`DatabaseUnavailable` when it cannot be reached.
        """
        missing = self.missing_file()
        if missing is not None:
            raise self._missing_error(missing)
        self._require_head(self.current_revision())

    def _require_head(self, current: str | None) -> None:
        """Raise :class:`SchemaOutOfDate` unless ``current`` is the head revision; else
        remember that the schema passed."""
        head = self.head_revision()
        if current != head:
            state = "has no rindle tables" if current is None else f"is at {current}"
            raise SchemaOutOfDate(
                f"the database {self.redacted_url} {state}, rindle needs {head}. "
                "Run `rindle migrate` (or app.migrate())."
            )
        self._schema_ok = True

    def check_schema_once(self) -> None:
        """Like :meth:`ensure_schema_current`, but only until it has passed once: later
        calls return at once. Every connection of a ``require_migrated`` database runs it
        first; call it yourself to fail before doing work that is not in the database."""
        if not self._schema_ok:
            with self._internal():
                self.ensure_schema_current()

    def missing_file(self) -> Path | None:
        """The SQLite file this database would create on connecting, when ``require_migrated``
        forbids that (only :meth:`migrate` creates it); ``None`` when it exists, for
        PostgreSQL and in-memory SQLite, and when ``require_migrated`` is false."""
        if not self.require_migrated or self.sqlite_path is None:
            return None
        return None if self.sqlite_path.exists() else self.sqlite_path

    def _missing_error(self, path: Path) -> SchemaOutOfDate:
        return SchemaOutOfDate(
            f"the SQLite database {str(path)!r} does not exist. Run `rindle migrate` (or "
            "app.migrate()) to create it, or fix database_url if it is somewhere else.",
            code="database_missing",
        )

    @contextmanager
    def _internal(self, *, create: bool = False) -> Iterator[None]:
        """Within this thread: connections skip the schema check (and, with ``create``,
        may create a missing SQLite file)."""
        saved = (getattr(self._local, "internal", False), getattr(self._local, "create", False))
        self._local.internal = True
        self._local.create = saved[1] or create
        try:
            yield
        finally:
            self._local.internal, self._local.create = saved

    def _refuse_to_create(self, _dialect: Any, _record: Any, _cargs: Any, _cparams: Any
                          ) -> None:
        """``do_connect`` listener: a missing SQLite file is an error, not created."""
        if getattr(self._local, "create", False):
            return
        missing = self.missing_file()
        if missing is not None:
            raise self._missing_error(missing)

    def _check_on_connect(self, conn: Any) -> None:
        """``engine_connect`` listener: the first connection handed out checks the schema."""
        if self._schema_ok or getattr(self._local, "internal", False):
            return
        try:
            self.check_schema_once()
        except BaseException:
            conn.close()  # give the pooled connection back before refusing it
            raise

    def kept_connection(self) -> Connection | None:
        """This thread's kept autocommit connection on PostgreSQL, opened on first use and
        handed back to the same thread's later calls (no pool checkout, nor its liveness
        ping, per use); ``None`` on SQLite, and when :attr:`max_kept` other live threads
        already keep one (the caller then checks a connection out per use).

        Bounded: one per live thread, at most :attr:`max_kept`. Closed by :meth:`dispose`
        (every thread's), by :meth:`drop_kept` (this thread's), and, for a thread that has
        ended, by the next call from any thread.
        """
        if self.dialect_name != "postgresql":
            return None
        me = threading.current_thread()
        with self._kept_lock:
            conn = self._kept.get(me)
            if conn is not None and not (conn.closed or conn.invalidated
                                         or conn.engine is not self.engine):
                return conn
            ended = [t for t, c in self._kept.items() if t is me or not t.is_alive()]
            stale = [self._kept.pop(t) for t in ended]
            full = len(self._kept) >= self.max_kept
        for old in stale:
            with contextlib.suppress(SQLAlchemyError):
                old.close()
        if full:
            return None
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        with self._kept_lock:
            self._kept[me] = conn
        return conn

    def drop_kept(self) -> None:
        """Invalidate this thread's kept connection, if any (after a database error on it:
        the next :meth:`kept_connection` opens a fresh one)."""
        with self._kept_lock:
            conn = self._kept.pop(threading.current_thread(), None)
        if conn is not None:
            conn.invalidate()

    def kept_count(self) -> int:
        """How many threads keep a connection now (see :meth:`kept_connection`)."""
        with self._kept_lock:
            return len(self._kept)

    def dispose(self) -> None:
        """Close every pooled connection, and every thread's kept one (call it when no
        thread uses the database any more, e.g. at a worker's shutdown)."""
        with self._kept_lock:
            kept, self._kept = list(self._kept.values()), {}
        for conn in kept:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
        self.engine.dispose()

    def after_fork(self) -> None:
        """In a child process just forked from one that used this database: forget the
        parent's connections without closing them (they are the parent's sockets), so the
        child opens its own."""
        with self._kept_lock:
            # held, never closed nor collected here: closing would end the parent's sessions
            self._inherited.extend(self._kept.values())
            self._kept = {}
        self.engine.dispose(close=False)


# --- effects after commit and host-bound transactions -----------------------------------------

#: ``Session.info`` key: the :class:`Binding` a session joined (its host's transaction).
_BINDING = "rindle.binding"
_EFFECTS = "rindle.after_commit"
_EFFECTS_HOOKED = "rindle.after_commit.hooked"

#: The host transactions this thread (or task) is bound to, one per :class:`Database` at
#: most. A :class:`~contextvars.ContextVar`, so a binding never leaks to another thread.
_BOUND: ContextVar[tuple[Binding, ...]] = ContextVar("rindle_bound", default=())

Effect = Callable[[], object]


class EffectSink(Protocol):
    """Where effects that must follow a durable commit go instead of running at a
    session's commit (see :meth:`Database.use_engine`); :class:`Binding` is one."""

    def defer(self, effect: Effect) -> None:
        """Run ``effect`` after the commit that makes rindle's work durable; never if it
        is rolled back."""

    def on_rollback(self, effect: Effect) -> None:
        """Run ``effect`` if that work is rolled back (or never, if the host cannot tell)."""


@dataclass(eq=False)
class _Effect:
    run: Effect
    transaction: SessionTransaction | None


def _run_effects(effects: Iterable[Effect], where: str) -> None:
    """Run each effect; one that raises is logged and the others still run (the commit
    they follow has happened and cannot be undone by a failing effect)."""
    for effect in effects:
        try:
            effect()
        except Exception:
            log.exception("rindle: an effect deferred until %s failed", where)


def after_commit(session: Session, effect: Effect) -> None:
    """Run ``effect`` once the work ``session`` holds is durably committed, else never.

    On a plain session: after its outermost transaction commits (a savepoint released is
    not enough); a rollback of the transaction or of the savepoint the effect was
    registered in drops it, and so does closing the session without committing. On a
    session joined to a host transaction (inside :meth:`Database.bind`): the effect is
    handed to the binding when the session commits, and runs after the *host* commits;
    the host's rollback drops it. An effect that raises is logged, never propagated.
    """
    if not session.info.get(_EFFECTS_HOOKED):
        event.listen(session, "after_commit", _effects_on_commit)
        event.listen(session, "after_soft_rollback", _effects_on_soft_rollback)
        event.listen(session, "after_transaction_end", _effects_on_transaction_end)
        session.info[_EFFECTS_HOOKED] = True
    txn = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_EFFECTS, []).append(_Effect(effect, txn))


def _effects_on_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint was released: the outer txn may fail
        return
    pending: list[_Effect] = session.info.pop(_EFFECTS, [])
    binding: EffectSink | None = session.info.get(_BINDING)
    if binding is not None:
        for item in pending:
            binding.defer(item.run)
        return
    _run_effects((item.run for item in pending), "commit")


def _effects_on_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    pending: list[_Effect] = session.info.get(_EFFECTS, [])
    session.info[_EFFECTS] = [p for p in pending if not _within(p.transaction, previous)]


def _effects_on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost ended without a commit (close): discard
        session.info.pop(_EFFECTS, None)


def _within(txn: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while txn is not None:
        if txn is ancestor:
            return True
        txn = txn.parent
    return False


class Binding:
    """One host transaction rindle's work joined (see :meth:`Database.bind`).

    Holds the host's connection, the effects deferred until the host commits (run in
    order, in the committing thread, after the commit; dropped on a rollback) and the undo
    effects run if it rolls back instead. Once the host's transaction has ended the
    binding is spent: an effect given later runs at once if its outcome happened, and is
    dropped otherwise.
    """

    def __init__(self, db: Database, connection: Connection, session: Session | None) -> None:
        self.db = db
        self.connection = connection
        self.session = session
        #: Effects waiting for each outcome: "committed" and "rolled_back".
        self._waiting: dict[str, list[Effect]] = {"committed": [], "rolled_back": []}
        self._outcome: str | None = None  # set once the host's transaction has ended
        self._lock = threading.Lock()
        _hook(session if session is not None else connection).append(self)

    def defer(self, effect: Effect) -> None:
        """Run ``effect`` after the host commits (now, if it already has)."""
        self._when("committed", effect)

    def on_rollback(self, effect: Effect) -> None:
        """Run ``effect`` if the host rolls back (now, if it already has)."""
        self._when("rolled_back", effect)

    @property
    def ended(self) -> bool:
        """Whether the host's transaction has committed or rolled back: rindle's work no
        longer joins it (it runs in transactions of its own again)."""
        return self._outcome is not None

    def _when(self, outcome: str, effect: Effect) -> None:
        with self._lock:
            if self._outcome is None:
                self._waiting[outcome].append(effect)
                return
            happened = self._outcome
        if happened == outcome:
            _run_effects([effect], f"the host's transaction ({outcome})")

    def _finish(self, outcome: str) -> None:
        with self._lock:
            if self._outcome is not None:
                return
            self._outcome = outcome
            effects = self._waiting[outcome]
            self._waiting = {"committed": [], "rolled_back": []}
        _run_effects(effects, f"the host's transaction ({outcome})")


#: The bindings waiting on each host Connection or Session, and so the one set of event
#: listeners each host gets (listeners cannot be removed while SQLAlchemy dispatches).
_WAITING: weakref.WeakKeyDictionary[Connection | Session, list[Binding]] = (
    weakref.WeakKeyDictionary())
_WAITING_LOCK = threading.Lock()


def _hook(host: Connection | Session) -> list[Binding]:
    """The list of bindings waiting on ``host``, listening to its commit and rollback the
    first time."""
    with _WAITING_LOCK:
        waiting = _WAITING.get(host)
        if waiting is None:
            waiting = _WAITING[host] = []
            if isinstance(host, Session):
                event.listen(host, "after_commit", _on_host_session_commit)
                event.listen(host, "after_transaction_end", _on_host_session_end)
            else:
                event.listen(host, "commit", _on_host_connection_commit)
                event.listen(host, "rollback", _on_host_connection_rollback)
        return waiting


def _end(host: Connection | Session, outcome: str) -> None:
    """The host's transaction ended: finish every binding waiting on it."""
    with _WAITING_LOCK:
        waiting = _WAITING.get(host)
        ended = list(waiting) if waiting else []
        if waiting:
            waiting.clear()
    for binding in ended:
        binding._finish(outcome)


def _on_host_session_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint released is not the commit
        _end(session, "committed")


def _on_host_session_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # ended without the commit above: rolled back or closed
        _end(session, "rolled_back")


def _on_host_connection_commit(connection: Connection) -> None:
    # A Connection has no "after commit" event; this one fires just before SQLAlchemy
    # commits the DBAPI connection. Commit it here first (a failure propagates to the
    # host's commit() call and runs nothing), then run the effects; SQLAlchemy's own
    # COMMIT that follows finds no transaction open and does nothing.
    with _WAITING_LOCK:
        if not _WAITING.get(connection):
            return
    dbapi = connection.connection.dbapi_connection
    if dbapi is None:  # only after invalidation, which a connection mid-commit has not had
        raise DatabaseUnavailable("the database connection was invalidated before COMMIT; "
                                  "nothing was committed: run the transaction again")
    dbapi.commit()
    _end(connection, "committed")


def _on_host_connection_rollback(connection: Connection) -> None:
    _end(connection, "rolled_back")


def bound(db: Database) -> Binding | None:
    """The host transaction ``db`` is bound to in this thread or task, if any (and not
    ended yet)."""
    for binding in _BOUND.get():
        if binding.db is db and not binding.ended:
            return binding
    return None


def _same_database(a: URL, b: URL) -> bool:
    """Whether two URLs name the same database (same dialect; same SQLite file, or same
    PostgreSQL host, port and database name)."""
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        fa, fb = _sqlite_file(a), _sqlite_file(b)
        return fa is not None and fb is not None and fa.resolve() == fb.resolve()
    return ((a.host or "localhost"), a.port or 5432, a.database) == (
        (b.host or "localhost"), b.port or 5432, b.database)
