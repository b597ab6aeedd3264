"""Provider webhooks: the verifying endpoint and the ingest worker it feeds.

:func:`handle_webhook` is the HTTP edge. It never parses a
body before the provider verified its signature, caps bodies at :data:`MAX_BODY` bytes
(exactly 1 MiB is accepted), and answers:

=====================================================  ======  ===========================
condition                                              status  ``rejected`` reason
=====================================================  ======  ===========================
no ``[streaming.NAME]`` for the path's provider        404     ``unknown_provider``
body over 1 MiB                                        413     ``too_large``
verification failed (signature, age, secrets, JSON)    400     the provider's reason
verification raised something else                     400     ``provider_callback_raised``
verified but no event id                               400     ``missing_event_id``
event type the provider drops                          200     (``verified``, ``dropped``)
event id already seen within the replay window         200     (``verified``, ``duplicate``)
event older than the last one applied to its row       200     (``verified``, ``stale_event``)
event recorded and enqueued                            202     (``verified``, ``enqueued``)
record or enqueue failed (database down)               503     ``queue_unavailable``
=====================================================  ======  ===========================

Every 400 has the same body, so a caller cannot tell a bad signature from a stale one.

Replay protection, in three layers:

1. **Seen ids, at the edge.** A verified, dispatched event's ``(provider, event id)`` is
   inserted into ``rindle_webhook_events`` (``INSERT ... ON CONFLICT DO NOTHING``) in the
   transaction that enqueues its job. If the id is already there the delivery is answered
   200 (so the provider stops retrying) and nothing is enqueued; of two concurrent
   deliveries of one id exactly one inserts, and only that one enqueues. Ids are kept for
   :func:`replay_window` (twice the provider's signature tolerance plus
   :data:`REPLAY_MARGIN`), longer than any captured delivery can still pass verification;
   each new record prunes at most :data:`PRUNE_BATCH` expired rows (:func:`prune_seen_events`).
2. **Live job key.** The ingest job is unique on ``provider_event:<provider>:<event id>``
   while live, and the worker skips an event whose id is the row's ``last_event_id``.
3. **Provider time.** ``ProviderAsset.last_event_at`` holds the provider's ``occurred_at``
   of the last event applied to (or, for a same-state event, confirmed on) the row. An
   event whose ``occurred_at`` is strictly older is dropped, so a replayed or out-of-order
   older event never regresses the row (``ready -> errored -> ready``): at the edge
   (answered 200, ``verified``/``stale_event``, its id still recorded) and again in the
   worker, under the row lock (``ignored``/``stale_event``) for an event enqueued before a
   newer one was applied. An event with the same time is applied. An event **without**
   ``occurred_at`` cannot be ordered: it goes through the id checks above and is applied
   as before, but leaves ``last_event_at`` untouched, so the local clock never mixes with
   the provider's.

Same-state events are idempotent no-ops.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, and_, delete, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rindle.domain.fsm import provider_asset as fsm
from rindle.domain.models import ProviderAsset, WebhookEvent, table_of, utcnow
from rindle.errors import InvalidTransition, RindleError, StreamingNotConfigured, WebhookInvalid
from rindle.jobs.outcomes import Cancel, Retry
from rindle.streaming.jobs import WEBHOOK, event_unique_key
from rindle.streaming.provider import Provider, ProviderEvent
from rindle.streaming.signatures import DEFAULT_TOLERANCE
from rindle.telemetry import redact_id

if TYPE_CHECKING:
    from rindle.streaming.service import Streaming

__all__ = ["MAX_BODY", "PRUNE_BATCH", "RACE_SNOOZE", "REPLAY_MARGIN", "WebhookResponse",
           "handle_webhook", "ingest_event", "prune_seen_events", "record_seen_event",
           "replay_window"]

log = logging.getLogger(__name__)

#: The largest webhook body accepted (bytes); exactly this many is accepted.
MAX_BODY = 1024 * 1024
#: Seconds to wait for the row of an event that arrived before its row committed, per attempt.
RACE_SNOOZE = (5, 15, 45, 90)
#: Seconds a seen event id is kept beyond twice the provider's signature tolerance.
REPLAY_MARGIN = 60
#: At most this many expired ``rindle_webhook_events`` rows are deleted per prune.
PRUNE_BATCH = 500
INVALID = "provider_webhook_invalid"
_EVENTS: Table = table_of(WebhookEvent)
_EVENT_ID_MAX = 255  # rindle_webhook_events.event_id is VARCHAR(255)
_TARGET = {"ready": "ready", "errored": "errored", "deleted": "deleted",
           "created": "processing"}


@dataclass(frozen=True)
class WebhookResponse:
    """What the endpoint answers: HTTP ``status`` and a short text ``body``; ``reason`` is
    the rejection reason or the verified kind (``dropped``/``enqueued``), for logs."""

    status: int
    body: str = ""
    reason: str | None = None


def _reject(streaming: Streaming, provider: str | None, status: int, body: str, reason: str,
            **extra: Any) -> WebhookResponse:
    meta: dict[str, Any] = {"reason": reason, **extra}
    if provider is not None:
        meta["provider"] = provider
    streaming.app.telemetry.emit("rindle.provider.webhook.rejected",
                                 {"system_time": time.time_ns()}, meta)
    return WebhookResponse(status, body, reason)


def replay_window(tolerance: int = DEFAULT_TOLERANCE) -> dt.timedelta:
    """How long a seen event id is kept: ``2 * tolerance + REPLAY_MARGIN`` seconds.

    A signature is accepted up to ``tolerance`` seconds in the future and up to
    ``tolerance`` seconds after its timestamp, so a captured delivery verifies for at most
    ``2 * tolerance`` seconds after it was first received; the margin covers clock skew
    between the app servers that record (``received_at``) and prune.
    """
    return dt.timedelta(seconds=2 * tolerance + REPLAY_MARGIN)


def _tolerance(impl: Provider) -> int:
    """The provider's signature tolerance (``webhook_tolerance``), else the default 300 s."""
    value = getattr(impl, "webhook_tolerance", DEFAULT_TOLERANCE)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULT_TOLERANCE


