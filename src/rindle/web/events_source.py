"""Where the live progress stream's changes come from: one :class:`Hub` per events mount.

A :class:`Hub` fans the state changes of assets, variants, upload sessions and provider
assets out to its subscribers, each watching a set of asset ids (a change is delivered to
every subscriber watching its ``asset_id``). It runs one background thread, started with
the first subscriber and stopped after the last one leaves:

* on PostgreSQL, a listener: one dedicated connection (taken out of the app's pool) that
  ``LISTEN`` s on :data:`rindle.domain.fsm.notify.CHANNEL`, where every FSM transition
  sends a ``NOTIFY`` inside its own transaction (so only committed states arrive). If the
  connection fails it is opened again, and every subscriber is told to resynchronise
  (:data:`RESYNC`) since notifications may have been missed meanwhile;
* on SQLite, a poller: every ``poll_interval`` seconds one read of the rows of every watched
  asset, diffed against what it saw last (a row whose state or ``updated_at`` differs is a
  change; a row never seen before is one too).

:meth:`Hub.subscribe` returns once the listener is listening, so a snapshot read after it
(:func:`snapshot`) and the changes delivered after it leave no gap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select

from rindle.domain.fsm.notify import CHANNEL, KINDS, parse_at
from rindle.domain.models import Asset, ProviderAsset, UploadSession, Variant
from rindle.errors import TransientError

if TYPE_CHECKING:
    from rindle.database import Database

__all__ = ["RESYNC", "Change", "Hub", "Subscriber", "snapshot"]

log = logging.getLogger(__name__)

#: Delivered to every subscriber when changes may have been missed (the listener's
#: connection was lost and opened again): read a fresh snapshot.
RESYNC: Final = "resync"

#: Seconds :meth:`Hub.subscribe` waits for the listener to be listening.
LISTEN_WAIT = 15.0
#: Seconds the listener waits for a notification before looking at its stop flag.
_LISTEN_TICK = 0.25
#: Seconds between two attempts to open the listener's connection after a failure.
_RECONNECT_PAUSE = 1.0


@dataclass(frozen=True, slots=True)
class Change:
    """One row's state: ``kind`` is ``asset``, ``variant``, ``upload_session`` or
    ``provider``; ``name`` is the variant name (``None`` for the other kinds); ``at`` is the
    row's ``updated_at`` (ISO 8601), which tells two states of a row apart."""

    kind: str
    id: str
    asset_id: str
    name: str | None
    state: str
    at: str | None

    @classmethod
    def from_payload(cls, raw: str) -> Change | None:
        """The change a ``NOTIFY`` payload announces; ``None`` for anything else."""
        try:
            data = json.loads(raw)
            change = cls(str(data["kind"]), str(data["id"]), str(data["asset_id"]),
                         None if data["name"] is None else str(data["name"]),
                         str(data["state"]), parse_at(data["at"]))
        except (ValueError, KeyError, TypeError):
            return None
        return change if change.kind in KINDS.values() else None

    @property
    def row(self) -> tuple[str, str]:
        """``(kind, id)``: which row this is a state of."""
        return self.kind, self.id

    @property
    def event_id(self) -> str:
        """The SSE ``id``: the same for the same state of the same row, wherever it was
        read (snapshot or live), so a client can drop what it already has."""
        return f"{self.kind}:{self.id}:{self.at or ''}"

    def data(self) -> dict[str, Any]:
        """The SSE ``data`` object."""
        return {"kind": self.kind, "id": self.id, "asset_id": self.asset_id,
                "name": self.name, "state": self.state, "at": self.at}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def snapshot(db: Database, asset_ids: Iterable[uuid.UUID]) -> list[Change]:
    """The current state of every asset in ``asset_ids`` and of its upload sessions,
    variants and provider assets (four reads in one transaction): assets first, then
    upload sessions, variants by name, provider assets."""
    ids = sorted(set(asset_ids))
    if not ids:
        return []
    out: list[Change] = []
    with db.sessionmaker() as session:
        for row in session.execute(select(Asset.id, Asset.state, Asset.updated_at)
                                   .where(Asset.id.in_(ids)).order_by(Asset.id)):
            out.append(Change("asset", str(row[0]), str(row[0]), None, row[1], _iso(row[2])))
        kinds: tuple[tuple[str, Any], ...] = (("upload_session", UploadSession),
                                             ("variant", Variant),
                                             ("provider", ProviderAsset))
        for kind, model in kinds:
            name = model.name if model is Variant else model.id
            for row in session.execute(
                    select(model.id, model.asset_id, name, model.state, model.updated_at)
                    .where(model.asset_id.in_(ids))
                    .order_by(model.asset_id, name, model.id)):
                out.append(Change(kind, str(row[0]), str(row[1]),
                                  row[2] if model is Variant else None, row[3], _iso(row[4])))
    return out


