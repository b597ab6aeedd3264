"""Settings from ``rindle.toml``, ``[tool.rindle]`` in ``pyproject.toml`` and ``RINDLE_*``.

Resolution order, last wins: built-in defaults, the file, the environment
(``RINDLE_DATABASE_URL``, ``RINDLE_SECRET_KEY``, ``RINDLE_TMP_DIR``), then arguments passed
to :class:`rindle.Rindle` directly. ``RINDLE_CONFIG`` names the file when no path is given.

The tables are typed and checked when :class:`Settings` is built: ``[jobs]`` is a
:class:`JobsSettings`, ``[delivery]`` a :class:`DeliverySettings`, ``[events]`` an
:class:`EventsSettings` (unknown keys refused in all three), each ``[streaming.NAME]`` a
:class:`StreamingProviderSettings` (rindle's own keys checked, the provider's keys handed to
the provider, which checks them), and ``[cron]`` a mapping of entries whose extra keys are
the job's arguments. Defaults come from :mod:`rindle.defaults`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rindle import defaults
from rindle.errors import ConfigError

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_STORAGES",
    "EVENTS_MAX_ASSETS_LIMIT",
    "EVENTS_TOKEN_TTL_LIMIT",
    "STREAMING_CORE_KEYS",
    "DeliverySettings",
    "EventsSettings",
    "JobsSettings",
    "Settings",
    "StreamingProviderSettings",
    "default_tmp_dir",
    "find_config",
    "load_settings",
    "private_tmp_dir",
]

DEFAULT_DATABASE_URL = "sqlite:///rindle.db"
DEFAULT_STORAGES: Mapping[str, Mapping[str, Any]] = {
    "default": {"backend": "local", "root": "rindle-media"}
}
ENV_OVERRIDES = {
    "RINDLE_DATABASE_URL": "database_url",
    "RINDLE_SECRET_KEY": "secret_key",
    "RINDLE_TMP_DIR": "tmp_dir",
}


def _unknown_keys(table_name: str, table: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse keys of ``table`` outside ``allowed``, naming the table, the keys and the
    allowed ones."""
    allowed = frozenset(allowed)
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{table_name}: unknown setting(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(sorted(allowed))}")