def _stored_id(event_id: str) -> str:
    """``event_id`` as stored: ids longer than the column are kept as their sha256."""
    if len(event_id) <= _EVENT_ID_MAX:
        return event_id
    return "sha256:" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()


def _provider_time(event: ProviderEvent) -> dt.datetime | None:
    """The event's ``occurred_at`` as an aware UTC datetime (naive means UTC), or ``None``."""
    when = event.occurred_at
    if when is None:
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def record_seen_event(session: Session, provider: str, event_id: str, *,
                      occurred_at: dt.datetime | None = None,
                      now: dt.datetime | None = None) -> bool:
    """Record ``(provider, event_id)`` in ``rindle_webhook_events`` in ``session``'s
    transaction; ``True`` if this call recorded it, ``False`` if it was already recorded.

    Race-safe: ``INSERT ... ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite (any other
    dialect inserts in a savepoint and treats ``IntegrityError`` as seen), so of two
    concurrent transactions recording one id exactly one gets ``True`` once both commit.
    Never commits; ``now`` (default: the current time) becomes ``received_at``.
    """
    values = {"provider": provider, "event_id": _stored_id(event_id),
              "received_at": now or utcnow(), "occurred_at": occurred_at}
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        ins = postgresql.insert(_EVENTS) if dialect == "postgresql" else sqlite.insert(_EVENTS)
        stmt = ins.values(values).on_conflict_do_nothing(
            index_elements=["provider", "event_id"]).returning(_EVENTS.c.event_id)
        return session.execute(stmt).first() is not None
    try:
        with session.begin_nested():
            session.execute(insert(_EVENTS).values(values))
    except IntegrityError:
        return False
    return True


def prune_seen_events(streaming: Streaming, provider: str, *, now: dt.datetime | None = None,
                      limit: int = PRUNE_BATCH) -> int:
    """Delete up to ``limit`` seen-event rows whose replay window has passed; returns how many.

    Rows of ``provider`` expire :func:`replay_window` (with that provider's tolerance) after
    their ``received_at``; rows of a provider that is no longer configured expire after the
    default window. ``now`` defaults to the current time. Runs in a transaction of its own;
    on PostgreSQL rows another prune holds are skipped, never waited for.
    """
    current = now or utcnow()
    window = replay_window(_tolerance(streaming.provider(provider)))
    expired = or_(
        and_(_EVENTS.c.provider == provider, _EVENTS.c.received_at < current - window),
        and_(_EVENTS.c.provider.not_in(sorted(streaming.configs)),
             _EVENTS.c.received_at < current - replay_window()),
    )
    batch = (select(_EVENTS.c.provider, _EVENTS.c.event_id).where(expired)
             .order_by(_EVENTS.c.received_at).limit(limit)
             .with_for_update(skip_locked=True))
    with streaming.app.db.transaction() as s:
        result = s.execute(delete(_EVENTS).where(
            tuple_(_EVENTS.c.provider, _EVENTS.c.event_id).in_(batch)))
        return int(getattr(result, "rowcount", 0) or 0)


