"""Provider webhooks: the verifying endpoint and the ingest worker it feeds.

:func:`handle_webhook` is the HTTP edge (reference backends.md §3.7). It never parses a
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
event enqueued (or already enqueued: same event id)    202     (``verified``, ``enqueued``)
enqueue failed (database down)                         503     ``queue_unavailable``
=====================================================  ======  ===========================

Every 400 has the same body, so a caller cannot tell a bad signature from a stale one.
Dedupe: the ingest job is unique on ``provider_event:<provider>:<event id>`` while live, and
the worker records the last event id it applied on the row, so a re-delivered event is
answered 202 and applied at most once. Same-state events are idempotent no-ops.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, or_, select, update

from rindle.domain.fsm import provider_asset as fsm
from rindle.domain.models import ProviderAsset, utcnow
from rindle.errors import InvalidTransition, RindleError, StreamingNotConfigured, WebhookInvalid
from rindle.jobs.outcomes import Cancel, Retry
from rindle.streaming.provider import ProviderEvent
from rindle.telemetry import redact_id

if TYPE_CHECKING:
    from rindle.streaming.service import Streaming

__all__ = ["MAX_BODY", "RACE_SNOOZE", "WebhookResponse", "handle_webhook", "ingest_event"]

log = logging.getLogger("rindle.streaming.webhooks")

#: The largest webhook body accepted (bytes); exactly this many is accepted.
MAX_BODY = 1024 * 1024
#: Seconds to wait for the row of an event that arrived before its row committed, per attempt.
RACE_SNOOZE = (5, 15, 45, 90)
INVALID = "provider_webhook_invalid"
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


def handle_webhook(streaming: Streaming, provider: str, body: bytes,
                   headers: Mapping[str, str]) -> WebhookResponse:
    """Verify, dedupe and enqueue one webhook delivery; returns the HTTP answer.

    ``headers`` may use any case. Never raises for a bad request: every outcome is a
    :class:`WebhookResponse` (see the module docstring for the status matrix).
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
    from rindle.streaming.jobs import WEBHOOK, event_unique_key

    try:
        with streaming.app.db.transaction() as s:
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
    streaming.app.telemetry.emit("rindle.provider.webhook.verified",
                                 {"system_time": time.time_ns()},
                                 {**meta, "kind": "enqueued"})
    return WebhookResponse(202, "", "enqueued")


# --- the ingest worker ----------------------------------------------------------------------


def _find_row(streaming: Streaming, provider: str, event: ProviderEvent
              ) -> ProviderAsset | None:
    with streaming.app.db.sessionmaker() as s:
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
    ``unknown_event``. A row that is not visible yet raises :class:`Retry` with the race
    snooze for ``attempt`` (5, 15, 45, 90 s), then :class:`Cancel`
    ``provider_asset_row_missing``; an edge the FSM forbids raises :class:`Cancel`
    ``invalid_transition``; a lost race raises :class:`Retry`.
    """
    tel = streaming.app.telemetry
    meta: dict[str, Any] = {"provider": provider, "event_type": event.event_type,
                            "asset_id": redact_id(event.provider_asset_id),
                            "profile": None, "from_state": None, "to_state": None}

    def emit(outcome: str, kind: str, **extra: Any) -> None:
        tel.emit(f"rindle.provider.webhook.{outcome}", {"system_time": time.time_ns()},
                 {**meta, "kind": kind, **extra})

    row = _find_row(streaming, provider, event)
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
    when = event.occurred_at or utcnow()
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    stamp = {"last_event_at": when, "last_event_id": event.event_id}

    if event.type == "upload_asset_created":
        return _link_upload(streaming, row, event, stamp, emit, meta)
    target = _TARGET.get(event.type)
    if target is None:
        _update(streaming, row, stamp)
        emit("ignored", "unknown_event")
        return "unknown_event"
    meta["to_state"] = target
    if row.state == target:
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


def _transition(streaming: Streaming, row: ProviderAsset, target: str,
                values: dict[str, Any]) -> None:
    try:
        with streaming.app.db.transaction() as s:
            fsm.transition(s, row.id, row.state, target, telemetry=streaming.app.telemetry,
                           values=values)
    except InvalidTransition as exc:  # another writer moved it: re-read on the next attempt
        raise Retry(f"provider asset moved concurrently ({exc.from_state} -> "
                    f"{exc.to_state})", delay=1) from None


def _update(streaming: Streaming, row: ProviderAsset, values: dict[str, Any]) -> None:
    """Non-state columns, guarded on the state the row was read in."""
    table: Table = ProviderAsset.__table__  # type: ignore[assignment]
    with streaming.app.db.transaction() as s:
        result = s.execute(update(table).where(table.c.id == row.id,
                                               table.c.state == row.state)
                           .values(**values, updated_at=utcnow()))
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