def _as_table(table_name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{table_name} must be a table")
    return value


def _number(table_name: str, table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{table_name} {key} must be a number (seconds), not {value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class JobsSettings:
    """The ``[jobs]`` table: how the job queue leases, retries and polls.

    ``lease_seconds``, ``backoff_base``, ``backoff_cap`` and ``poll_interval`` are numbers
    of seconds, ``prefetch`` a whole number of jobs; ``executor`` names who runs the jobs
    (``"worker"``, the default: ``rindle worker``; another name: an executor a plugin
    registers, checked when the app is built) and ``executor_options`` is that executor's
    own table (``[jobs.executor_options]``, checked by the executor). Any other key is a
    :class:`ConfigError`.
    """

    lease_seconds: float = defaults.JOBS_LEASE_SECONDS
    backoff_base: float = defaults.JOBS_BACKOFF_BASE
    backoff_cap: float = defaults.JOBS_BACKOFF_CAP
    poll_interval: float = defaults.JOBS_POLL_INTERVAL
    prefetch: int = defaults.JOBS_PREFETCH
    executor: str = defaults.JOBS_EXECUTOR
    #: Not shown by repr: it may hold credentials (a broker URL with a password).
    executor_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, value: Any) -> JobsSettings:
        """Validate a ``[jobs]`` table (or pass an instance through); every problem is a
        :class:`ConfigError` naming the key."""
        if isinstance(value, JobsSettings):
            return value
        table = _as_table("jobs", value)
        _unknown_keys("[jobs]", table, (f.name for f in fields(cls)))
        prefetch = table.get("prefetch", defaults.JOBS_PREFETCH)
        if isinstance(prefetch, bool) or not isinstance(prefetch, int):
            raise ConfigError(f"[jobs] prefetch must be a whole number of jobs, not {prefetch!r}")
        executor = table.get("executor", defaults.JOBS_EXECUTOR)
        if not isinstance(executor, str) or not executor.strip():
            raise ConfigError(f"[jobs] executor must be an executor name such as \"worker\" "
                              f"(rindle worker) or \"celery\", not {executor!r}")
        options = _as_table("[jobs.executor_options]", table.get("executor_options", {}))
        return cls(
            lease_seconds=_number("[jobs]", table, "lease_seconds", defaults.JOBS_LEASE_SECONDS),
            backoff_base=_number("[jobs]", table, "backoff_base", defaults.JOBS_BACKOFF_BASE),
            backoff_cap=_number("[jobs]", table, "backoff_cap", defaults.JOBS_BACKOFF_CAP),
            poll_interval=_number("[jobs]", table, "poll_interval", defaults.JOBS_POLL_INTERVAL),
            prefetch=prefetch,
            executor=executor,
            executor_options=dict(options),
        )


@dataclass(frozen=True, kw_only=True)
class DeliverySettings:
    """The ``[delivery]`` table.

    ``max_put_bytes``: the largest direct-upload PUT body the delivery app accepts (a whole
    number of bytes >= 0). ``signed_url_ttl``: the least number of seconds a signed URL
    stays valid, for profiles whose ``Delivery`` sets none (a whole number >= 1).
    ``signed_url_bucket``: signed URLs expire at the next multiple of this many seconds
    (Unix time) at or after ``now + ttl``, so one asset's URL is byte-identical for that
    long and browsers and CDNs can cache it (a whole number >= 1; 1 turns rounding off).
    ``authorizer``: who may have a private URL signed, called as
    ``authorizer(actor, asset, variant) -> bool`` before each one; a callable, or its
    import path ``"package.module:function"`` (imported when the settings are built), or
    None (no check). ``accel_redirect``: an internal URI prefix such as ``"/protected/"``
    (starting and ending with ``/``); a checked GET is then answered with
    ``X-Accel-Redirect: <prefix><percent-encoded key>`` and no body, for nginx to send the
    file (see ``guides/production.md``). ``x_sendfile``: ``true`` answers with
    ``X-Sendfile: <percent-encoded file path>`` for Apache's mod_xsendfile or lighttpd; at
    most one of the two. Any other key is a :class:`ConfigError`.
    """

    max_put_bytes: int = defaults.DELIVERY_MAX_PUT_BYTES
    signed_url_ttl: int = defaults.DELIVERY_SIGNED_URL_TTL
    signed_url_bucket: int = defaults.DELIVERY_SIGNED_URL_BUCKET
    authorizer: Callable[[Any, Any, str | None], bool] | None = None
    accel_redirect: str | None = defaults.DELIVERY_ACCEL_REDIRECT
    x_sendfile: bool = defaults.DELIVERY_X_SENDFILE

    @classmethod
    def parse(cls, value: Any) -> DeliverySettings:
        """Validate a ``[delivery]`` table (or pass an instance through)."""
        if isinstance(value, DeliverySettings):
            return value
        table = _as_table("delivery", value)
        _unknown_keys("[delivery]", table, (f.name for f in fields(cls)))
        cap = table.get("max_put_bytes", defaults.DELIVERY_MAX_PUT_BYTES)
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ConfigError("[delivery] max_put_bytes must be a whole number of bytes >= 0, "
                              f"e.g. 5368709120 for 5 GiB, not {cap!r}")
        seconds = {}
        for key, default in (("signed_url_ttl", defaults.DELIVERY_SIGNED_URL_TTL),
                             ("signed_url_bucket", defaults.DELIVERY_SIGNED_URL_BUCKET)):
            number = table.get(key, default)
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise ConfigError(f"[delivery] {key} must be a whole number of seconds >= 1, "
                                  f"e.g. {default}, not {number!r}")
            seconds[key] = number
        accel, sendfile = _offload(table)
        return cls(max_put_bytes=cap, authorizer=_authorizer(table.get("authorizer")),
                   accel_redirect=accel, x_sendfile=sendfile, **seconds)


#: Characters an ``accel_redirect`` prefix may hold (nginx would decode or split others).
_ACCEL_PREFIX = re.compile(r"/(?:[A-Za-z0-9._~-]+/)+")


def _offload(table: Mapping[str, Any]) -> tuple[str | None, bool]:
    """``[delivery] accel_redirect`` and ``x_sendfile``, checked."""
    accel = table.get("accel_redirect", defaults.DELIVERY_ACCEL_REDIRECT)
    if accel is not None and (not isinstance(accel, str) or not _ACCEL_PREFIX.fullmatch(accel)
                              or "/../" in accel or "/./" in accel):
        raise ConfigError("[delivery] accel_redirect must be an internal URI prefix that "
                          "starts and ends with '/' (letters, digits, '.', '_', '~', '-' "
                          f"between), e.g. \"/protected/\", not {accel!r}")
    sendfile = table.get("x_sendfile", defaults.DELIVERY_X_SENDFILE)
    if not isinstance(sendfile, bool):
        raise ConfigError(f"[delivery] x_sendfile must be true or false, not {sendfile!r}")
    if accel is not None and sendfile:
        raise ConfigError("[delivery] set accel_redirect (nginx) or x_sendfile (Apache, "
                          "lighttpd), not both")
    return accel, sendfile


def _authorizer(value: Any) -> Callable[[Any, Any, str | None], bool] | None:
    """``[delivery] authorizer`` as a callable: given one, or imported from its path."""
    if value is None or (callable(value) and not isinstance(value, str)):
        return value
    if not isinstance(value, str):
        raise ConfigError("[delivery] authorizer must be a function or its import path "
                          f"\"package.module:function\", not {type(value).__name__}")
    module_name, sep, attr = value.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"[delivery] authorizer {value!r} is not an import path; write it "
                          "as \"package.module:function\"")
    import importlib

    try:
        found = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise ConfigError(f"[delivery] authorizer: cannot import {module_name!r}: {exc}"
                          ) from None
    except AttributeError:
        raise ConfigError(f"[delivery] authorizer: module {module_name!r} has no {attr!r}"
                          ) from None
    if not callable(found):
        raise ConfigError(f"[delivery] authorizer {value!r} is not callable")
    # Only callability is checkable here; the (request, asset, variant) -> bool shape is
    # the documented contract for the imported function.
    authorizer: Callable[[Any, Any, str | None], bool] = found
    return authorizer


#: The most asset ids ``[events] max_assets`` may allow (a token's URL grows by about 52
#: bytes per id: 1000 ids make a 52 KB URL, past what most servers accept).
EVENTS_MAX_ASSETS_LIMIT = 1000
#: The longest a subscribe token may live, in seconds (one week).
EVENTS_TOKEN_TTL_LIMIT = 604_800  # 7 days


def _whole(table: Mapping[str, Any], key: str, default: int, low: int, high: int | None,
           unit: str) -> int:
    """``[events] key``: a whole number from ``low`` to ``high`` (None: no ceiling)."""
    value = table.get(key, default)
    if (isinstance(value, bool) or not isinstance(value, int) or value < low
            or (high is not None and value > high)):
        bound = f">= {low}" if high is None else f"from {low} to {high}"
        raise ConfigError(f"[events] {key} must be a whole number of {unit} {bound}, "
                          f"e.g. {default}, not {value!r}")
    return value


def _seconds(table: Mapping[str, Any], key: str, default: float) -> float:
    """``[events] key``: a finite number of seconds > 0."""
    number = _number("[events]", table, key, default)
    if not 0 < number < float("inf"):
        raise ConfigError(f"[events] {key} must be a number of seconds > 0, e.g. {default}, "
                          f"not {table[key]!r}")
    return number


@dataclass(frozen=True, kw_only=True)
class EventsSettings:
    """The ``[events]`` table: the live progress stream's defaults (``rindle.web.events``).

    ``heartbeat``: seconds between two ``: heartbeat`` comments (a number > 0).
    ``max_streams``: open streams one events mount serves; one more is answered 503 (a
    whole number >= 1). ``max_lifetime``: seconds a stream lasts at most (a number > 0).
    ``poll_interval``: seconds between two reads of the watched rows on SQLite (a number
    > 0; PostgreSQL listens instead). ``max_assets``: the most asset ids one subscribe
    token binds (1 to :data:`EVENTS_MAX_ASSETS_LIMIT`). ``token_ttl``: seconds a subscribe
    token lives when the caller gives no ``expires_in`` (1 to
    :data:`EVENTS_TOKEN_TTL_LIMIT`). Options passed to ``events_wsgi``/``events_asgi``
    override the stream's keys for that mount. Any other key is a :class:`ConfigError`.
    """

    heartbeat: float = defaults.EVENTS_HEARTBEAT
    max_streams: int = defaults.EVENTS_MAX_STREAMS
    max_lifetime: float = defaults.EVENTS_MAX_LIFETIME
    poll_interval: float = defaults.EVENTS_POLL_INTERVAL
    max_assets: int = defaults.EVENTS_MAX_ASSETS
    token_ttl: int = defaults.EVENTS_TOKEN_TTL

    @classmethod
    def parse(cls, value: Any) -> EventsSettings:
        """Validate an ``[events]`` table (or pass an instance through); every problem is a
        :class:`ConfigError` naming the key and what it takes."""
        if isinstance(value, EventsSettings):
            return value
        table = _as_table("events", value)
        _unknown_keys("[events]", table, (f.name for f in fields(cls)))
        return cls(
            heartbeat=_seconds(table, "heartbeat", defaults.EVENTS_HEARTBEAT),
            max_lifetime=_seconds(table, "max_lifetime", defaults.EVENTS_MAX_LIFETIME),
            poll_interval=_seconds(table, "poll_interval", defaults.EVENTS_POLL_INTERVAL),
            max_streams=_whole(table, "max_streams", defaults.EVENTS_MAX_STREAMS, 1, None,
                               "streams"),
            max_assets=_whole(table, "max_assets", defaults.EVENTS_MAX_ASSETS, 1,
                              EVENTS_MAX_ASSETS_LIMIT, "asset ids"),
            token_ttl=_whole(table, "token_ttl", defaults.EVENTS_TOKEN_TTL, 1,
                             EVENTS_TOKEN_TTL_LIMIT, "seconds"))


#: Keys of ``[streaming.NAME]`` that rindle reads itself (not passed to the provider).
STREAMING_CORE_KEYS = frozenset({"backend", "provider_polling_floor_seconds",
                                 "provider_polling_batch_size",
                                 "provider_stuck_threshold_seconds"})


def _positive_int(table: Mapping[str, Any], key: str, default: int, name: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"[streaming.{name}] {key} must be a positive integer, not {value!r}")
    return value


@dataclass(frozen=True)
class StreamingProviderSettings:
    """One ``[streaming.NAME]`` table as rindle reads it.

    rindle validates its own keys (:data:`STREAMING_CORE_KEYS`): ``backend`` (the
    registered provider name, default ``NAME``), ``provider_polling_floor_seconds``,
    ``provider_polling_batch_size`` and ``provider_stuck_threshold_seconds`` (positive
    integers). ``provider_*`` is rindle's namespace: any other key starting with it (a
    typo like ``provider_polling_floor_second``) is a :class:`ConfigError` listing the core
    keys. Every other key is the provider's own: it is kept in ``settings`` and handed to
    the provider's ``from_settings``, which validates it, so providers declare nothing
    here.
    """

    name: str
    backend: str
    polling_floor_seconds: int
    polling_batch_size: int
    stuck_threshold_seconds: int
    settings: Mapping[str, Any]

    def __repr__(self) -> str:  # settings hold secrets
        return f"<ProviderConfig {self.name} backend={self.backend}>"

    @classmethod
    def parse(cls, name: str, table: Any) -> StreamingProviderSettings:
        """Validate one table; every problem is a :class:`ConfigError` naming the key."""
        if isinstance(table, StreamingProviderSettings):
            return table
        if not isinstance(table, Mapping):
            raise ConfigError(f"[streaming.{name}] must be a table of provider settings")
        _unknown_keys(f"[streaming.{name}]",
                      {k: v for k, v in table.items() if str(k).startswith("provider_")},
                      STREAMING_CORE_KEYS)
        backend = table.get("backend", name)
        if not isinstance(backend, str) or not backend:
            raise ConfigError(f"[streaming.{name}] backend must be a provider name like \"mux\"")
        return cls(
            name=name, backend=backend,
            polling_floor_seconds=_positive_int(table, "provider_polling_floor_seconds",
                                                defaults.STREAMING_POLLING_FLOOR_SECONDS,
                                                name),
            polling_batch_size=_positive_int(table, "provider_polling_batch_size",
                                             defaults.STREAMING_POLLING_BATCH_SIZE, name),
            stuck_threshold_seconds=_positive_int(
                table, "provider_stuck_threshold_seconds",
                defaults.STREAMING_STUCK_THRESHOLD_SECONDS, name),
            settings={k: v for k, v in table.items() if k not in STREAMING_CORE_KEYS},
        )


def _parse_streaming(value: Any) -> dict[str, StreamingProviderSettings]:
    return {str(name): StreamingProviderSettings.parse(str(name), table)
            for name, table in _as_table("streaming", value).items()}


def _check_cron(value: Any) -> Mapping[str, Any]:
    """Check the shape of ``[cron]``: each entry is a cron string, or a table with a string
    ``schedule`` and optional string ``kind``.

    The entry names are free and an entry's other keys are the arguments of its job, so no
    key is refused here; the expression itself and whether ``kind`` is registered are
    checked when a worker reads the schedule (:func:`rindle.jobs.cron.parse_schedule`).
    """
    table = _as_table("cron", value)
    for name, entry in table.items():
        if isinstance(entry, str):
            continue
        if not isinstance(entry, Mapping):
            raise ConfigError(f"[cron] {name}: must be a cron string or a table")
        if not isinstance(entry.get("schedule"), str):
            raise ConfigError(f"[cron] {name}: needs schedule = \"<cron expression>\"")
        if not isinstance(entry.get("kind", ""), str):
            raise ConfigError(f"[cron] {name}: kind must be a string")
    return table


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a :class:`rindle.Rindle` is built from. Relative paths resolve against
    ``base_dir`` (the config file's folder, or the working directory)."""

    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str | None = None
    storages: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: dict(DEFAULT_STORAGES)
    )
    profiles: tuple[Any, ...] = ()
    tmp_dir: str | None = None
    cron: Mapping[str, Any] = field(default_factory=dict)
    streaming: Mapping[str, StreamingProviderSettings] = field(default_factory=dict)
    jobs: JobsSettings = field(default_factory=JobsSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    events: EventsSettings = field(default_factory=EventsSettings)
    base_dir: Path = field(default_factory=Path.cwd)
    source: Path | None = None

    def __repr__(self) -> str:
        # secret_key, backend and provider tables hold secrets: show names only
        from rindle.telemetry import redact_url

        return (f"Settings(database_url={redact_url(self.database_url)!r}, "
                f"storages={sorted(self.storages)}, streaming={sorted(self.streaming)}, "
                f"profiles={len(self.profiles)}, source={self.source})")

    def __post_init__(self) -> None:
        if not isinstance(self.database_url, str) or not self.database_url:
            raise ConfigError("database_url must be a non-empty string, e.g. sqlite:///rindle.db")
        if self.secret_key is not None and not isinstance(self.secret_key, str):
            raise ConfigError("secret_key must be a string")
        if not isinstance(self.storages, Mapping) or not self.storages:
            raise ConfigError("storages must define at least one storage, e.g. [storages.default]")
        for name, table in self.storages.items():
            if not isinstance(table, Mapping):
                raise ConfigError(f"[storages.{name}] must be a table")
            if not isinstance(table.get("backend"), str):
                raise ConfigError(
                    f"[storages.{name}] needs backend = \"local\" (or \"s3\", \"gcs\" from plugins)"
                )
        # tables given as mappings (the file, Rindle(jobs={...})) become their typed form
        object.__setattr__(self, "cron", _check_cron(self.cron))
        object.__setattr__(self, "streaming", _parse_streaming(self.streaming))
        object.__setattr__(self, "jobs", JobsSettings.parse(self.jobs))
        object.__setattr__(self, "delivery", DeliverySettings.parse(self.delivery))
        object.__setattr__(self, "events", EventsSettings.parse(self.events))
        if self.tmp_dir is not None and not isinstance(self.tmp_dir, str):
            raise ConfigError("tmp_dir must be a path string")

    @property
    def resolved_database_url(self) -> str:
        """The database URL with a relative SQLite path made relative to ``base_dir``."""
        url = self.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////"):
            rest = url[len(prefix):]
            if rest and rest != ":memory:" and not rest.startswith(("file:", "?")):
                return prefix + str((self.base_dir / rest).resolve())
        return url

    @property
    def resolved_tmp_dir(self) -> Path:
        """Where processing run directories and spooled uploads live.

        ``tmp_dir`` when set (relative to ``base_dir``); otherwise a folder private to this
        user and this project, ``<tempdir>/rindle-<uid>-<8 hex digits of base_dir's
        hash>``, created on first use with mode 0700 (see :func:`private_tmp_dir`).
        """
        if self.tmp_dir:
            path = Path(self.tmp_dir).expanduser()
            return path if path.is_absolute() else self.base_dir / path
        return private_tmp_dir(self.base_dir)


_FILE_KEYS = {f.name for f in fields(Settings)} - {"base_dir", "source"}


def default_tmp_dir(base_dir: Path) -> Path:
    """The default ``tmp_dir`` for a project in ``base_dir``: ``<tempdir>/rindle-<uid>-<hash>``.

    ``<uid>`` is the user id (the user name where there is none) and ``<hash>`` the first
    8 hex digits of the SHA-256 of the resolved ``base_dir``, so two users or two projects
    on one host never share it. Creates nothing.
    """
    import hashlib
    import tempfile

    getuid = getattr(os, "getuid", None)
    if getuid is not None:
        user = str(getuid())
    else:  # pragma: no cover - Windows
        import getpass

        user = getpass.getuser()
    digest = hashlib.sha256(str(Path(base_dir).resolve()).encode("utf-8")).hexdigest()[:8]
    return Path(tempfile.gettempdir()) / f"rindle-{user}-{digest}"


def private_tmp_dir(base_dir: Path) -> Path:
    """:func:`default_tmp_dir`, created with mode 0700 when missing.

    An existing folder is used when it is a real directory (not a link) owned by this user;
    its mode is then tightened to 0700. Anything else (a file, a link, another user's
    folder planted in the shared temp directory) raises :class:`ConfigError` naming it and
    the fix (set ``tmp_dir``).
    """
    path = default_tmp_dir(base_dir)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create the default tmp_dir {str(path)!r}: {exc.strerror}; "
                          "set tmp_dir in rindle.toml (or RINDLE_TMP_DIR) to a writable "
                          "folder") from None
    import stat

    st = path.lstat()
    getuid = getattr(os, "getuid", None)
    if not stat.S_ISDIR(st.st_mode) or (getuid is not None and st.st_uid != getuid()):
        raise ConfigError(f"the default tmp_dir {str(path)!r} is not a folder owned by this "
                          "user; remove it, or set tmp_dir in rindle.toml (or RINDLE_TMP_DIR)")
    if stat.S_IMODE(st.st_mode) != 0o700:
        path.chmod(0o700)
    return path

def find_config(start: Path | None = None) -> Path | None:
    """The config file to use: ``RINDLE_CONFIG``, else ``rindle.toml``, else a ``pyproject.toml``
    with a ``[tool.rindle]`` table, in the working directory."""
    env = os.environ.get("RINDLE_CONFIG")
    if env:
        return Path(env)
    here = start or Path.cwd()
    candidate = here / "rindle.toml"
    if candidate.is_file():
        return candidate
    pyproject = here / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(_read_config_text(pyproject))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            return None
        if isinstance(data.get("tool"), dict) and "rindle" in data["tool"]:
            return pyproject
    return None


#: The largest settings file read, in bytes: more is refused, not read into memory.
MAX_CONFIG_BYTES = 1024 * 1024


def _read_config_text(path: Path) -> str:
    """The UTF-8 text of a settings file, reading at most :data:`MAX_CONFIG_BYTES` + 1 bytes.

    Raises :class:`ConfigError` (code ``config_too_large``) naming the file when it is
    longer, ``OSError`` when it cannot be read and ``UnicodeDecodeError`` when not UTF-8.
    """
    with open(path, "rb") as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        line = data[:MAX_CONFIG_BYTES].count(b"\n") + 1
        raise ConfigError(f"config file {path}: line {line}: the file is larger than "
                          f"{MAX_CONFIG_BYTES} bytes", code="config_too_large")
    return data.decode("utf-8")


def _read_table(path: Path) -> dict[str, Any]:
    try:
        text = _read_config_text(path)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist. Create one with `rindle init`, "
            "or point --config / RINDLE_CONFIG at an existing file."
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; name the file in it, e.g. "
                          f"--config {path / 'rindle.toml'}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix the file and retry.") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        table = tool.get("rindle") if isinstance(tool, dict) else None
        if not isinstance(table, dict):
            raise ConfigError(f"{path} has no [tool.rindle] table")
        return table
    return data