@dataclass(eq=False)
class Subscriber:
    """One stream's subscription: the asset ids it watches and how a change (or
    :data:`RESYNC`) is handed to it (``deliver`` is called from the hub's thread)."""

    asset_ids: frozenset[str]
    deliver: Callable[[Change | str], object]


class Hub:
    """Fans changes out to subscribers (see the module docstring). Thread-safe."""

    def __init__(self, db: Database, *, poll_interval: float) -> None:
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds, not {poll_interval}")
        self.db = db
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._stop: threading.Event | None = None
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def subscribers(self) -> int:
        """How many subscribers are registered now."""
        with self._lock:
            return len(self._subscribers)

    def subscribe(self, asset_ids: Iterable[uuid.UUID | str],
                  deliver: Callable[[Change | str], object]) -> Subscriber:
        """Register a subscriber; returns once changes committed from now on will reach it.
        Raises :class:`TransientError` (``events_unavailable``) when the listener cannot
        listen within :data:`LISTEN_WAIT` seconds (the subscriber is removed again)."""
        sub = Subscriber(frozenset(str(i) for i in asset_ids), deliver)
        with self._lock:
            self._subscribers.add(sub)
            if self._thread is None or self._stop is None or self._stop.is_set():
                self._start()
            listening = self._listening
        if not listening.wait(LISTEN_WAIT):
            self.unsubscribe(sub)
            raise TransientError("the live progress stream cannot listen for changes now; "
                                 "try again later", code="events_unavailable")
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Remove ``sub`` (again is fine); the thread stops after the last one leaves."""
        with self._lock:
            self._subscribers.discard(sub)
            if not self._subscribers and self._stop is not None:
                self._stop.set()
                self._stop = None
                self._thread = None

    def close(self) -> None:
        """Drop every subscriber and stop the thread."""
        with self._lock:
            self._subscribers.clear()
            if self._stop is not None:
                self._stop.set()
            self._stop, self._thread = None, None

    # --- the thread ---------------------------------------------------------------------

    def _start(self) -> None:
        stop = threading.Event()
        listening = threading.Event()
        target = self._listen if self.db.dialect_name == "postgresql" else self._poll
        if self.db.dialect_name != "postgresql":
            listening.set()  # the poller reads the rows: nothing to wait for
        self._stop, self._listening = stop, listening
        self._thread = threading.Thread(target=target, args=(stop, listening), daemon=True,
                                        name="rindle-events")
        self._thread.start()

    def _dispatch(self, stop: threading.Event, change: Change | str) -> None:
        if stop.is_set():
            return
        with self._lock:
            targets = [s for s in self._subscribers
                       if isinstance(change, str) or change.asset_id in s.asset_ids]
        for sub in targets:
            try:
                sub.deliver(change)
            except Exception:  # a subscriber that went away meanwhile
                log.debug("rindle.web.events: a subscriber refused a change", exc_info=True)

    def _listen(self, stop: threading.Event, listening: threading.Event) -> None:
        first = True
        while not stop.is_set():
            try:
                raw = self.db.engine.raw_connection()
            except Exception as exc:
                log.warning("rindle.web.events: cannot connect to listen: %s",
                            type(exc).__name__)
                stop.wait(_RECONNECT_PAUSE)
                continue
            conn: Any = raw.driver_connection
            raw.detach()  # this connection is the listener's alone, never back to the pool
            try:
                conn.rollback()
                conn.autocommit = True
                conn.execute(f"LISTEN {CHANNEL}")
                listening.set()
                if not first:
                    self._dispatch(stop, RESYNC)
                first = False
                while not stop.is_set():
                    for note in conn.notifies(timeout=_LISTEN_TICK):
                        change = Change.from_payload(note.payload)
                        if change is not None:
                            self._dispatch(stop, change)
            except Exception as exc:
                log.warning("rindle.web.events: the listener's connection failed (%s); "
                            "opening it again", type(exc).__name__)
                stop.wait(_RECONNECT_PAUSE)
            finally:
                with contextlib.suppress(Exception):
                    raw.close()

    def _poll(self, stop: threading.Event, listening: threading.Event) -> None:
        seen: dict[tuple[str, str], tuple[str, str | None]] = {}
        while not stop.wait(self.poll_interval):
            with self._lock:
                watched = set().union(*(s.asset_ids for s in self._subscribers))
            try:
                rows = snapshot(self.db, (uuid.UUID(i) for i in watched))
            except Exception as exc:
                log.warning("rindle.web.events: polling failed: %s", type(exc).__name__)
                continue
            current: dict[tuple[str, str], tuple[str, str | None]] = {}
            for change in rows:
                current[change.row] = (change.state, change.at)
                if seen.get(change.row) != current[change.row]:
                    self._dispatch(stop, change)
            seen = current
