"""Cron schedules from ``[cron]`` in the settings.

Entries are ``name = "0 1 * * *"`` or ``name = { schedule = "0 2 * * *", dry_run = false }``;
extra keys become job args, ``kind`` overrides the default kind ``rindle.maintenance.<name>``.
A scheduled run is enqueued with the unique key ``cron:<name>:<minute>``, and only if no job
ever had that key, so several workers never double-schedule a slot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, select

from rindle.domain.models import Job
from rindle.errors import ConfigError

if TYPE_CHECKING:
    from rindle.jobs.queue import JobQueue

__all__ = ["CronEntry", "CronExpression", "parse_schedule", "schedule_due"]

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12),
           ("weekday", 0, 6))


def _parse_field(text: str, name: str, lo: int, hi: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"bad step in {name} field: {text!r}")
            step = int(step_text)
        if part == "*":
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            if not (a.isdigit() and b.isdigit()):
                raise ValueError(f"bad range in {name} field: {text!r}")
            start, end = int(a), int(b)
        elif part.isdigit():
            start = end = int(part)
            if step != 1:
                end = hi
        else:
            raise ValueError(f"bad {name} field: {text!r}")
        if name == "weekday":  # 7 is Sunday too
            start, end = (0 if start == 7 else start), (6 if end == 7 and start != 7 else end)
        if not (lo <= start <= hi and lo <= end <= hi and start <= end):
            raise ValueError(f"{name} field {text!r} is outside {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronExpression:
    """A standard five-field cron expression (minute hour day month weekday)."""

    text: str
    minute: frozenset[int] = field(repr=False)
    hour: frozenset[int] = field(repr=False)
    day: frozenset[int] = field(repr=False)
    month: frozenset[int] = field(repr=False)
    weekday: frozenset[int] = field(repr=False)
    day_any: bool = field(repr=False, default=False)
    weekday_any: bool = field(repr=False, default=False)

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse ``text``; raises ValueError naming the bad field."""
        parts = text.split()
        if len(parts) != 5:
            raise ValueError(f"cron expression {text!r} needs 5 fields, got {len(parts)}")
        sets = [_parse_field(p, n, lo, hi) for p, (n, lo, hi) in zip(parts, _FIELDS, strict=True)]
        minute, hour, day, month, weekday = sets
        return cls(text, minute, hour, day, month, weekday, day_any=parts[2] == "*",
                   weekday_any=parts[4] == "*")

    def matches(self, when: dt.datetime) -> bool:
        """Whether the minute of ``when`` is a firing time."""
        if when.minute not in self.minute or when.hour not in self.hour:
            return False
        if when.month not in self.month:
            return False
        dom = when.day in self.day
        dow = (when.isoweekday() % 7) in self.weekday
        if self.day_any or self.weekday_any:
            return dom and dow
        return dom or dow  # both restricted: either matches (classic cron)

    def next_after(self, after: dt.datetime) -> dt.datetime:
        """The first firing minute strictly after ``after``."""
        start = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        first_hour, first_minute = min(self.hour), min(self.minute)
        for _ in range(366 * 8):
            if self.matches(day.replace(hour=first_hour, minute=first_minute)):
                for hour in sorted(self.hour):
                    for minute in sorted(self.minute):
                        cand = day.replace(hour=hour, minute=minute)
                        if cand >= start:
                            return cand
            day += dt.timedelta(days=1)
        raise ValueError(f"cron expression {self.text!r} never fires")


@dataclass(frozen=True)
class CronEntry:
    """One scheduled job from the settings."""

    name: str
    expression: CronExpression
    kind: str
    args: Mapping[str, Any]


def parse_schedule(table: Mapping[str, Any], queue: JobQueue | None = None) -> list[CronEntry]:
    """Turn the ``[cron]`` table into entries; a bad entry is a :class:`ConfigError`."""
    entries = []
    for name, value in table.items():
        if isinstance(value, str):
            expr_text, args, kind = value, {}, f"rindle.maintenance.{name}"
        elif isinstance(value, Mapping):
            opts = dict(value)
            expr_text = opts.pop("schedule", None)
            kind = opts.pop("kind", f"rindle.maintenance.{name}")
            args = opts
            if not isinstance(expr_text, str):
                raise ConfigError(f"[cron] {name}: needs schedule = \"<cron expression>\"")
        else:
            raise ConfigError(f"[cron] {name}: must be a cron string or a table")
        try:
            expression = CronExpression.parse(expr_text)
        except ValueError as exc:
            raise ConfigError(f"[cron] {name}: {exc}") from None
        if queue is not None and kind not in queue.kinds:
            raise ConfigError(
                f"[cron] {name}: job kind {kind!r} is not registered; known kinds: "
                f"{', '.join(sorted(queue.kinds))}")
        entries.append(CronEntry(name, expression, kind, args))
    return entries


def schedule_due(queue: JobQueue, entries: list[CronEntry], now: dt.datetime) -> int:
    """Enqueue every entry whose expression matches ``now``'s minute; returns how many."""
    slot = now.replace(second=0, microsecond=0)
    made = 0
    for entry in entries:
        if not entry.expression.matches(slot):
            continue
        key = f"cron:{entry.name}:{slot.isoformat()}"
        with queue.db.engine.begin() as conn:
            seen = conn.execute(select(exists().where(Job.__table__.c.unique_key == key)))
            if seen.scalar():
                continue
            result = queue.enqueue(conn, entry.kind, dict(entry.args), unique_key=key)
            made += 0 if result.skipped else 1
    return made
