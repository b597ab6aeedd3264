"""Cron expressions and scheduling without double runs."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, func, select

from rindle.domain.models import Job
from rindle.errors import ConfigError
from rindle.jobs.cron import CATCH_UP, CronExpression, parse_schedule, schedule_due

UTC = dt.UTC
_T: Table = Job.__table__  # type: ignore[assignment]


def test_parse_fields() -> None:
    expr = CronExpression.parse("*/15 1-3 * * 1,5")
    assert expr.minute == frozenset({0, 15, 30, 45})
    assert expr.hour == frozenset({1, 2, 3})
    assert expr.weekday == frozenset({1, 5})
    assert CronExpression.parse("5/20 0 1-10/3 * *").minute == frozenset({5, 25, 45})
    assert CronExpression.parse("0 0 1-10/3 * *").day == frozenset({1, 4, 7, 10})


@pytest.mark.parametrize(("text", "days"), [
    ("7", {0}), ("5-7", {5, 6, 0}), ("0-7", set(range(7))), ("1-7/2", {1, 3, 5, 0}),
    ("SUN,mon", {0, 1}), ("mon-fri", {1, 2, 3, 4, 5})])
def test_weekday_names_and_seven_is_sunday(text: str, days: set[int]) -> None:
    assert CronExpression.parse(f"0 0 * * {text}").weekday == frozenset(days)


def test_months_by_name() -> None:
    assert CronExpression.parse("0 0 1 jan,Jul-aug *").month == frozenset({1, 7, 8})


@pytest.mark.parametrize("bad", ["* * * *", "61 * * * *", "a * * * *", "*/0 * * * *",
                                 "5-1 * * * *", "1,,2 * * * *", "* 24 * * *", "* * 0 * *",
                                 "* * * 13 *", "* * * * 8", "* * * * * *"])
def test_bad_expressions(bad: str) -> None:
    with pytest.raises(ValueError):
        CronExpression.parse(bad)


def test_day_and_weekday_combine_like_classic_cron() -> None:
    friday_13th = dt.datetime(2026, 2, 13, 4, 5, tzinfo=UTC)
    friday_6th = dt.datetime(2026, 2, 6, 4, 5, tzinfo=UTC)
    monday_13th = dt.datetime(2026, 4, 13, 4, 5, tzinfo=UTC)
    both = CronExpression.parse("5 4 13 * 5")  # both restricted: either matches
    assert both.matches(friday_13th) and both.matches(friday_6th) and both.matches(monday_13th)
    star = CronExpression.parse("5 4 */1 * 5")  # one starts with "*": both must match
    assert star.matches(friday_6th) and not star.matches(monday_13th)


def _field(lo: int, hi: int) -> st.SearchStrategy[str]:
    num = st.integers(lo, hi)
    base = st.one_of(st.just("*"), num.map(str),
                     st.tuples(num, num).map(lambda ab: f"{min(ab)}-{max(ab)}"))
    stepped = st.tuples(base, st.integers(1, hi - lo + 1)).map(lambda t: f"{t[0]}/{t[1]}")
    return st.lists(st.one_of(base, stepped), min_size=1, max_size=3).map(",".join)


def _reference(text: str, lo: int, hi: int) -> set[int]:
    """The field's meaning, spelled out the slow way (bounds as in cronie)."""
    out: set[int] = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        if base == "*":
            values = list(range(lo, hi + 1))
        elif "-" in base:
            a, b = map(int, base.split("-"))
            values = list(range(a, b + 1))
        else:
            values = list(range(int(base), hi + 1)) if step else [int(base)]
        out.update(values[:: int(step or 1)])
    return out if hi != 7 else {d % 7 for d in out}  # weekday 7 is Sunday


# days stop at 28 so every generated expression fires in every month
EXPRESSIONS = st.tuples(_field(0, 59), _field(0, 23), _field(1, 28), _field(1, 12),
                        _field(0, 6))


@settings(max_examples=150, deadline=None)
@given(EXPRESSIONS)
def test_fields_expand_as_specified(fields: tuple[str, ...]) -> None:
    expr = CronExpression.parse(" ".join(fields))
    bounds = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    got = [expr.minute, expr.hour, expr.day, expr.month, expr.weekday]
    for text, (lo, hi), values in zip(fields, bounds, got, strict=True):
        assert values == _reference(text, lo, hi)


@settings(max_examples=150, deadline=None)
@given(EXPRESSIONS, st.datetimes(min_value=dt.datetime(2020, 1, 1),
                                 max_value=dt.datetime(2030, 1, 1)), st.booleans())
