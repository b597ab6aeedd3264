"""doctor and runtime-status on SQLite and PostgreSQL, and the telemetry contract."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from rindle import Rindle, hookimpl
from rindle.database import Database
from rindle.domain.models import Variant, utcnow
from rindle.errors import SchemaOutOfDate, UsageError
from rindle.ops.doctor import Check
from tests.ops.conftest import PROFILES


def statuses(report: Any) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_doctor_on_a_healthy_setup(opsapp: Rindle) -> None:
    report = opsapp.ops.doctor()
    got = statuses(report)
    assert got["database"] == got["schema"] == got["storage.default"] == "ok"
    assert got["secret_key"] == "warn"       # "test-secret" is short
    assert got["workers"] == "warn"          # no worker running
    assert report.errors == 0 and report.exit_code == 0
    assert "Fix: run `rindle worker`" in report.render()


def test_doctor_reports_drift_and_worker_heartbeats(opsapp: Rindle,
                                                    seed: Callable[..., Any]) -> None:
    seed(2, digest="a" * 64)
    worker = opsapp.worker({"process": 1}, cron=False)
    worker._beat()
    got = statuses(opsapp.ops.doctor())
    assert got["recipe_drift"] == "warn" and got["workers"] == "ok"


def test_doctor_finds_an_unmigrated_database(make_app: Any, db_url: str) -> None:
    Database(db_url).downgrade("base")
    report = make_app().ops.doctor()
    assert statuses(report)["schema"] == "error" and report.exit_code == 1
    assert "Fix: rindle migrate" in report.render()
    assert statuses(report)["workers"] == "warn"  # skipped, not crashed


def test_doctor_without_a_database_hides_the_password(tmp_path: Path) -> None:
    app = Rindle(database_url="postgresql://ops:hunter2@127.0.0.1:1/x", secret_key="s" * 32,
                 storages={"default": {"backend": "local", "root": str(tmp_path)}},
                 load_entrypoints=False)
    report = app.ops.doctor()
    assert statuses(report)["database"] == "error" and report.exit_code == 1
    assert "hunter2" not in report.render() and "hunter2" not in str(report.to_dict())


def test_doctor_unwritable_storage_is_an_error(make_app: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    app = make_app(storages={"default": {"backend": "local", "root": str(blocker / "media")}})
    assert statuses(app.ops.doctor())["storage.default"] == "error"


class PluginChecks:
    @hookimpl
    def rindle_doctor_checks(self, app: Rindle) -> list[Check]:
        return [Check("plugin.cdn", "warn", "cache purge key missing", "set CDN_KEY", "cdn")]


class BrokenChecks:
    @hookimpl
    def rindle_doctor_checks(self, app: Rindle) -> list[Check]:
        raise RuntimeError("boom")


def test_plugin_checks_and_crashing_plugins(opsapp: Rindle) -> None:
    opsapp.pm.register(PluginChecks(), name="cdn")
    opsapp.pm.register(BrokenChecks(), name="broken")
    got = statuses(opsapp.ops.doctor())
    assert got["plugin.cdn"] == "warn" and got["plugin.broken"] == "error"


def test_runtime_status_reports_stuck_and_failed_work(opsapp: Rindle,
                                                      seed: Callable[..., Any]) -> None:
    seed(3, state="failed")
    seed(2, state="queued")
    with opsapp.db.transaction() as s:
        s.execute(update(Variant).where(Variant.state == "queued")
                  .values(updated_at=utcnow() - dt.timedelta(hours=3)))
    report = opsapp.ops.runtime_status(limit=2)
    assert report.failed_variant_count == 6 and len(report.failed_variants) == 2
    assert report.stuck_variant_count == 4 and len(report.stuck_variants) == 2
    assert any(r.startswith("rindle requeue ") for r in report.recommendations)
    assert any(r.startswith("rindle worker") for r in report.recommendations)
    text = report.render()
    assert "failed    6 variant(s)" in text
    assert opsapp.ops.runtime_status(profile="docs").failed_variant_count == 0


def test_runtime_status_refuses_before_querying(make_app: Any, db_url: str) -> None:
    app = make_app(profiles=PROFILES)
    seen: list[tuple[str, dict[str, Any]]] = []
    app.telemetry.attach(lambda e, m, md: seen.append((e, md)))
    with pytest.raises(UsageError):
        app.ops.runtime_status(profile="nope")
    Database(db_url).downgrade("base")
    with pytest.raises(SchemaOutOfDate):
        app.ops.runtime_status()
    refusals = [md for e, md in seen if e == "rindle.runtime.refusal"]
    assert refusals[-1] == {"surface": "runtime_status", "reason": "schema_not_ready",
                            "mode": "api"}


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CONTRACT = {
    "rindle.repair.start": {"operation", "scope", "result", "dry_run"},
    "rindle.repair.stop": {"operation", "scope", "result", "dry_run"},
    "rindle.runtime.check.stop": {"check", "status", "component"},
    "rindle.runtime.refusal": {"surface", "reason", "mode"},
    "rindle.cleanup.run": {"profile", "adapter", "worker", "dry_run"},
}


def test_telemetry_contract(opsapp: Rindle, seed: Callable[..., Any]) -> None:
    seen: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    opsapp.telemetry.attach(lambda e, m, md: seen.append((e, m, md)))
    [asset] = seed(1, state="failed")
    opsapp.ops.doctor()
    opsapp.ops.regenerate_variants()
    opsapp.ops.verify_storage()
    opsapp.requeue_variants(asset.id)
    with pytest.raises(UsageError):
        opsapp.ops.runtime_status(limit=0)
    opsapp.jobs.enqueue_now("rindle.maintenance.cleanup_orphans", {"dry_run": True})
    opsapp.jobs.enqueue_now("rindle.maintenance.abort_incomplete_uploads", {})
    opsapp.jobs.drain(["maintenance"])
    names = {e for e, _, _ in seen}
    assert set(CONTRACT) <= names
    for event, measurements, metadata in seen:
        assert all(isinstance(v, (int, float)) for v in measurements.values()), event
        if event in CONTRACT:
            allowed = CONTRACT[event]
            if event == "rindle.cleanup.run" and metadata["worker"] != "cleanup_orphans":
                allowed = allowed - {"dry_run"}
            assert set(metadata) == allowed, event
        for value in metadata.values():
            assert not UUID_RE.search(str(value)), (event, metadata)
        if event.endswith(".state_change"):
            assert {"profile", "adapter", "from", "to"} <= set(metadata)
    for wrong in ("rindle.cleanup.ran", "rindle.repair.ran", "rindle.runtime.denied"):
        assert wrong not in names
