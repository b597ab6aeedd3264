"""Cron expressions and scheduling without double runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from rindle.domain.models import Job
from rindle.errors import ConfigError
from rindle.jobs.cron import CronExpression, parse_schedule, schedule_due

UTC = dt.UTC


def test_parse_fields() -> None:
    expr = CronExpression.parse("*/15 1-3 * * 1,5")
    assert expr.minute == frozenset({0, 15, 30, 45})
    assert expr.hour == frozenset({1, 2, 3})
    assert expr.weekday == frozenset({1, 5})


@pytest.mark.parametrize("bad", ["* * * *", "61 * * * *", "a * * * *", "*/0 * * * *",
                                 "5-1 * * * *"])
def test_bad_expressions(bad: str) -> None:
    with pytest.raises(ValueError):
        CronExpression.parse(bad)


EXPRS = ["0 1 * * *", "30 2 * * *", "*/7 * * * *", "0 0 1 * *", "15 4 * * 0", "0 3 * * 1-5",
         "0 0 29 2 *", "5 4 13 * 5"]


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(EXPRS),
       st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1)))
def test_next_after_is_later_and_matches(text: str, when: dt.datetime) -> None:
    expr = CronExpression.parse(text)
    start = when.replace(tzinfo=UTC)
    nxt = expr.next_after(start)
    assert nxt > start and expr.matches(nxt)
    probe = start.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    steps = 0
    while probe < nxt and steps < 600:  # nothing matches in between (checked near start)
        assert not expr.matches(probe)
        probe += dt.timedelta(minutes=1)
        steps += 1


def test_seed_schedule_table_parses_and_unknown_kinds_are_refused(app: Any) -> None:
    table = {"abort_incomplete_uploads": "0 1 * * *",
             "cleanup_orphans": {"schedule": "0 2 * * *", "dry_run": False}}
    entries = parse_schedule(table)
    assert entries[1].args == {"dry_run": False}
    assert entries[0].kind == "rindle.maintenance.abort_incomplete_uploads"
    with pytest.raises(ConfigError, match="not registered"):
        parse_schedule({"mystery": "0 1 * * *"}, app.jobs)
    with pytest.raises(ConfigError, match="needs 5 fields"):
        parse_schedule({"x": "0 1 *"})


def test_two_workers_never_double_schedule_a_slot(app: Any) -> None:
    entries = parse_schedule({"noop": {"schedule": "*/5 * * * *", "kind": "rindle.noop"}},
                             app.jobs)
    slot = dt.datetime(2026, 1, 1, 10, 5, 20, tzinfo=UTC)
    assert schedule_due(app.jobs, entries, slot) == 1
    assert schedule_due(app.jobs, entries, slot + dt.timedelta(seconds=20)) == 0
    app.jobs.drain()
    assert schedule_due(app.jobs, entries, slot) == 0  # even after the first run finished
    assert schedule_due(app.jobs, entries, slot + dt.timedelta(minutes=1)) == 0  # not a slot
    assert schedule_due(app.jobs, entries, slot + dt.timedelta(minutes=5)) == 1
    with app.db.sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 2
