"""One state-machine implementation shared by the four entity FSMs.

A :class:`StateMachine` holds an entity's transition table as data and offers two layers:

* pure validation: :meth:`StateMachine.can_transition` and :meth:`StateMachine.check`;
* guarded persistence: :meth:`StateMachine.transition` validates the edge, then runs exactly
  one ``UPDATE <table> SET state=:to, updated_at=:now, ... WHERE id=:id AND state=:from`` in
  the caller's :class:`~sqlalchemy.orm.Session` (and so in the caller's transaction). Zero
  rows updated means another worker moved the row first (or it does not exist): that raises
  :class:`~rindle.errors.InvalidTransition` and nothing is overwritten.

Telemetry: a successful persisted transition emits ``rindle.<entity>.state_change`` with
measurements ``{"system_time": <ns since the epoch>}`` and metadata ``{"from", "to",
"profile", ...}``. Emission is deferred until the session's outermost transaction commits
(:func:`rindle.database.after_commit`; inside ``app.bind`` the host's commit); a
transaction or savepoint that rolls back discards the events recorded inside it, so
subscribers never hear of a state the database does not hold.

On PostgreSQL a transition's ``UPDATE`` also sends a ``NOTIFY`` per row it moves
(``pg_notify`` in its ``RETURNING``; :mod:`rindle.domain.fsm.notify`), which PostgreSQL
delivers at commit and drops at rollback: the live progress stream hears of committed
states only.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, Table, Uuid, any_, bindparam, inspect, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import ClauseElement

from rindle.database import after_commit
from rindle.domain.fsm.notify import notify_column
from rindle.domain.models import Asset, Base, table_of, utcnow
from rindle.errors import InvalidTransition, NotFound
from rindle.telemetry import Telemetry

__all__ = ["Edges", "StateMachine", "Transition", "merge_edges"]

log = logging.getLogger(__name__)

#: A transition table: state -> the states it may move to.
Edges = Mapping[str, frozenset[str]]

_UNKNOWN = "unknown"
_RESERVED = frozenset({"id", "state"})


def merge_edges(*tables: Mapping[str, frozenset[str] | set[str]]) -> Edges:
    """Return the read-only union of several transition tables (same state: edges unioned)."""
    merged: dict[str, frozenset[str]] = {}
    for table in tables:
        for state, targets in table.items():
            merged[state] = merged.get(state, frozenset()) | frozenset(targets)
    return MappingProxyType(merged)


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change that was persisted (not yet necessarily committed)."""

    entity: str
    row_id: uuid.UUID
    from_state: str
    to_state: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


