"""``doctor``: setup and drift checks, each OK / WARN / ERROR with a fix.

Read-only except for a tiny probe object written to (and removed from) each storage to
prove it is writable. Works when the database is unreachable or unmigrated: those become
ERROR lines, the remaining database checks are skipped with a note.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from rindle.domain.models import Asset, Job, Variant, WorkerHeartbeat, utcnow
from rindle.errors import RindleError
from rindle.ops.report import Report

if TYPE_CHECKING:
    from rindle.app import Rindle

__all__ = ["Check", "DoctorReport", "doctor"]

OK, WARN, ERROR = "ok", "warn", "error"
HEARTBEAT_FRESH = dt.timedelta(seconds=60)
_SAMPLE_SECRETS = {"change-me", "secret", "test", "dev"}


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


def _database(app: Rindle) -> list[Check]:
    try:
        app.db.check_connection()
    except RindleError as exc:
        return [Check("database", ERROR, exc.message.split(". Fix")[0],
                      "set database_url in rindle.toml (or RINDLE_DATABASE_URL) and start "
                      "the server", "database")]
    out = [Check("database", OK, f"reachable at {app.db.redacted_url}", component="database")]
    current, head = app.db.current_revision(), app.db.head_revision()
    if current != head:
        out.append(Check("schema", ERROR, f"schema is at {current or 'nothing'}, rindle needs "
                         f"{head}", "rindle migrate", "database"))
    else:
        out.append(Check("schema", OK, f"at head ({head})", component="database"))
    return out


def _storages(app: Rindle) -> list[Check]:
    out = []
    for name in sorted(app.settings.storages):
        try:
            storage = app.storage(name)
            key = f".rindle-doctor/{os.getpid()}-{time.time_ns()}.txt"
            storage.put(key, io.BytesIO(b"rindle doctor"), content_type="text/plain")
            storage.head(key)
            storage.delete(key)
            out.append(Check(f"storage.{name}", OK,
                             f"{storage.backend_name} storage is reachable and writable",
                             component="storage"))
        except Exception as exc:
            out.append(Check(f"storage.{name}", ERROR, f"cannot write: {_short(exc)}",
                             f"check [storages.{name}] in rindle.toml (path, bucket, "
                             "credentials)", "storage"))
    return out


def _plugins(app: Rindle) -> list[Check]:
    from rindle.plugins import list_plugins

    names = [p.name for p in list_plugins(app.pm)]
    out = [Check("plugins", OK, f"{len(names)} loaded: {', '.join(names)}", component="plugins")]
    for impl in app.pm.hook.rindle_doctor_checks.get_hookimpls():
        plugin = app.pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            answer: Any = impl.function(app=app)
            found: list[Any] = list(answer or [])
            out.extend(c if isinstance(c, Check) else Check(
                f"plugin.{plugin}", WARN, f"returned {c!r}, not a Check", component=plugin)
                for c in found)
        except Exception as exc:
            out.append(Check(f"plugin.{plugin}", ERROR, f"its doctor check raised: "
                             f"{_short(exc)}", "upgrade or reconfigure the plugin", plugin))
    return out


def _profiles(app: Rindle) -> list[Check]:
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


def _drift(app: Rindle) -> list[Check]:
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


def _secret(app: Rindle) -> list[Check]:
    secret = app.settings.secret_key
    if not secret:
        return [Check("secret_key", ERROR, "no secret_key: URLs cannot be signed",
                      "run `rindle init` or set RINDLE_SECRET_KEY", "security")]
    if secret.lower() in _SAMPLE_SECRETS or len(secret) < 16:
        return [Check("secret_key", WARN, "secret_key is short or a sample value",
                      "set a random secret of 32+ characters (python -c 'import secrets; "
                      "print(secrets.token_urlsafe(32))')", "security")]
    return [Check("secret_key", OK, "configured", component="security")]


def _tmp_dir(app: Rindle) -> list[Check]:
    root = app.settings.resolved_tmp_dir
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root):
            pass
        return [Check("tmp_dir", OK, f"{root} is writable", component="processing")]
    except OSError as exc:
        return [Check("tmp_dir", ERROR, f"{root} is not writable: {exc.strerror}",
                      "set tmp_dir in rindle.toml to a writable folder", "processing")]


def _workers(app: Rindle) -> list[Check]:
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


def doctor(app: Rindle) -> DoctorReport:
    """Run every check; never raises for a failed check (it becomes an ERROR line).

    No check's message or fix shows the database password or a secret query parameter.
    """
    report = DoctorReport()
    db_ok = True
    steps: list[tuple[str, Callable[[Rindle], list[Check]], bool]] = [
        ("database", _database, False), ("secret_key", _secret, False),
        ("storages", _storages, False), ("tmp_dir", _tmp_dir, False),
        ("plugins", _plugins, False), ("profiles", _profiles, False),
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
            found = [Check(name, ERROR, f"check crashed: {_short(exc)}", component="core")]
        if step is _database:
            db_ok = all(c.status == OK for c in found)
        for c in found:
            app.telemetry.emit("rindle.runtime.check.stop",
                               {"duration_us": int((time.monotonic() - started) * 1e6)},
                               {"check": c.name, "status": c.status, "component": c.component})
        report.checks.extend(_scrubbed(app, c) for c in found)
    return report


def _scrubbed(app: Rindle, check: Check) -> Check:
    """``check`` with the database URL's secrets removed from its message and fix (driver
    and plugin text can quote a connection string)."""
    message = app.db.scrub(check.message)
    fix = app.db.scrub(check.fix) if check.fix is not None else None
    if message == check.message and fix == check.fix:
        return check
    return dataclasses.replace(check, message=message, fix=fix)