def handle_webhook(streaming: Streaming, provider: str, body: bytes,
                   headers: Mapping[str, str], *, now: dt.datetime | None = None
                   ) -> WebhookResponse:
    """Verify, dedupe and enqueue one webhook delivery; returns the HTTP answer.

    ``headers`` may use any case. Never raises for a bad request: every outcome is a
    :class:`WebhookResponse` (see the module docstring for the status matrix). A verified
    event whose id is already in ``rindle_webhook_events`` is answered 200 ``duplicate``
    and not enqueued again; a new id whose ``occurred_at`` is older than its row's
    ``last_event_at`` is recorded and answered 200 ``stale_event`` without a job. ``now``
    (default: the current time) is the ``received_at`` recorded and the clock of the prune
    that follows a new record; signature verification always uses the provider's own clock.
    """
    if provider not in streaming.configs:
        return _reject(streaming, None, 404, "unknown provider", "unknown_provider")
    if len(body) > MAX_BODY:
        return _reject(streaming, provider, 413, "payload too large", "too_large")
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        impl = streaming.provider(provider)
        event = impl.verify_webhook(bytes(body), lowered)
    except WebhookInvalid as exc:
        return _reject(streaming, provider, 400, INVALID, exc.reason)
    except Exception as exc:  # a provider bug must not become a 500 with a traceback
        log.warning("rindle.provider.webhook provider=%s verification raised %s", provider,
                    type(exc).__name__)
        return _reject(streaming, provider, 400, INVALID, "provider_callback_raised",
                       error=type(exc).__name__)
    if not event.event_id:
        return _reject(streaming, provider, 400, INVALID, "missing_event_id",
                       event_type=event.event_type)
    meta = {"provider": provider, "event_type": event.event_type,
            "event_id": redact_id(event.event_id)}
    if impl.dispatch_kind(event.event_type) != "dispatch":
        streaming.app.telemetry.emit("rindle.provider.webhook.verified",
                                     {"system_time": time.time_ns()},
                                     {**meta, "kind": "dropped"})
        return WebhookResponse(200, "", "dropped")

    received = now or utcnow()
    when = _provider_time(event)
    try:
        with streaming.app.db.transaction() as s:
            fresh = record_seen_event(s, provider, event.event_id, occurred_at=when,
                                      now=received)
            row = _find_row(s, provider, event) if fresh and when is not None else None
            stale = row is not None and _is_stale(when, row.last_event_at)
            if fresh and not stale:
                streaming.app.jobs.enqueue(
                    s, WEBHOOK,
                    {"event_id": event.event_id, "provider": provider,
                     "event_type": event.event_type, "event": event.to_dict()},
                    unique_key=event_unique_key(provider, event.event_id))
    except Exception as exc:
        log.error("rindle.provider.webhook provider=%s enqueue failed: %s", provider,
                  type(exc).__name__)
        return _reject(streaming, provider, 503, "", "queue_unavailable",
                       event_type=event.event_type, error=type(exc).__name__)
    if not fresh:
        _verified(streaming, {**meta, "kind": "duplicate"})
        return WebhookResponse(200, "", "duplicate")
    try:
        prune_seen_events(streaming, provider, now=received)
    except Exception as exc:  # housekeeping: the delivery itself is already committed
        log.warning("rindle.provider.webhook provider=%s prune failed: %s", provider,
                    type(exc).__name__)
    if stale:
        _verified(streaming, {**meta, "kind": "stale_event"})
        return WebhookResponse(200, "", "stale_event")
    _verified(streaming, {**meta, "kind": "enqueued"})
    return WebhookResponse(202, "", "enqueued")


# --- the ingest worker ----------------------------------------------------------------------


def _find_row(s: Session, provider: str, event: ProviderEvent) -> ProviderAsset | None:
    """The provider row ``event`` is about, read in session ``s``, or ``None``."""
    if event.provider_asset_id:
        row = s.execute(select(ProviderAsset).where(
            ProviderAsset.provider_name == provider,
            ProviderAsset.provider_asset_id == event.provider_asset_id)
        ).scalar_one_or_none()
        if row is not None:
            return row
    if event.type == "upload_asset_created":
        keys = []
        if event.upload_id:
            keys.append(ProviderAsset.provider_upload_id == event.upload_id)
        if event.passthrough:
            keys.append(ProviderAsset.mux_passthrough == event.passthrough)
        if keys:
            return s.execute(select(ProviderAsset).where(
                ProviderAsset.provider_name == provider, or_(*keys))).scalars().first()
    return None


