"""Where the live progress stream's changes come from: one :class:`Hub` per events mount.

A :class:`Hub` fans the state changes of assets, variants, upload sessions and provider
assets out to its subscribers, each watching a set of asset ids (a change is delivered to
every subscriber watching its ``asset_id``). The changes come from a background thread,
started with the first subscriber and stopped after the last one leaves:

* on PostgreSQL, a :class:`Listener`: one dedicated connection (taken out of an app's pool)
  that ``LISTEN`` s on :data:`rindle.domain.fsm.notify.CHANNEL`, where every FSM transition
  sends a ``NOTIFY`` inside its own transaction (so only committed states arrive). There is
  one listener per database in the process, shared by every hub (every events mount, of
  one app or several) on that database URL: each hub holds a reference from its creation
  to :meth:`Hub.close`, the listener's thread runs while any of them has subscribers and
  hands each notification to all of those, and the listener is forgotten when the last
  hub holding it closes (:func:`shared_listeners` lists the live ones). If the connection
  fails it is opened again, and every subscriber is told to resynchronise
  (:data:`RESYNC`) since notifications may have been missed meanwhile;
* on SQLite, a poller per hub: every ``poll_interval`` seconds one read of the rows of every
  watched asset, diffed against what it saw last (a row whose state or ``updated_at``
  differs is a change; a row never seen before is one too).

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

__all__ = ["RESYNC", "Change", "Hub", "Listener", "Subscriber", "shared_listeners",
           "snapshot"]

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
    """Fans changes out to subscribers (see the module docstring). Thread-safe. On
    PostgreSQL it holds a reference to its database's shared :class:`Listener` until
    :meth:`close`."""

    def __init__(self, db: Database, *, poll_interval: float) -> None:
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds, not {poll_interval}")
        self.db = db
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._stop: threading.Event | None = None  # the poller's (SQLite)
        self._thread: threading.Thread | None = None
        self._listener: Listener | None = None
        if db.dialect_name == "postgresql":
            self._listener = _acquire(self)

    @property
    def subscribers(self) -> int:
        """How many subscribers are registered now."""
        with self._lock:
            return len(self._subscribers)

    @property
    def listener(self) -> Listener | None:
        """The shared listener this hub holds (PostgreSQL, until :meth:`close`), else None."""
        return self._listener

    @property
    def thread(self) -> threading.Thread | None:
        """The thread bringing this hub its changes now (the shared listener's, or this
        hub's poller), None while none runs for it."""
        if self._listener is not None:
            return self._listener.thread_for(self)
        with self._lock:
            return self._thread

    def subscribe(self, asset_ids: Iterable[uuid.UUID | str],
                  deliver: Callable[[Change | str], object]) -> Subscriber:
        """Register a subscriber; returns once changes committed from now on will reach it.
        Raises :class:`TransientError` (``events_unavailable``) when the listener cannot
        listen within :data:`LISTEN_WAIT` seconds (the subscriber is removed again)."""
        sub = Subscriber(frozenset(str(i) for i in asset_ids), deliver)
        with self._lock:
            self._subscribers.add(sub)
            if self.db.dialect_name == "postgresql":
                if self._listener is None:  # closed, then used again
                    self._listener = _acquire(self)
                listening = self._listener.want(self)
            else:
                if self._thread is None or self._stop is None or self._stop.is_set():
                    self._start_poller()
                listening = _ALWAYS
        if not listening.wait(LISTEN_WAIT):
            self.unsubscribe(sub)
            raise TransientError("the live progress stream cannot listen for changes now; "
                                 "try again later", code="events_unavailable")
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Remove ``sub`` (again is fine); after the last one leaves, the poller stops, or
        the shared listener stops once no hub of its database has subscribers."""
        with self._lock:
            self._subscribers.discard(sub)
            if not self._subscribers:
                self._idle()

    def close(self) -> None:
        """Drop every subscriber, stop the poller and let go of the shared listener (closed
        with the last hub holding it)."""
        with self._lock:
            self._subscribers.clear()
            self._idle()
            listener, self._listener = self._listener, None
        if listener is not None:
            _release(listener, self)

    def _idle(self) -> None:
        """No subscriber left (lock held): stop what brings changes to this hub."""
        if self._stop is not None:
            self._stop.set()
        self._stop, self._thread = None, None
        if self._listener is not None:
            self._listener.unwant(self)

    # --- delivery -----------------------------------------------------------------------

    def _start_poller(self) -> None:
        stop = threading.Event()
        self._stop = stop
        self._thread = threading.Thread(target=self._poll, args=(stop,), daemon=True,
                                        name="rindle-events-poll")
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

    def _poll(self, stop: threading.Event) -> None:
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


#: Set forever: what a poller's subscriber waits on (the poller reads the rows itself).
_ALWAYS = threading.Event()
_ALWAYS.set()


# --- the shared listener (PostgreSQL) -----------------------------------------------------


class Listener:
    """One ``LISTEN`` connection shared by every :class:`Hub` of this process on one
    database (keyed by the engine's URL): the hubs holding it are its reference count
    (:func:`_acquire`/:func:`_release`). Its thread runs while at least one of them has
    subscribers, and hands every notification to each of those hubs."""

    def __init__(self, key: str) -> None:
        self.key = key  # the URL with its password: never logged or shown
        self._lock = threading.Lock()
        self._hubs: list[Hub] = []
        self._wanting: list[Hub] = []
        self._stop: threading.Event | None = None
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<Listener mounts={self.mounts} running={self.running}>"

    @property
    def mounts(self) -> int:
        """How many hubs (events mounts) hold this listener."""
        with self._lock:
            return len(self._hubs)

    @property
    def running(self) -> bool:
        """Whether its thread is meant to run now (some hub has subscribers)."""
        with self._lock:
            return self._thread is not None

    def thread_for(self, hub: Hub) -> threading.Thread | None:
        """The thread listening for ``hub`` now, None while ``hub`` has no subscribers."""
        with self._lock:
            return self._thread if hub in self._wanting else None

    def want(self, hub: Hub) -> threading.Event:
        """``hub`` has subscribers: start listening unless already; the event set once the
        connection listens."""
        with self._lock:
            if hub not in self._wanting:
                self._wanting.append(hub)
            if self._thread is None or self._stop is None or self._stop.is_set():
                stop = threading.Event()
                self._stop, self._listening = stop, threading.Event()
                self._thread = threading.Thread(target=self._listen,
                                                args=(stop, self._listening), daemon=True,
                                                name="rindle-events-listen")
                self._thread.start()
            return self._listening

    def unwant(self, hub: Hub) -> None:
        """``hub`` has no subscriber left; the thread stops when no hub has any."""
        with self._lock:
            if hub in self._wanting:
                self._wanting.remove(hub)
            if not self._wanting and self._stop is not None:
                self._stop.set()
                self._stop, self._thread = None, None

    def _targets(self) -> tuple[Database | None, list[Hub]]:
        with self._lock:
            return (self._hubs[0].db if self._hubs else None), list(self._wanting)

    def _dispatch(self, stop: threading.Event, change: Change | str) -> None:
        for hub in self._targets()[1]:
            hub._dispatch(stop, change)

    def _listen(self, stop: threading.Event, listening: threading.Event) -> None:
        first = True
        while not stop.is_set():
            db = self._targets()[0]
            if db is None:
                return
            try:
                raw = db.engine.raw_connection()
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


_REGISTRY_LOCK = threading.Lock()
_LISTENERS: dict[str, Listener] = {}


def _acquire(hub: Hub) -> Listener:
    """The shared listener of ``hub``'s database (made on first use), now held by ``hub``."""
    key = hub.db.engine.url.render_as_string(hide_password=False)
    with _REGISTRY_LOCK:
        listener = _LISTENERS.get(key)
        if listener is None:
            listener = _LISTENERS[key] = Listener(key)
        with listener._lock:
            listener._hubs.append(hub)
        return listener


def _release(listener: Listener, hub: Hub) -> None:
    """``hub`` lets go of ``listener``; the last hub to let go stops and forgets it."""
    listener.unwant(hub)
    with _REGISTRY_LOCK, listener._lock:
        if hub in listener._hubs:
            listener._hubs.remove(hub)
        if not listener._hubs and _LISTENERS.get(listener.key) is listener:
            del _LISTENERS[listener.key]
            if listener._stop is not None:
                listener._stop.set()
            listener._stop, listener._thread = None, None


def shared_listeners() -> list[Listener]:
    """The shared listeners this process holds now (one per PostgreSQL database with an
    events mount that is not closed)."""
    with _REGISTRY_LOCK:
        return list(_LISTENERS.values())
