"""rindle.clock: the system clock is aware UTC; a ManualClock moves only when told to."""

from __future__ import annotations

import datetime as dt

import pytest

from rindle import Rindle
from rindle.clock import ManualClock, system_clock

START = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def test_system_clock_is_aware_utc() -> None:
    now = system_clock()
    assert now.tzinfo is not None and now.utcoffset() == dt.timedelta(0)


def test_a_manual_clock_stands_still_until_moved() -> None:
    clock = ManualClock(START)
    assert clock() == clock() == START
    assert clock.advance(1.5) == START + dt.timedelta(seconds=1.5)
    assert clock.advance(dt.timedelta(minutes=1)) == START + dt.timedelta(seconds=61.5)
    clock.set(START)
    assert clock() == START
    other = dt.timezone(dt.timedelta(hours=2))
    clock.set(dt.datetime(2026, 1, 1, 14, 0, tzinfo=other))
    assert clock() == START and clock().tzinfo == dt.UTC
    assert "2026-01-01T12:00:00+00:00" in repr(clock)


def test_a_manual_clock_refuses_naive_times_and_going_back() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(dt.datetime(2026, 1, 1))
    clock = ManualClock(START)
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
    assert clock() == START


def test_the_queue_stamps_jobs_with_its_clock(app: Rindle) -> None:
    clock = app.jobs.clock = ManualClock(START)
    app.jobs.register("t.ok", lambda app, job: None, queue="process")
    app.jobs.enqueue_now("t.ok", {})
    [job] = app.jobs.claim(["process"], "w", lease_seconds=10)
    assert app.jobs.claim(["process"], "thief") == []
    clock.advance(10)  # the lease ends at START + 10 s: not yet expired
    assert not app.jobs.has_due(["process"])
    clock.advance(0.001)
    assert app.jobs.has_due(["process"])
    [again] = app.jobs.claim(["process"], "thief")
    assert again.id == job.id and again.attempt == 2
