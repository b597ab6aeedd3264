"""``doctor``: setup and drift checks, each OK / WARN / ERROR with a fix about that check.

Read-only except for a tiny probe object written to (and removed from) each storage to
prove it is writable. It never creates the SQLite database file (a missing one is an
ERROR whose fix is ``rindle migrate``), nor a local storage's ``root`` that does not
exist yet (then the nearest existing folder above it must be writable). Works when the
database is unreachable or unmigrated: those become ERROR lines, the remaining database
checks are skipped with a note.

Each local storage's ``base_url`` is probed over HTTP (:func:`probe_base_url`): its
signed URLs only work when ``base_url`` plus ``url_prefix`` is where ``rindle serve`` or
the ``rindle.delivery.wsgi_app`` mount answers, with this app's ``secret_key``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import http.client
import io
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from rindle.domain.models import Asset, Job, Variant, WorkerHeartbeat, utcnow
from rindle.errors import ConfigError, RindleError
from rindle.ops.report import Report
from rindle.storage.local import LocalStorage

if TYPE_CHECKING:
    from rindle.context import AppContext

__all__ = ["Check", "DoctorReport", "doctor", "probe_base_url"]

OK, WARN, ERROR = "ok", "warn", "error"
HEARTBEAT_FRESH = dt.timedelta(seconds=60)
_SAMPLE_SECRETS = {"change-me", "secret", "test", "dev"}
#: Seconds the base_url probe waits for a connection and for each answer.
BASE_URL_TIMEOUT = 3.0
_PROBE_KEY = ".rindle-doctor/base-url-probe"
_SECRET_FIX = ("set secret_key in rindle.toml (or RINDLE_SECRET_KEY) to a random value of 32+ "
               "characters: python -c 'import secrets; print(secrets.token_urlsafe(32))'")


@dataclass(frozen=True)
class Check:
    """One doctor finding. Plugins return these from ``rindle_doctor_checks``."""

    name: str
    status: str
    message: str
    fix: str | None = None
    component: str = "core"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "status": self.status, "message": self.message,
                "fix": self.fix, "component": self.component}


@dataclass
class DoctorReport(Report):
    """Every check in the order they ran."""

    checks: list[Check] = field(default_factory=list)

    @property
    def errors(self) -> int:
        """How many checks failed."""
        return sum(c.status == ERROR for c in self.checks)

    @property
    def warnings(self) -> int:
        """How many checks warned."""
        return sum(c.status == WARN for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"checks": [c.to_dict() for c in self.checks], "errors": self.errors,
                "warnings": self.warnings, "ok": self.errors == 0}

    def render(self) -> str:
        """The text block: one line per check, ``Fix:`` under each non-OK line."""
        lines = []
        for c in self.checks:
            lines.append(f"{c.status.upper():<5}  {c.name}: {c.message}")
            if c.status != OK and c.fix:
                lines.append(f"       Fix: {c.fix}")
        verdict = "failed" if self.errors else "passed"
        lines.append(f"doctor {verdict}: {len(self.checks)} checks, {self.errors} error(s), "
                     f"{self.warnings} warning(s)")
        return "\n".join(lines)


def _database(app: AppContext) -> list[Check]:
    missing = app.db.missing_file()
    if missing is not None:
        return [Check("database", ERROR, f"the SQLite database {str(missing)!r} does not exist "
                      "yet", "run `rindle migrate` to create it (or fix database_url if the "
                      "database is somewhere else)", "database")]
    try:
        app.db.check_connection()
    except RindleError as exc:
        fix = ("check that database_url in rindle.toml (or RINDLE_DATABASE_URL) names a "
               "SQLite file this user can read and write"
               if app.db.dialect_name == "sqlite" else
               "check database_url in rindle.toml (or RINDLE_DATABASE_URL), that the "
               "PostgreSQL server is running and that it accepts these credentials")
        return [Check("database", ERROR, exc.message.split(". Fix")[0], fix, "database")]
    out = [Check("database", OK, f"reachable at {app.db.redacted_url}", component="database")]
    current, head = app.db.current_revision(), app.db.head_revision()
    if current != head:
        out.append(Check("schema", ERROR, f"schema is at {current or 'nothing'}, rindle needs "
                         f"{head}", "rindle migrate", "database"))
    else:
        out.append(Check("schema", OK, f"at head ({head})", component="database"))
    return out


def _storages(app: AppContext) -> list[Check]:
    out = []
    for name in sorted(app.settings.storages):
        check = f"storage.{name}"
        if not app.settings.secret_key:
            out.append(Check(check, WARN, "not checked: storages are built with the "
                             "secret_key, and there is none", "set secret_key first (see the "
                             "secret_key check)", "storage"))
            continue
        try:
            storage = app.storage(name)
        except ConfigError as exc:
            out.append(Check(check, ERROR, f"cannot be built: {_short(exc)}",
                             f"correct [storages.{name}] in rindle.toml as the message says",
                             "storage"))
            continue
        except Exception as exc:
            out.append(Check(check, ERROR, f"cannot be built: {_short(exc)}",
                             f"check the settings in [storages.{name}] and that the "
                             f"{app.settings.storages[name].get('backend')} backend's plugin "
                             "is installed and up to date", "storage"))
            continue
        out.append(_writable(name, storage))
        if isinstance(storage, LocalStorage):
            out.append(probe_base_url(name, storage))
    return out


def _writable(name: str, storage: Any) -> Check:
    """Write, HEAD and delete a probe object; a local root that does not exist yet is not
    created (the nearest existing folder above it must be writable instead)."""
    check = f"storage.{name}"
    if isinstance(storage, LocalStorage) and not storage.root.exists():
        parent = _nearest_existing(storage.root)
        if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return Check(check, OK, f"local root {str(storage.root)!r} does not exist yet; the "
                         f"first upload creates it ({str(parent)!r} is writable)",
                         component="storage")
        return Check(check, ERROR, f"local root {str(storage.root)!r} does not exist and "
                     f"cannot be created: {str(parent)!r} is not a writable folder",
                     f"create {str(storage.root)!r} writable by this user, or set root in "
                     f"[storages.{name}] to a writable folder", "storage")
    key = f".rindle-doctor/{os.getpid()}-{time.time_ns()}.txt"
    try:
        storage.put(key, io.BytesIO(b"rindle doctor"), content_type="text/plain")
        storage.head(key)
        storage.delete(key)
    except Exception as exc:
        if isinstance(storage, LocalStorage):
            fix = (f"make {str(storage.root)!r} writable by the user rindle runs as, or set "
                   f"root in [storages.{name}] to a folder it can write")
        else:
            fix = (f"check that the bucket in [storages.{name}] exists and that the "
                   f"{storage.backend_name} credentials may write, read and delete in it")
        return Check(check, ERROR, f"cannot write: {_short(exc)}", fix, "storage")
    if isinstance(storage, LocalStorage):
        with contextlib.suppress(OSError):  # leave no empty probe folder behind
            os.rmdir(storage.root / ".rindle-doctor")
    return Check(check, OK, f"{storage.backend_name} storage is reachable and writable",
                 component="storage")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _http_get(url: str) -> tuple[int, str, str]:
    """GET ``url`` without proxies or redirects: (status, first 200 characters of the
    body, Location header). Raises ``OSError``/``http.client.HTTPException`` when there
    is no answer."""
    parts = urlsplit(url)
    conn_class = (http.client.HTTPSConnection if parts.scheme == "https"
                  else http.client.HTTPConnection)
    conn = conn_class(parts.hostname or "", parts.port, timeout=BASE_URL_TIMEOUT)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                     headers={"User-Agent": "rindle-doctor"})
        response = conn.getresponse()
        body = response.read(512).decode("utf-8", "replace")
        return response.status, body.strip()[:200], response.getheader("Location") or ""
    finally:
        conn.close()


def probe_base_url(name: str, storage: LocalStorage) -> Check:
    """Check that ``storage``'s signed URLs reach a server that accepts them.

    Two GETs of a probe key under ``base_url`` + ``url_prefix`` (nothing is stored):
    without a token, rindle's media route answers 403 ``forbidden: missing_token`` (a
    404 means no rindle media route is there: wrong base_url, url_prefix or mount); with
    a token signed by this app, it answers 404 (the key is no asset) or 200, while 403
    means the server verifies with another secret_key. No answer at all is a WARN (the
    server may simply not run where doctor runs); a wrong server is an ERROR. The check
    is named ``storage.<name>.base_url``.
    """
    check = f"storage.{name}.base_url"
    signed = storage.url(_PROBE_KEY, expires_in=300)
    route = signed.split("?", 1)[0]
    where = f"{storage.base_url}{storage.url_prefix}/"
    serve_fix = (f"start `rindle serve` with this configuration (it listens on "
                 f"127.0.0.1:8765 unless --host/--port say otherwise) or mount "
                 f"rindle.delivery.wsgi_app(app) in your web app, and set base_url in "
                 f"[storages.{name}] to the address browsers reach it at (a mount's path "
                 "included)")
    try:
        status, body, location = _http_get(route)
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return Check(check, WARN, f"nothing answers at {storage.base_url} ({reason}): "
                     "this storage's signed URLs fail until something does", serve_fix,
                     "storage")
    if 300 <= status < 400:
        return Check(check, WARN, f"{where} redirects (HTTP {status} to {location or '?'}); "
                     "signed URLs must not be redirected", f"set base_url in "
                     f"[storages.{name}] to the address that answers without a redirect",
                     "storage")
    if not (status == 403 and body.startswith("forbidden")):
        return Check(check, ERROR, f"{where} is not a rindle media route: a request "
                     f"without a token got HTTP {status}, not 403 forbidden (a wrong "
                     "base_url, url_prefix or mount path)", f"set base_url (with the mount's "
                     f"path) and url_prefix in [storages.{name}] to where `rindle serve` or "
                     "the rindle.delivery.wsgi_app mount serves this storage", "storage")
    try:
        status, body, _ = _http_get(signed)
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return Check(check, WARN, f"{where} stopped answering ({reason})", serve_fix,
                     "storage")
    if status == 403:
        return Check(check, ERROR, f"the server at {where} refuses URLs signed by this app "
                     f"({body or 'HTTP 403'}): it runs with another secret_key, or base_url "
                     "points at another app's server", f"run the server at {storage.base_url} "
                     "with this configuration's secret_key, or set base_url in "
                     f"[storages.{name}] to the server that uses it", "storage")
    if status not in (200, 404):
        return Check(check, WARN, f"the server at {where} answered a signed probe with HTTP "
                     f"{status}", f"check the server behind base_url in [storages.{name}]",
                     "storage")
    return Check(check, OK, f"{where} serves this storage: it accepts URLs signed with this "
                 "secret_key", component="storage")


def _plugins(app: AppContext) -> list[Check]:
    from rindle.plugins import list_plugins

    names = [p.name for p in list_plugins(app.pm)]
    out = [Check("plugins", OK, f"{len(names)} loaded: {', '.join(names)}", component="plugins")]
    for impl in app.pm.hook.rindle_doctor_checks.get_hookimpls():
        plugin = app.pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            answer: Any = impl.function(app=app)
            found: list[Any] = list(answer or [])
            out.extend(c if isinstance(c, Check) else Check(
                f"plugin.{plugin}", WARN, f"returned {c!r}, not a Check",
                f"report it to the {plugin} plugin's authors (or upgrade the plugin)", plugin)
                for c in found)
        except Exception as exc:
            out.append(Check(f"plugin.{plugin}", ERROR, f"its doctor check raised: "
                             f"{_short(exc)}", f"check the {plugin} plugin's settings, or "
                             "upgrade the plugin", plugin))
    return out


def _profiles(app: AppContext) -> list[Check]:
    if not app.profiles:
        return [Check("profiles", WARN, "no profiles configured",
                      "list your Profile classes under `profiles` in rindle.toml",
                      "profiles")]
    out = []
    for name, prof in sorted(app.profiles.items()):
        kinds = {spec.kind for _, spec in prof.variant_specs()}
        av = sorted(kinds - {"image"})
        if av and len(app.pm.hook.rindle_transcode.get_hookimpls()) < 2:
            out.append(Check(f"profile.{name}", WARN,
                             f"declares {', '.join(av)} variants but only the image "
                             "processor is installed", "pip install rindle-ffmpeg", "profiles"))
        else:
            out.append(Check(f"profile.{name}", OK,
                             f"{len(prof.variant_specs())} variant(s), storage "
                             f"{prof.storage!r}", component="profiles"))
    return out


def _drift(app: AppContext) -> list[Check]:
    drifted = 0
    with app.db.sessionmaker() as s:
        for prof in app.profiles.values():
            for vname, _ in prof.variant_specs():
                drifted += s.scalar(
                    select(func.count()).select_from(Variant).join(
                        Asset, Asset.id == Variant.asset_id).where(
                        Asset.profile == prof.name, Variant.name == vname,
                        Variant.state == "ready",
                        Variant.recipe_digest != prof.recipe_digest(vname))) or 0
    if drifted:
        return [Check("recipe_drift", WARN, f"{drifted} ready variant(s) were rendered from "
                      "an older recipe", "rindle regenerate-variants", "variants")]
    return [Check("recipe_drift", OK, "every ready variant matches its profile's recipe",
                  component="variants")]


def _secret(app: AppContext) -> list[Check]:
    secret = app.settings.secret_key
    if not secret:
        return [Check("secret_key", ERROR, "no secret_key: URLs cannot be signed and no "
                      "storage can be built", _SECRET_FIX, "security")]
    if secret.lower() in _SAMPLE_SECRETS or len(secret) < 16:
        return [Check("secret_key", WARN, "secret_key is short or a sample value",
                      _SECRET_FIX, "security")]
    return [Check("secret_key", OK, "configured", component="security")]


def _cron(app: AppContext) -> list[Check]:
    """The ``[cron]`` schedule as ``rindle worker`` reads it at start: a bad expression or
    an unregistered kind is an ERROR here instead of a worker that refuses to start."""
    from rindle.jobs.cron import parse_schedule

    try:
        entries = parse_schedule(app.settings.cron, app.jobs)
    except ConfigError as exc:
        return [Check("cron", ERROR, exc.message,
                      "fix that entry of [cron] in rindle.toml: `rindle worker` refuses to start "
                      "until then (`rindle worker --no-cron` runs without the schedule)",
                      "jobs")]
    names = ", ".join(e.name for e in entries)
    return [Check("cron", OK, f"{len(entries)} scheduled job(s){': ' + names if names else ''}",
                  component="jobs")]


def _tmp_dir(app: AppContext) -> list[Check]:
    fix = "set tmp_dir in rindle.toml (or RINDLE_TMP_DIR) to a folder this user can write"
    try:
        root = app.settings.resolved_tmp_dir
    except ConfigError as exc:
        return [Check("tmp_dir", ERROR, exc.message, fix, "processing")]
    if not root.exists():
        parent = _nearest_existing(root)
        if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return [Check("tmp_dir", OK, f"{root} does not exist yet; the first run creates "
                          f"it ({parent} is writable)", component="processing")]
        return [Check("tmp_dir", ERROR, f"{root} does not exist and cannot be created: "
                      f"{parent} is not a writable folder", fix, "processing")]
    try:
        with tempfile.NamedTemporaryFile(dir=root):
            pass
        return [Check("tmp_dir", OK, f"{root} is writable", component="processing")]
    except OSError as exc:
        return [Check("tmp_dir", ERROR, f"{root} is not writable: {exc.strerror}", fix,
                      "processing")]


def _workers(app: AppContext) -> list[Check]:
    with app.db.sessionmaker() as s:
        fresh = s.scalar(select(func.count()).select_from(WorkerHeartbeat).where(
            WorkerHeartbeat.last_seen_at > utcnow() - HEARTBEAT_FRESH)) or 0
        waiting = s.scalar(select(func.count()).select_from(Job).where(
            Job.state.in_(("available", "retryable")))) or 0
    if fresh:
        return [Check("workers", OK, f"{fresh} worker(s) seen in the last minute; "
                      f"{waiting} job(s) waiting", component="jobs")]
    return [Check("workers", WARN, f"no worker seen in the last minute; {waiting} job(s) "
                  "waiting", "run `rindle worker` (or app.worker().run()) next to your app",
                  "jobs")]


def _short(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, RindleError) else str(exc)
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def doctor(app: AppContext) -> DoctorReport:
    """Run every check; never raises for a failed check (it becomes an ERROR line).

    No check's message or fix shows the database password or a secret query parameter.
    """
    report = DoctorReport()
    db_ok = True
    steps: list[tuple[str, Callable[[AppContext], list[Check]], bool]] = [
        ("database", _database, False), ("secret_key", _secret, False),
        ("storages", _storages, False), ("tmp_dir", _tmp_dir, False),
        ("plugins", _plugins, False), ("profiles", _profiles, False), ("cron", _cron, False),
        ("recipe_drift", _drift, True), ("workers", _workers, True),
    ]
    for name, step, needs_db in steps:
        if needs_db and not db_ok:
            report.checks.append(Check(name, WARN, "skipped: the database is not ready",
                                       "fix the database errors above first", "database"))
            continue
        started = time.monotonic()
        try:
            found = step(app)
        except Exception as exc:
            found = [Check(name, ERROR, f"check crashed: {_short(exc)}",
                           "fix what the message names and run doctor again; if it names "
                           "nothing you configured, report it as a rindle bug", "core")]
        if step is _database:
            db_ok = all(c.status == OK for c in found)
        for c in found:
            app.telemetry.emit("rindle.runtime.check.stop",
                               {"duration_us": int((time.monotonic() - started) * 1e6)},
                               {"check": c.name, "status": c.status, "component": c.component})
        report.checks.extend(_scrubbed(app, c) for c in found)
    return report


def _scrubbed(app: AppContext, check: Check) -> Check:
    """``check`` with the database URL's secrets removed from its message and fix (driver
    and plugin text can quote a connection string)."""
    message = app.db.scrub(check.message)
    fix = app.db.scrub(check.fix) if check.fix is not None else None
    if message == check.message and fix == check.fix:
        return check
    return dataclasses.replace(check, message=message, fix=fix)
