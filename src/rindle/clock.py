"""The time the job queue reads: one injectable clock instead of scattered ``utcnow()``.

A clock is any zero-argument callable returning a timezone-aware UTC datetime.
:class:`~rindle.jobs.JobQueue` (and every :class:`~rindle.jobs.Worker` on it) reads
``app.jobs.clock`` for the times it writes and compares: ``run_at``, lease deadlines,
``finished_at``, heartbeats and cron slots. Production uses :func:`system_clock`; a test
installs a :class:`ManualClock` (``app.jobs.clock = ManualClock()``) and moves it past a
lease explicitly, so nothing has to wait for real time to pass and a slow machine cannot
change the outcome.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

__all__ = ["Clock", "ManualClock", "system_clock"]

#: Returns "now" as an aware UTC datetime.
Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    """The current wall-clock time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that stands still until told to move (thread-safe).

    It starts at ``start`` (default: the current time) and changes only through
    :meth:`advance` and :meth:`set`, so a test decides exactly when a lease has run out.
    A naive ``start`` or ``set`` moment is a :class:`ValueError`.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = _aware(start) if start is not None else system_clock()
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        """The clock's current time."""
        with self._lock:
            return self._now

    def advance(self, by: dt.timedelta | float) -> dt.datetime:
        """Move forward by ``by`` (a timedelta or seconds, not negative); returns the new
        time."""
        step = by if isinstance(by, dt.timedelta) else dt.timedelta(seconds=by)
        if step < dt.timedelta(0):
            raise ValueError(f"a clock only moves forward, not by {step}")
        with self._lock:
            self._now += step
            return self._now

    def set(self, moment: dt.datetime) -> None:
        """Jump to ``moment`` (an aware datetime; earlier than now is allowed)."""
        moment = _aware(moment)
        with self._lock:
            self._now = moment

    def __repr__(self) -> str:
        return f"ManualClock({self().isoformat()})"


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("a clock needs a timezone-aware datetime; naive given")
    return moment.astimezone(dt.UTC)
