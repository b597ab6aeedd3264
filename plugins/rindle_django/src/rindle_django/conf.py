"""The ``RINDLE`` setting, the database URL from ``DATABASES`` and the process's one app.

``RINDLE`` takes the keys of ``rindle.toml`` (``storages``, ``profiles``, ``secret_key``,
``tmp_dir``, ``cron``, ``streaming``, ``jobs``, ``delivery``) plus ``database``: the
``DATABASES`` alias rindle shares (default ``"default"``). ``database_url`` is refused:
the database is Django's. Profiles are import paths, ``"gallery.media.Photo"`` or
``"gallery.media:Photo"``, or the classes themselves. Without ``secret_key`` one is
derived from Django's ``SECRET_KEY`` (an HMAC with a rindle-only salt, so the two never
sign with the same key). Relative paths resolve against ``BASE_DIR`` when the settings
define it, else the working directory.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rindle.config import Settings
from rindle.errors import ConfigError

if TYPE_CHECKING:
    from rindle import Rindle

__all__ = [
    "ALLOWED_KEYS",
    "database_alias",
    "database_url",
    "get_app",
    "on_setting_changed",
    "reset_app",
    "rindle_settings",
]

#: The keys ``RINDLE`` accepts.
ALLOWED_KEYS = frozenset(
    {f.name for f in fields(Settings)} - {"base_dir", "source", "database_url"} | {"database"})

_SQLITE_ENGINES = ("django.db.backends.sqlite3", "django.contrib.gis.db.backends.spatialite")
_POSTGRES_ENGINES = ("django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2",
                     "django.contrib.gis.db.backends.postgis")

_lock = threading.Lock()
_app: Rindle | None = None


def _setting() -> Mapping[str, Any]:
    from django.conf import settings

    value = getattr(settings, "RINDLE", {})
    if not isinstance(value, Mapping):
        raise ConfigError("settings.RINDLE must be a dict of rindle settings, e.g. "
                          "RINDLE = {\"profiles\": [\"gallery.media.Photo\"]}")
    unknown = sorted(set(value) - ALLOWED_KEYS)
    if unknown:
        hint = (" (rindle-django uses the DATABASES connection named by \"database\")"
                if "database_url" in unknown else "")
        raise ConfigError(f"settings.RINDLE: unknown key(s) {', '.join(unknown)}{hint}; "
                          f"allowed: {', '.join(sorted(ALLOWED_KEYS))}")
    return value


def database_alias() -> str:
    """The ``DATABASES`` alias rindle uses: ``RINDLE["database"]``, default ``"default"``.

    Raises :class:`ConfigError` when that alias is not in ``DATABASES``.
    """
    from django.conf import settings

    alias = _setting().get("database", "default")
    if not isinstance(alias, str) or alias not in settings.DATABASES:
        raise ConfigError(f"settings.RINDLE database={alias!r} is not a DATABASES alias; "
                          f"configured: {', '.join(sorted(settings.DATABASES))}")
    return alias


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """The SQLAlchemy URL of one ``DATABASES`` entry, without its password.

    SQLite gives ``sqlite:////absolute/path`` (``sqlite://`` for an in-memory database,
    which Django's test runner uses); PostgreSQL gives ``postgresql+psycopg://user@host:port/
    name``. The password is left out on purpose: rindle never connects with this URL (it
    borrows Django's connection), it only names the dialect and shows where it is.
    Any other engine is a :class:`ConfigError` naming the two supported ones.
    """
    from sqlalchemy.engine import URL

    engine = str(settings_dict.get("ENGINE", ""))
    name = settings_dict.get("NAME") or ""
    if engine in _SQLITE_ENGINES:
        text = str(name)
        if not text or text == ":memory:" or "mode=memory" in text:
            return "sqlite://"
        if text.startswith("file:"):
            raise ConfigError(f"DATABASES NAME {text!r}: rindle-django supports a SQLite file "
                              "path or an in-memory database, not a file: URI")
        return f"sqlite:///{Path(text).resolve()}"
    if engine in _POSTGRES_ENGINES:
        port = settings_dict.get("PORT")
        url = URL.create("postgresql+psycopg",
                         username=str(settings_dict.get("USER") or "") or None,
                         host=str(settings_dict.get("HOST") or "") or None,
                         port=int(port) if port not in (None, "") else None,
                         database=str(name) or None)
        return url.render_as_string(hide_password=True)
    raise ConfigError(f"DATABASES engine {engine!r} is not supported by rindle; use "
                      "django.db.backends.sqlite3 or django.db.backends.postgresql")


def _profile(item: Any) -> Any:
    if isinstance(item, str) and ":" not in item and "." in item:
        module, _, attr = item.rpartition(".")
        return f"{module}:{attr}"
    return item


def _derived_secret() -> str:
    from django.conf import settings
    from django.utils.crypto import salted_hmac

    if not getattr(settings, "SECRET_KEY", None):
        raise ConfigError("settings.RINDLE has no secret_key and Django's SECRET_KEY is "
                          "empty; set one of them")
    return salted_hmac("rindle_django.secret_key", "rindle", algorithm="sha256").hexdigest()


def rindle_settings() -> Settings:
    """The :class:`rindle.config.Settings` of ``settings.RINDLE`` (validated; every
    problem is a :class:`ConfigError` naming the key)."""
    from django.conf import settings
    from django.db import connections

    table = dict(_setting())
    alias = database_alias()
    table.pop("database", None)
    table["profiles"] = tuple(_profile(p) for p in table.get("profiles", ()))
    if not table.get("secret_key"):
        table["secret_key"] = _derived_secret()
    base = getattr(settings, "BASE_DIR", None)
    base_dir = Path(base) if base else Path.cwd()
    return Settings(database_url=database_url(connections[alias].settings_dict),
                    base_dir=base_dir, **table)


def get_app() -> Rindle:
    """The process's :class:`rindle.Rindle`, built on the first call (connects to nothing).

    Its database is :class:`rindle_django.db.DjangoDatabase`: Django's own connection of the
    ``RINDLE["database"]`` alias, so rindle's writes join ``transaction.atomic()``.
    Plugins load from entry points as in ``rindle`` itself
    (``RINDLE_DISABLE_PLUGIN_AUTOLOAD=1`` turns that off).
    """
    global _app
    with _lock:
        if _app is None:
            from rindle import Rindle
            from rindle_django.db import DjangoDatabase

            settings = rindle_settings()
            app = Rindle(settings=settings)
            DjangoDatabase.adopt(app.db, database_alias())
            _app = app
        return _app


def reset_app() -> None:
    """Forget the app (the next :func:`get_app` builds one from the current settings)."""
    global _app
    with _lock:
        if _app is not None:
            _app.close()
        _app = None


def on_setting_changed(*, setting: str, **_: Any) -> None:
    """``setting_changed`` receiver: a change of ``RINDLE`` or ``DATABASES`` resets the app."""
    if setting in ("RINDLE", "DATABASES"):
        reset_app()