class StateMachine:
    """An entity's FSM: its table, pure validation and guarded persistence.

    ``metadata_columns`` maps extra telemetry metadata keys to columns of the entity's
    table (``{"provider": "provider_name"}``); like ``profile`` they are read back from the
    updated row and default to ``"unknown"``.
    """

    def __init__(
        self,
        entity: str,
        model: type[Base],
        edges: Mapping[str, frozenset[str] | set[str]],
        *,
        initial: str,
        metadata_columns: Mapping[str, str] | None = None,
    ) -> None:
        self.entity = entity
        self.model = model
        self.table: Table = table_of(model)
        self.edges: Edges = merge_edges(edges)
        self.initial = initial
        targets = frozenset().union(*self.edges.values())
        self.states: frozenset[str] = frozenset(self.edges) | targets
        self.terminal: frozenset[str] = frozenset(s for s in self.states if not self.allowed(s))
        self.metadata_columns = dict(metadata_columns or {})
        if any(state in targets for state, targets in self.edges.items()):
            raise ValueError(f"the {entity} table has a self-transition; none is allowed")
        if initial not in self.edges:
            raise ValueError(f"initial state {initial!r} is not in the {entity} table")
        for key, column in self.metadata_columns.items():
            if column not in self.table.c:
                raise ValueError(f"metadata {key!r}: no column {column!r} on {self.table.name}")

    def __repr__(self) -> str:
        return f"<StateMachine {self.entity} ({len(self.states)} states)>"

    @property
    def event(self) -> str:
        """The telemetry event a successful transition emits."""
        return f"rindle.{self.entity}.state_change"

    # --- pure validation ----------------------------------------------------------------

    def allowed(self, from_state: str) -> frozenset[str]:
        """The states ``from_state`` may move to; empty for terminal and unknown states."""
        return self.edges.get(from_state, frozenset())

    def can_transition(self, from_state: str, to_state: str) -> bool:
        """Whether ``from_state -> to_state`` is an edge (self-transitions never are)."""
        return to_state in self.allowed(from_state)

    def check(self, from_state: str, to_state: str) -> None:
        """Raise :class:`InvalidTransition` unless ``from_state -> to_state`` is an edge."""
        if not self.can_transition(from_state, to_state):
            raise InvalidTransition(self.entity, from_state, to_state)

    def reachable(self, from_state: str) -> frozenset[str]:
        """Every state reachable from ``from_state`` in zero or more steps (itself included)."""
        seen, todo = {from_state}, [from_state]
        while todo:
            for nxt in self.allowed(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    # --- guarded persistence --------------------------------------------------------------

    def transition(
        self,
        session: Session,
        row_id: uuid.UUID,
        from_state: str,
        to_state: str,
        *,
        telemetry: Telemetry | None = None,
        profile: str | None = None,
        values: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Transition:
        """Move row ``row_id`` from ``from_state`` to ``to_state`` with one guarded UPDATE.

        ``values`` are further columns (by column name, e.g. ``{"error_reason": "..."}``)
        written by the same statement; ``updated_at`` defaults to now. Runs in the caller's
        transaction and never commits. Raises :class:`InvalidTransition` if the edge is not in
        the table (nothing is executed) or if the row was not in ``from_state`` (nothing is
        overwritten). ``telemetry`` receives the state_change event once the transaction
        commits; ``profile`` overrides the profile read from the row (asset's profile for
        variants and upload sessions) and ``metadata`` adds keys to the event.
        """
        try:
            self.check(from_state, to_state)
        except InvalidTransition:
            log.warning("rindle.%s.transition_failed id=%s from=%s to=%s reason=not_an_edge",
                        self.entity, row_id, from_state, to_state)
            raise
        row_values = self._row_values(to_state, values)
        if session.autoflush:
            session.flush()  # pending inserts of this row must be visible to the UPDATE
        table = self.table
        stmt = (
            update(table)
            .where(table.c.id == row_id, table.c.state == from_state)
            .values(row_values)
        )
        wanted = self._returned_metadata()  # UPDATE ... RETURNING: SQLite >= 3.35, PostgreSQL
        extra = (notify_column(self.entity, table),) if _announces(session) else ()
        rows = session.execute(stmt.returning(table.c.id, *wanted.values(), *extra)).all()
        if len(rows) != 1:
            raise self._lost_race(session, row_id, from_state, to_state)
        self._refresh_identity_map(session, row_id, row_values)
        returned = rows[0][1:1 + len(wanted)]
        meta: dict[str, Any] = {k: _UNKNOWN if v is None else v
                                for k, v in zip(wanted, returned, strict=True)}
        meta.update(metadata or {})
        if profile is not None:
            meta["profile"] = profile
        meta.update({"from": from_state, "to": to_state})
        meta.setdefault("adapter", _UNKNOWN)
        if telemetry is not None:
            _defer(session, telemetry, self.event, {"system_time": time.time_ns()}, meta)
        return Transition(self.entity, row_id, from_state, to_state, MappingProxyType(meta))

    def transition_many(
        self,
        session: Session,
        row_ids: Sequence[uuid.UUID],
        from_state: str,
        to_state: str,
        *,
        telemetry: Telemetry | None = None,
        profile: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> list[uuid.UUID]:
        """Move many rows ``from_state -> to_state`` with one guarded UPDATE; returns the ids moved.

        Rows that were no longer in ``from_state`` are left alone (another worker moved them);
        the caller tells them apart by the ids missing from the result. Each moved row emits
        its own ``state_change`` event after commit, exactly as :meth:`transition` does.
        """
        self.check(from_state, to_state)
        if not row_ids:
            return []
        row_values = self._row_values(to_state, values)
        if session.autoflush:
            session.flush()
        table = self.table
        wanted = self._returned_metadata()
        if profile is not None:
            wanted.pop("profile", None)  # known: no per-row subquery needed
        ids: list[uuid.UUID] = list(row_ids)
        if session.get_bind().dialect.name == "postgresql":
            # one array parameter: the statement text (and its parse) is the same every batch
            match = table.c.id == any_(bindparam("ids", ids, type_=ARRAY(Uuid())))
        else:
            match = table.c.id.in_(ids)
        extra = (notify_column(self.entity, table),) if _announces(session) else ()
        stmt = (
            update(table)
            .where(match, table.c.state == from_state)
            .values(row_values)
            .returning(table.c.id, *wanted.values(), *extra)
        )
        rows = session.execute(stmt).all()
        now_ns = time.time_ns()
        loaded = bool(session.identity_map)  # batch passes use fresh sessions: nothing to sync
        if telemetry is not None and not telemetry.listening:
            telemetry = None
        for row in rows:
            if loaded:
                self._refresh_identity_map(session, row[0], row_values)
            if telemetry is not None:
                meta: dict[str, Any] = {
                    k: _UNKNOWN if v is None else v
                    for k, v in zip(wanted, row[1:1 + len(wanted)], strict=True)}
                if profile is not None:
                    meta["profile"] = profile
                meta.update({"from": from_state, "to": to_state})
                meta.setdefault("adapter", _UNKNOWN)
                _defer(session, telemetry, self.event, {"system_time": now_ns}, meta)
        return [row[0] for row in rows]

    def transition_from_current(
        self,
        session: Session,
        row_id: uuid.UUID,
        to_state: str,
        *,
        telemetry: Telemetry | None = None,
        profile: str | None = None,
        values: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Transition:
        """Read the row's current state, then :meth:`transition` from it (still guarded).

        Raises :class:`NotFound` when the row does not exist, and :class:`InvalidTransition`
        when the current state has no edge to ``to_state`` or the row moves between the read
        and the UPDATE.
        """
        if session.autoflush:
            session.flush()
        current = session.execute(
            select(self.table.c.state).where(self.table.c.id == row_id)
        ).scalar_one_or_none()
        if current is None:
            raise NotFound(self.entity, row_id)
        return self.transition(session, row_id, current, to_state, telemetry=telemetry,
                               profile=profile, values=values, metadata=metadata)

    # --- helpers ---------------------------------------------------------------------------

    def _row_values(self, to_state: str, values: Mapping[str, Any] | None) -> dict[str, Any]:
        extra = dict(values or {})
        bad = sorted(k for k in extra if k in _RESERVED or k not in self.table.c)
        if bad:
            raise ValueError(
                f"cannot set {', '.join(bad)} on {self.table.name} in a transition; "
                "pass other column names (state is the transition's to_state)"
            )
        return {"state": to_state, "updated_at": utcnow(), **extra}

    def _returned_metadata(self) -> dict[str, ColumnElement[Any]]:
        table = self.table
        cols: dict[str, ColumnElement[Any]] = {}
        if "profile" in table.c:
            cols["profile"] = table.c.profile
        elif "asset_id" in table.c:
            assets: Table = table_of(Asset)
            cols["profile"] = (
                select(assets.c.profile).where(assets.c.id == table.c.asset_id).scalar_subquery()
            )
        for key, column in self.metadata_columns.items():
            cols[key] = table.c[column]
        return cols

    def _lost_race(
        self, session: Session, row_id: uuid.UUID, from_state: str, to_state: str
    ) -> InvalidTransition:
        now = session.execute(
            select(self.table.c.state).where(self.table.c.id == row_id)
        ).scalar_one_or_none()
        found = "no such row" if now is None else f"it is now {now!r}"
        log.info("rindle.%s.transition_failed id=%s from=%s to=%s reason=not_in_from (%s)",
                 self.entity, row_id, from_state, to_state, found)
        return InvalidTransition(
            self.entity, from_state, to_state,
            detail=f"{self.entity} {row_id} was not in {from_state!r} ({found}); "
            "another worker moved it first, nothing was overwritten",
        )

    def _refresh_identity_map(
        self, session: Session, row_id: uuid.UUID, row_values: Mapping[str, Any]
    ) -> None:
        """Make an already-loaded ORM object show what the UPDATE wrote."""
        obj = session.identity_map.get(identity_key(self.model, row_id))
        if obj is None:
            return
        mapper = inspect(self.model)
        for name, value in row_values.items():
            key = mapper.get_property_by_column(self.table.c[name]).key
            if isinstance(value, ClauseElement):
                session.expire(obj, [key])
            else:
                set_committed_value(obj, key, value)


def _announces(session: Session) -> bool:
    """Whether transitions in ``session`` are announced on the ``NOTIFY`` channel
    (:mod:`rindle.domain.fsm.notify`): on PostgreSQL."""
    return session.get_bind().dialect.name == "postgresql"


# --- telemetry deferred until commit -------------------------------------------------------


def _defer(
    session: Session,
    telemetry: Telemetry,
    event: str,
    measurements: dict[str, Any],
    metadata: dict[str, Any],
) -> None:
    """Queue an event on ``session``; it is emitted when the outermost transaction commits
    (for a session joined to a host transaction by ``app.bind``: when the host commits)."""
    after_commit(session, functools.partial(telemetry.emit, event, measurements, metadata))