def ingest_event(streaming: Streaming, provider: str, event: ProviderEvent, *,
                 attempt: int = 1) -> str:
    """Apply one verified event to its provider row; returns the telemetry kind.

    Kinds: ``transition``, ``linked``, ``duplicate`` (same state or same event id: no-op),
    ``unknown_event``, ``stale_event`` (the event's ``occurred_at`` is strictly older than
    the row's ``last_event_at``: nothing is written, ``rindle.provider.webhook.ignored``
    is emitted). An applied event stamps ``last_event_id`` and, when it has an
    ``occurred_at``, ``last_event_at``; an event without ``occurred_at`` is never stale and
    leaves ``last_event_at`` as it was. The staleness check is repeated under the row lock
    in the writing transaction, so a concurrently applied newer event still wins.

    A row that is not visible yet raises :class:`Retry` with the race snooze for
    ``attempt`` (5, 15, 45, 90 s), then :class:`Cancel` ``provider_asset_row_missing``; an
    edge the FSM forbids raises :class:`Cancel` ``invalid_transition``; a lost race raises
    :class:`Retry`.
    """
    tel = streaming.app.telemetry
    meta: dict[str, Any] = {"provider": provider, "event_type": event.event_type,
                            "asset_id": redact_id(event.provider_asset_id),
                            "profile": None, "from_state": None, "to_state": None}

    def emit(outcome: str, kind: str, **extra: Any) -> None:
        tel.emit(f"rindle.provider.webhook.{outcome}", {"system_time": time.time_ns()},
                 {**meta, "kind": kind, **extra})

    with streaming.app.db.sessionmaker() as s:
        row = _find_row(s, provider, event)
    if row is None:
        if attempt <= len(RACE_SNOOZE):
            delay = RACE_SNOOZE[attempt - 1]
            emit("ignored", "race_snooze", attempt=attempt, delay_seconds=delay)
            raise Retry("provider asset row not visible yet", delay=delay)
        emit("exception", "race_snooze_exhausted", attempt=attempt)
        raise Cancel("provider_asset_row_missing")
    meta.update(profile=row.profile, from_state=row.state,
                asset_id=redact_id(event.provider_asset_id or row.provider_asset_id))
    if event.event_id and row.last_event_id == event.event_id:
        emit("processed", "duplicate", to_state=row.state)
        return "duplicate"
    when = _provider_time(event)
    if _is_stale(when, row.last_event_at):
        emit("ignored", "stale_event", to_state=row.state)
        return "stale_event"
    try:
        return _apply(streaming, row, event, when, emit, meta)
    except _StaleEvent as stale:  # a newer event was applied between our read and our write
        emit("ignored", "stale_event", to_state=stale.state)
        return "stale_event"


