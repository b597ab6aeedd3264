"""Cron schedules from ``[cron]`` in the settings.

Entries are ``name = "0 1 * * *"`` or ``name = { schedule = "0 2 * * *", dry_run = false }``;
extra keys become job args, ``kind`` overrides the default kind ``rindle.maintenance.<name>``.
Expressions have the five classic fields (``*``, values, ``a-b``, lists, ``/step``, month
and weekday names, 0 or 7 for Sunday), parsed and advanced by the cronsim library; they are read in
UTC. A scheduled run is enqueued with the unique key ``cron:<name>:<slot-iso>``, and only if
no job ever had that key, so several workers never double-schedule a slot.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cronsim import CronSim, CronSimError
from cronsim.cronsim import Field
from sqlalchemy import Table, func, select

from rindle.domain.models import Job, table_of
from rindle.errors import ConfigError

if TYPE_CHECKING:
    from rindle.jobs.queue import JobQueue

__all__ = ["CATCH_UP", "CronEntry", "CronExpression", "parse_schedule", "schedule_due"]

#: How far back a late scheduler still enqueues a missed slot (only the latest one).
CATCH_UP = dt.timedelta(hours=1)

_T: Table = table_of(Job)
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12),
           ("weekday", 0, 7))
#: cronsim's field parsers, in the order of :data:`_FIELDS`.
_PARSERS = (Field.MINUTE, Field.HOUR, Field.DAY, Field.MONTH, Field.DOW)


def _parse_field(text: str, name: str, lo: int, hi: int, parser: Field) -> frozenset[int]:
    """Expand one field (``*``, ``a``, ``a-b``, lists, ``/step``, month and weekday names)
    to the values it allows. cronsim's extensions (``L``, ``LW``, ``#``) are refused, so
    the syntax stays the five classic fields."""
    try:
        parsed = parser.parse(text.upper())
    except CronSimError:
        raise ValueError(f"bad {name} field: {text!r}") from None
    values = {v for v in parsed if isinstance(v, int) and lo <= v <= hi}
    if len(values) != len(parsed):
        raise ValueError(f"bad {name} field: {text!r}")
    if name == "weekday" and 7 in values:  # 7 is Sunday too
        values = (values - {7}) | {0}
    return frozenset(values)


@dataclass(frozen=True)
class CronExpression:
    """A standard five-field cron expression (minute hour day month weekday).

    As in classic cron, when both day and weekday are restricted a day matching either
    one fires; when one of them starts with ``*`` both must match.
    """

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
        sets = [_parse_field(p, n, lo, hi, parser)
                for p, (n, lo, hi), parser in zip(parts, _FIELDS, _PARSERS, strict=True)]
        minute, hour, day, month, weekday = sets
        return cls(text, minute, hour, day, month, weekday, day_any=parts[2].startswith("*"),
                   weekday_any=parts[4].startswith("*"))

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
        return dom or dow

    def next_fire(self, after: dt.datetime) -> dt.datetime:
        """The first firing minute strictly after ``after`` (same timezone as ``after``).

        Raises ValueError for an expression that never fires (``0 0 31 2 *``).
        """
        try:
            # cronsim refuses, when built, the only expressions that never fire: a day
            # that no month in the expression has, with the weekday unrestricted
            return next(CronSim(self.text, after))
        except CronSimError:
            raise ValueError(f"cron expression {self.text!r} never fires") from None


@dataclass(frozen=True)
class CronEntry:
    """One scheduled job from the settings."""

    name: str
    expression: CronExpression
    kind: str
    args: Mapping[str, Any]


def parse_schedule(table: Mapping[str, Any], queue: JobQueue[Any] | None = None) -> list[CronEntry]:
    """Turn the ``[cron]`` table into entries.

    A bad expression, a malformed entry or (given ``queue``) a kind nobody registered is a
    :class:`ConfigError` naming the entry.
    """
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
            if not isinstance(kind, str):
                raise ConfigError(f"[cron] {name}: kind must be a string")
        else:
            raise ConfigError(f"[cron] {name}: must be a cron string or a table")
        try:
            expression = CronExpression.parse(expr_text)
            expression.next_fire(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))  # ever fires?
        except ValueError as exc:
            raise ConfigError(f"[cron] {name}: {exc}") from None
        if queue is not None and kind not in queue.kinds:
            raise ConfigError(
                f"[cron] {name}: job kind {kind!r} is not registered; known kinds: "
                f"{', '.join(sorted(queue.kinds))}")
        entries.append(CronEntry(name, expression, kind, args))
    return entries


def _due_slot(expr: CronExpression, now: dt.datetime, since: dt.datetime | None
              ) -> dt.datetime | None:
    """The latest firing minute in ``(since, now]``; without ``since``, ``now``'s minute."""
    slot = now.replace(second=0, microsecond=0)
    if since is None:
        return slot if expr.matches(slot) else None
    latest = None
    cursor = max(since, slot - CATCH_UP)
    while True:
        nxt = expr.next_fire(cursor)
        if nxt > slot:
            return latest
        latest = cursor = nxt


def _uuid7_floor(when: dt.datetime) -> uuid.UUID:
    """The smallest UUIDv7 made at or after ``when``: bounds an id range scan."""
    return uuid.UUID(int=(int(when.timestamp() * 1000) & ((1 << 48) - 1)) << 80)


def schedule_due(queue: JobQueue[Any], entries: Sequence[CronEntry], now: dt.datetime, *,
                 since: dt.datetime | None = None) -> int:
    """Enqueue each entry's due slot; returns how many jobs this call created.

    Without ``since`` only ``now``'s minute counts. With ``since`` (the previous call's
    ``now``) the latest slot in ``(since, now]`` counts, so a slow tick never skips a slot;
    a scheduler further behind than :data:`CATCH_UP` runs one catch-up slot at most.
    A slot that ever had a job (whatever its state) is never enqueued again.
    """
    made = 0
    for entry in entries:
        slot = _due_slot(entry.expression, now, since)
        if slot is None:
            continue
        key = f"cron:{entry.name}:{slot.isoformat()}"
        with queue.db.engine.begin() as conn:
            if queue.db.dialect_name == "postgresql":  # SQLite: BEGIN IMMEDIATE serialises
                conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
            # The job for a slot is made after the slot began, so its UUIDv7 id is newer:
            # the id bound keeps this an index range scan however many jobs are kept.
            seen = conn.execute(select(_T.c.id).where(
                _T.c.id >= _uuid7_floor(slot - CATCH_UP), _T.c.unique_key == key).limit(1))
            if seen.first() is not None:
                continue
            result = queue.enqueue(conn, entry.kind, dict(entry.args), unique_key=key)
            made += 0 if result.skipped else 1
    return made