def test_next_fire_is_the_first_matching_minute_after_now(
        fields: tuple[str, ...], when: dt.datetime, on_the_minute: bool) -> None:
    expr = CronExpression.parse(" ".join(fields))
    now = when.replace(tzinfo=UTC)
    if on_the_minute:
        now = now.replace(second=0, microsecond=0)
    nxt = expr.next_fire(now)
    assert nxt > now and expr.matches(nxt) and nxt.second == 0 == nxt.microsecond
    probe = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    while probe < min(nxt, now + dt.timedelta(days=2)):  # nothing matches in between
        assert not expr.matches(probe)
        probe += dt.timedelta(minutes=1)


def test_seed_schedule_table_parses_and_bad_entries_are_refused(app: Any) -> None:
    table = {"abort_incomplete_uploads": "0 1 * * *",
             "cleanup_orphans": {"schedule": "0 2 * * *", "dry_run": False}}
    entries = parse_schedule(table, app.jobs)
    assert entries[1].args == {"dry_run": False}
    assert entries[0].kind == "rindle.maintenance.abort_incomplete_uploads"
    with pytest.raises(ConfigError, match=r"\[cron\] mystery: job kind .* is not registered"):
        parse_schedule({"mystery": "0 1 * * *"}, app.jobs)
    with pytest.raises(ConfigError, match=r"\[cron\] x: .*needs 5 fields"):
        parse_schedule({"x": "0 1 *"})
    with pytest.raises(ConfigError, match=r"\[cron\] never: .*never fires"):
        parse_schedule({"never": "0 0 31 2 *"})
    with pytest.raises(ConfigError, match=r"\[cron\] y: needs schedule"):
        parse_schedule({"y": {"dry_run": True}})


def _count(app: Any) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(_T)).scalar_one())


def test_a_slot_is_scheduled_once_even_after_it_ran(app: Any) -> None:
    entries = parse_schedule({"noop": {"schedule": "*/5 * * * *", "kind": "rindle.noop"}},
                             app.jobs)
    slot = dt.datetime(2026, 1, 1, 10, 5, 20, tzinfo=UTC)
    assert schedule_due(app.jobs, entries, slot) == 1
    assert schedule_due(app.jobs, entries, slot + dt.timedelta(seconds=20)) == 0
    app.jobs.drain()
    assert schedule_due(app.jobs, entries, slot) == 0  # even after the first run finished
    assert schedule_due(app.jobs, entries, slot + dt.timedelta(minutes=1)) == 0  # not a slot
    assert schedule_due(app.jobs, entries, slot + dt.timedelta(minutes=5)) == 1
    with app.db.engine.connect() as conn:
        keys = sorted(conn.execute(select(_T.c.unique_key)).scalars())
    assert keys == ["cron:noop:2026-01-01T10:05:00+00:00", "cron:noop:2026-01-01T10:10:00+00:00"]


def test_a_late_tick_catches_up_the_latest_missed_slot(app: Any) -> None:
    entries = parse_schedule({"noop": {"schedule": "0 * * * *", "kind": "rindle.noop"}},
                             app.jobs)
    before = dt.datetime(2026, 1, 1, 9, 59, 50, tzinfo=UTC)
    late = dt.datetime(2026, 1, 1, 10, 0, 40, tzinfo=UTC)
    assert schedule_due(app.jobs, entries, late, since=before) == 1  # 10:00 not skipped
    assert schedule_due(app.jobs, entries, late.replace(minute=1), since=late) == 0
    asleep = late + CATCH_UP * 5  # one catch-up run, not one per missed hour
    assert schedule_due(app.jobs, entries, asleep, since=late) == 1
    assert _count(app) == 2


def test_two_workers_never_double_schedule_a_slot(make_app: Any) -> None:
    apps = [make_app(), make_app()]  # two engines, as two worker processes would have
    table = {"every": {"schedule": "* * * * *", "kind": "rindle.noop"}}
    entries = [parse_schedule(table, a.jobs) for a in apps]
    start = dt.datetime(2026, 3, 1, 0, 0, 30, tzinfo=UTC)
    made = [0, 0]
    barrier = threading.Barrier(2)

    def scheduler(i: int) -> None:
        for minute in range(15):
            barrier.wait(30)
            made[i] += schedule_due(apps[i].jobs, entries[i],
                                    start + dt.timedelta(minutes=minute))
            if minute % 3 == 0:  # some slots finish before the other worker looks
                apps[i].jobs.drain()

    threads = [threading.Thread(target=scheduler, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(made) == 15 and _count(apps[0]) == 15
    with apps[0].db.engine.connect() as conn:
        keys = conn.execute(select(_T.c.unique_key)).scalars().all()
    assert len(set(keys)) == 15