class _StaleEvent(Exception):
    """Raised inside a write when the row's ``last_event_at`` became newer than the event;
    ``state`` is the row's state at that moment (it stays there)."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


def _is_stale(when: dt.datetime | None, last: dt.datetime | None) -> bool:
    """``True`` when the event time ``when`` is strictly older than ``last``; an event or a
    row without a provider time is never stale."""
    if when is None or last is None:
        return False
    return when < (last.replace(tzinfo=dt.UTC) if last.tzinfo is None else last)


def _apply(streaming: Streaming, row: ProviderAsset, event: ProviderEvent,
           when: dt.datetime | None, emit: Any, meta: dict[str, Any]) -> str:
    """The writing half of :func:`ingest_event` (the row was read and found current)."""
    stamp: dict[str, Any] = {"last_event_id": event.event_id}
    if when is not None:
        stamp["last_event_at"] = when
    if event.type == "upload_asset_created":
        return _link_upload(streaming, row, event, stamp, emit, meta)
    target = _TARGET.get(event.type)
    if target is None:
        _update(streaming, row, stamp)
        emit("ignored", "unknown_event")
        return "unknown_event"
    meta["to_state"] = target
    if row.state == target:
        if when is not None and (row.last_event_at is None or when > row.last_event_at):
            # the provider confirmed this state at a later time: advance the clock, so an
            # older event of another state that arrives afterwards is stale
            _update(streaming, row, stamp, touch=False)
        emit("processed", "duplicate")
        return "duplicate"
    if not fsm.can_transition(row.state, target):
        emit("exception", "invalid_transition")
        raise Cancel(f"invalid_transition: {row.state} -> {target}")
    values: dict[str, Any] = dict(stamp)
    if target == "ready":
        values.update(last_sync_error=None, raw_provider_metadata=dict(event.data))
        if event.playback_ids:
            values["playback_ids"] = list(event.playback_ids)
    elif target == "errored":
        values.update(last_sync_error=(event.error or None),
                      raw_provider_metadata=dict(event.data))
    _transition(streaming, row, target, values)
    emit("processed", "transition")
    return "transition"


def _link_upload(streaming: Streaming, row: ProviderAsset, event: ProviderEvent,
                 stamp: dict[str, Any], emit: Any, meta: dict[str, Any]) -> str:
    values: dict[str, Any] = {**stamp, "raw_provider_metadata": dict(event.data)}
    newly = bool(event.provider_asset_id) and row.provider_asset_id != event.provider_asset_id
    if event.provider_asset_id:
        values["provider_asset_id"] = event.provider_asset_id
    if row.state == "uploading":
        meta["to_state"] = "processing"
        _transition(streaming, row, "processing", values)
        emit("processed", "linked")
        return "linked"
    if row.state in ("processing", "ready"):
        meta["to_state"] = row.state
        _update(streaming, row, values)
        kind = "linked" if newly else "duplicate"
        emit("processed", kind)
        return kind
    meta["to_state"] = "processing"
    emit("exception", "invalid_transition")
    raise Cancel(f"invalid_transition: {row.state} -> processing")


def _check_current(s: Session, row: ProviderAsset, values: Mapping[str, Any]) -> None:
    """Under the row lock (``FOR UPDATE`` on PostgreSQL; SQLite transactions already hold
    the write lock), raise :class:`_StaleEvent` if the event time in ``values`` is older
    than the row's ``last_event_at`` now."""
    when = values.get("last_event_at")
    if when is None:
        return
    current = s.execute(select(ProviderAsset.state, ProviderAsset.last_event_at)
                        .where(ProviderAsset.id == row.id).with_for_update()).first()
    if current is not None and _is_stale(when, current.last_event_at):
        raise _StaleEvent(current.state)


def _transition(streaming: Streaming, row: ProviderAsset, target: str,
                values: dict[str, Any]) -> None:
    try:
        with streaming.app.db.transaction() as s:
            _check_current(s, row, values)
            fsm.transition(s, row.id, row.state, target, telemetry=streaming.app.telemetry,
                           values=values)
    except InvalidTransition as exc:  # another writer moved it: re-read on the next attempt
        raise Retry(f"provider asset moved concurrently ({exc.from_state} -> "
                    f"{exc.to_state})", delay=1) from None


def _update(streaming: Streaming, row: ProviderAsset, values: dict[str, Any], *,
            touch: bool = True) -> None:
    """Non-state columns, guarded on the state the row was read in (and on the event
    not being older than the row's ``last_event_at``); ``touch=False`` keeps
    ``updated_at`` (the sync's staleness clock) as it was."""
    table: Table = table_of(ProviderAsset)
    with streaming.app.db.transaction() as s:
        _check_current(s, row, values)
        result = s.execute(update(table).where(table.c.id == row.id,
                                               table.c.state == row.state)
                           .values(**values, updated_at=utcnow() if touch
                                   else table.c.updated_at))
        done = getattr(result, "rowcount", 0)
    if not done:
        raise Retry("provider asset moved concurrently", delay=1)


def handle_job_event(streaming: Streaming, args: Mapping[str, Any], attempt: int) -> str:
    """Decode a webhook job's args and apply the event (the job handler's body)."""
    provider = str(args.get("provider") or "")
    if provider not in streaming.configs:
        raise Cancel(StreamingNotConfigured.code)
    try:
        event = ProviderEvent.from_dict(args.get("event") or {})
    except (TypeError, ValueError, RindleError) as exc:
        raise Cancel(f"unreadable event: {type(exc).__name__}") from None
    return ingest_event(streaming, provider, event, attempt=attempt)


def _verified(streaming: Streaming, metadata: dict[str, Any]) -> None:
    """``rindle.provider.webhook.verified`` for a delivery whose transaction has ended:
    once it committed (inside ``app.bind`` or a Django atomic block: after the host's
    commit, never after its rollback)."""
    streaming.app.db.when_committed(functools.partial(
        streaming.app.telemetry.emit, "rindle.provider.webhook.verified",
        {"system_time": time.time_ns()}, metadata))