#: Top-level settings that hold no table: found inside a table, they were written below a
#: ``[table]`` header, which TOML reads as a key of that table.
_TOP_LEVEL_SCALARS = ("database_url", "secret_key", "profiles", "tmp_dir")


def _refuse_misplaced(path: Path, table: Mapping[str, Any], where: str = "") -> None:
    """Raise :class:`ConfigError` (code ``misplaced_setting``) when a table of the file
    (``[cron]``, ``[storages.NAME]``, ...) holds one of :data:`_TOP_LEVEL_SCALARS`: it was
    written below that table's header (appended at the end of the file, say), so it is not
    the top-level setting it looks like and would be read as, or refused as, a key of the
    table (a cron entry, a storage option)."""
    for key, value in table.items():
        if not isinstance(value, Mapping):
            continue
        name = f"{where}.{key}" if where else str(key)
        for inner in _TOP_LEVEL_SCALARS:
            if inner in value and not isinstance(value[inner], Mapping):
                raise ConfigError(
                    f"{path}: {inner} is inside the [{name}] table: TOML reads every line "
                    f"below a [table] header as part of that table. Move the {inner} line "
                    "above the file's first [table] header.", code="misplaced_setting")
        _refuse_misplaced(path, value, name)


def load_settings(path: str | os.PathLike[str] | None = None, *,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``path`` (or the discovered file), then apply ``RINDLE_*`` overrides.

    With no file anywhere, the embedded defaults are used (SQLite file and local storage
    in the working directory). Every problem is a :class:`ConfigError` naming what to fix.
    """
    env = os.environ if environ is None else environ
    cfg_path = Path(path) if path is not None else find_config()
    values: dict[str, Any] = {}
    base_dir = Path.cwd()
    if cfg_path is not None:
        table = _read_table(cfg_path)
        _refuse_misplaced(cfg_path, table)
        unknown = sorted(set(table) - _FILE_KEYS)
        if unknown:
            raise ConfigError(
                f"{cfg_path}: unknown setting(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(_FILE_KEYS))}"
            )
        values.update(table)
        base_dir = cfg_path.resolve().parent
    for env_name, key in ENV_OVERRIDES.items():
        if env.get(env_name):
            values[key] = env[env_name]
    profiles = values.get("profiles", ())
    if isinstance(profiles, str) or not isinstance(profiles, (list, tuple)):
        raise ConfigError("profiles must be a list of import paths, e.g. [\"myapp.media:Avatar\"]")
    values["profiles"] = tuple(profiles)
    return Settings(**values, base_dir=base_dir, source=cfg_path)
