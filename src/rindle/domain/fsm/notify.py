"""State changes announced on PostgreSQL's ``LISTEN``/``NOTIFY`` channel :data:`CHANNEL`.

On PostgreSQL every persisted FSM transition (:meth:`StateMachine.transition` and
``transition_many``) also runs ``pg_notify`` in the transition's own transaction, so the
notification is delivered when that transaction commits and never when it (or the savepoint
it ran in) rolls back. The payload is a small JSON object::

    {"kind": "variant", "id": "<row uuid>", "asset_id": "<asset uuid>", "name": "thumb",
     "state": "ready", "at": "2026-01-01T00:00:00.000001+00:00"}

``kind`` is ``asset``, ``variant``, ``upload_session`` or ``provider``; ``name`` is the
variant name (``null`` for the others); ``at`` is the row's new ``updated_at``. The live
progress stream (:mod:`rindle.web.events`) listens on the channel. SQLite has no such
mechanism: there the stream polls the rows instead.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Table, literal, text
from sqlalchemy.orm import Session

__all__ = ["CHANNEL", "KINDS", "kind_of", "notify", "notify_columns", "payload"]

#: The ``LISTEN``/``NOTIFY`` channel.
CHANNEL = "rindle_events"

#: The event kind of each FSM entity.
KINDS: Mapping[str, str] = {"asset": "asset", "variant": "variant",
                            "upload_session": "upload_session", "provider_asset": "provider"}

_NOTIFY_ONE = text("SELECT pg_notify(:channel, :payload)")
_NOTIFY_MANY = text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p")


def kind_of(entity: str) -> str:
    """The event kind of an FSM entity (``provider_asset`` is ``provider``)."""
    return KINDS.get(entity, entity)


def notify_columns(table: Table) -> tuple[ColumnElement[Any], ...]:
    """What a transition's ``RETURNING`` adds for the payload: the asset id, the variant
    name (``NULL`` for other tables) and the new ``updated_at``."""
    asset = table.c.asset_id if "asset_id" in table.c else table.c.id
    name: ColumnElement[Any] = (table.c.name if table.name == "media_variants"
                                else literal(None))
    return asset, name, table.c.updated_at


def payload(entity: str, row_id: uuid.UUID, state: str, extra: Iterable[Any]) -> str:
    """The JSON payload of one change; ``extra`` is what :func:`notify_columns` returned."""
    asset_id, name, at = extra
    when = at.isoformat() if isinstance(at, dt.datetime) else None
    return json.dumps({"kind": kind_of(entity), "id": str(row_id), "asset_id": str(asset_id),
                       "name": name, "state": state, "at": when}, separators=(",", ":"))


def notify(session: Session, payloads: list[str]) -> None:
    """Queue ``payloads`` on :data:`CHANNEL` in ``session``'s transaction (PostgreSQL
    delivers them at commit, drops them at rollback)."""
    if len(payloads) == 1:
        session.execute(_NOTIFY_ONE, {"channel": CHANNEL, "payload": payloads[0]})
    elif payloads:
        session.execute(_NOTIFY_MANY, {"channel": CHANNEL, "payloads": payloads})
