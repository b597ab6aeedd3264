"""State changes announced on PostgreSQL's ``LISTEN``/``NOTIFY`` channel :data:`CHANNEL`.

On PostgreSQL every persisted FSM transition (:meth:`StateMachine.transition` and
``transition_many``) also calls ``pg_notify`` for each row it moves, in the ``RETURNING``
clause of its guarded ``UPDATE`` (so in the transition's own transaction, at no extra round
trip): the notification is delivered when that transaction commits and never when it (or
the savepoint it ran in) rolls back. The payload is a small JSON object::

    {"kind": "variant", "id": "<row uuid>", "asset_id": "<asset uuid>", "name": "thumb",
     "state": "ready", "at": "2026-01-01T00:00:00.000001+00:00"}

``kind`` is ``asset``, ``variant``, ``upload_session`` or ``provider``; ``name`` is the
variant name (``null`` for the others); ``at`` is the row's new ``updated_at``. The live
progress stream (:mod:`rindle.web.events`) listens on the channel. SQLite has no such
mechanism: there the stream polls the rows instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Table, Text, cast, func, literal_column, null

__all__ = ["CHANNEL", "KINDS", "kind_of", "notify_column", "parse_at"]

#: The ``LISTEN``/``NOTIFY`` channel.
CHANNEL = "rindle_events"

#: The event kind of each FSM entity.
KINDS: Mapping[str, str] = {"asset": "asset", "variant": "variant",
                            "upload_session": "upload_session", "provider_asset": "provider"}

def kind_of(entity: str) -> str:
    """The event kind of an FSM entity (``provider_asset`` is ``provider``)."""
    return KINDS.get(entity, entity)


def notify_column(entity: str, table: Table) -> ColumnElement[Any]:
    """A ``RETURNING`` expression that sends the row's change on :data:`CHANNEL`: the
    ``UPDATE`` itself announces each row it moves, in its own transaction, with no further
    round trip. ``at`` is PostgreSQL's JSON spelling of ``updated_at`` (read it with
    :func:`parse_at`)."""
    asset = table.c.asset_id if "asset_id" in table.c else table.c.id
    name: ColumnElement[Any] = (table.c.name if table.name == "media_variants"
                                else null())
    fields: list[ColumnElement[Any]] = []
    for key, value in (("kind", _const(kind_of(entity))), ("id", table.c.id),
                       ("asset_id", asset), ("name", name), ("state", table.c.state),
                       ("at", table.c.updated_at)):
        fields += [_const(key), value]
    return func.pg_notify(_const(CHANNEL), cast(func.json_build_object(*fields), Text))


def _const(word: str) -> ColumnElement[Any]:
    """A fixed identifier-like word as an SQL string literal (never user input: the keys,
    kinds and channel above), so ``json_build_object`` sees typed text, not a parameter of
    unknown type."""
    if not word.replace("_", "").isalnum():
        raise ValueError(f"not a plain word: {word!r}")
    return literal_column(f"'{word}'", Text)


def parse_at(text: str | None) -> str | None:
    """``at`` as :meth:`datetime.isoformat` spells it in UTC (PostgreSQL's JSON drops
    trailing zeros of the microseconds and uses the session's time zone), or ``None``."""
    if text is None:
        return None
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat()
