"""doctor checks [cron] as `rindle worker` reads it at start, so a schedule that would stop
the worker from starting is an ERROR before anyone starts one (SQLite and PostgreSQL)."""

from __future__ import annotations

from rindle.ops.doctor import ERROR, OK
from tests.apps import MakeApp


def cron_check(make_app: MakeApp, cron: dict[str, object]) -> tuple[str, str, str | None]:
    [check] = [c for c in make_app(cron=cron).ops.doctor().checks if c.name == "cron"]
    return check.status, check.message, check.fix


FIX = ("fix that entry of [cron] in rindle.toml: `rindle worker` refuses to start until then "
       "(`rindle worker --no-cron` runs without the schedule)")


def test_a_valid_schedule_is_listed(make_app: MakeApp) -> None:
    assert cron_check(make_app, {}) == (OK, "0 scheduled job(s)", None)
    assert cron_check(make_app, {"abort_incomplete_uploads": "0 1 * * *",
                                 "cleanup_orphans": {"schedule": "0 2 * * *",
                                                     "dry_run": False}}) == (
        OK, "2 scheduled job(s): abort_incomplete_uploads, cleanup_orphans", None)


def test_a_bad_expression_or_kind_is_an_error_naming_the_entry(make_app: MakeApp) -> None:
    assert cron_check(make_app, {"abort_incomplete_uploads": "bogus"}) == (
        ERROR, "[cron] abort_incomplete_uploads: cron expression 'bogus' needs 5 fields, got 1",
        FIX)
    status, message, fix = cron_check(make_app, {"nope_job": "0 1 * * *"})
    assert (status, fix) == (ERROR, FIX)
    assert message.startswith(
        "[cron] nope_job: job kind 'rindle.maintenance.nope_job' is not registered; known "
        "kinds: rindle.maintenance.abort_incomplete_uploads")
