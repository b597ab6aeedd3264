"""Defensive provider sync: the per-row worker and the cron coordinator that fans it out.

Per-row sync (:func:`sync_provider_asset`), for rows that may have missed a webhook:

1. load the row; gone -> nothing to do;
2. ``uploading``/``processing`` untouched for more than ``provider_stuck_threshold_seconds``
   -> ``errored`` with ``last_sync_error = "stuck in :<state> past threshold"`` and
   ``rindle.provider.sync.stuck``, **without** calling the provider;
3. else ``get_asset`` and reconcile: same state -> no write, ``rindle.provider.sync.resolved``
   with ``no_change: true``; a reachable state -> one guarded FSM transition persisting the
   state and playback ids, ``resolved`` with ``no_change: false``; an unreachable one ->
   ``errored`` ``"live state <to> not reachable from <from>"``;
4. provider 404 -> ``errored`` ``"<provider> asset not found"`` and ``resolved``;
5. any other provider error -> ``last_sync_error`` breadcrumb (state untouched) and the error
   propagates, so the job retries.

Telemetry metadata is exactly ``{profile, provider, asset_id, provider_state, age_ms,
no_change}``: ``asset_id`` is :func:`rindle.telemetry.redact_id` of the provider's id,
``provider_state`` the row's state after the sync, and ``age_ms`` the milliseconds since the
row's ``updated_at`` as read **before** the sync wrote anything (so on ``stuck`` it exceeds
the threshold; with ``no_change: true`` it is the time since the last real change and grows
while sync is healthy: filter on ``no_change`` before alerting on it).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, or_, select, update
from sqlalchemy.orm import Session

from rindle.domain.fsm import provider_asset as fsm
from rindle.domain.models import ProviderAsset, table_of, utcnow
from rindle.errors import InvalidTransition, ProviderAssetNotFound, ProviderSyncFailed
from rindle.streaming.jobs import SYNC, sync_unique_key
from rindle.telemetry import redact_id

if TYPE_CHECKING:
    from rindle.streaming.provider import LiveAsset
    from rindle.streaming.service import Streaming

__all__ = ["ACTIVE_STATES", "SyncDueReport", "SyncResult", "sync_due", "sync_provider_asset"]

log = logging.getLogger(__name__)

#: States in which a row waits on the provider (polled, and subject to the stuck check).
ACTIVE_STATES = ("uploading", "processing")
RESOLVED = "rindle.provider.sync.resolved"
STUCK = "rindle.provider.sync.stuck"
MAX_ERROR = 4096


@dataclass(frozen=True)
class SyncResult:
    """What one per-row sync did.

    ``outcome``: ``stuck``, ``resolved``, ``missing`` (no such row), ``raced`` (another
    writer moved the row first; nothing was overwritten) or ``skipped`` (the row has no
    provider id to ask about yet). ``state`` is the row's state afterwards.
    """

    outcome: str
    state: str | None = None
    no_change: bool = False
    age_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class SyncDueReport:
    """What one coordinator run did (counter names as the reference logs them)."""

    rows_scanned: int = 0
    jobs_enqueued: int = 0
    jobs_conflicted: int = 0
    floor_seconds: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _find(session: Session, ident: uuid.UUID | str) -> ProviderAsset | None:
    row_id: uuid.UUID | None = None
    if isinstance(ident, uuid.UUID):
        row_id = ident
    else:
        try:
            row_id = uuid.UUID(ident)
        except ValueError:
            row_id = None
    if row_id is not None:
        row: ProviderAsset | None = session.get(ProviderAsset, row_id)
        if row is not None:
            return row
    if isinstance(ident, uuid.UUID):
        return None
    return session.execute(select(ProviderAsset).where(
        ProviderAsset.provider_asset_id == str(ident))).scalars().first()


def _age_ms(row: ProviderAsset, now: dt.datetime) -> int:
    updated = row.updated_at
    if updated.tzinfo is None:  # naive timestamps are UTC
        updated = updated.replace(tzinfo=dt.UTC)
    return max(0, int((now - updated).total_seconds() * 1000))


def sync_provider_asset(streaming: Streaming, ident: uuid.UUID | str, *,
                        now: dt.datetime | None = None) -> SyncResult:
    """Reconcile one provider row with the provider (see the module docstring).

    ``ident`` is the row's id (what the sync jobs carry, so provider ids stay out of the job
    table) or the provider's asset id. Raises :class:`~rindle.errors.ProviderSyncFailed`
    for provider failures other than 404, after recording the breadcrumb.
    """
    app = streaming.app
    with app.db.sessionmaker() as s:
        row = _find(s, ident)
    if row is None:
        return SyncResult("missing")
    cfg = streaming.config(row.provider_name)
    moment = now or utcnow()
    age_ms = _age_ms(row, moment)
    base = {"profile": row.profile, "provider": row.provider_name,
            "asset_id": redact_id(row.provider_asset_id)}

    def emit(event: str, state: str, no_change: bool) -> None:
        report = functools.partial(
            app.telemetry.emit, event, {"system_time": time.time_ns()},
            {**base, "provider_state": state, "age_ms": age_ms, "no_change": no_change})
        if no_change:
            report()
        else:  # after the write it reports (inside app.bind: after the host's commit)
            app.db.when_committed(report)

    if row.state in ACTIVE_STATES and age_ms > cfg.stuck_threshold_seconds * 1000:
        message = f"stuck in :{row.state} past threshold"
        if not _write(streaming, row, "errored", {"last_sync_error": message}):
            return SyncResult("raced", None, False, age_ms)
        log.warning("rindle.provider.sync.stuck provider=%s asset_id=%s state=%s age_ms=%d",
                    row.provider_name, base["asset_id"], row.state, age_ms)
        emit(STUCK, "errored", False)
        return SyncResult("stuck", "errored", False, age_ms)
    if not row.provider_asset_id:
        return SyncResult("skipped", row.state, True, age_ms)

    provider = streaming.provider(row.provider_name)
    try:
        live = provider.get_asset(row.provider_asset_id)
    except ProviderAssetNotFound:
        target, values = "errored", {"last_sync_error": f"{row.provider_name} asset not found"}
    except ProviderSyncFailed as exc:
        _breadcrumb(streaming, row, f"{exc.code}: {exc.message}")
        raise
    else:
        if live.state == row.state:
            emit(RESOLVED, row.state, True)
            return SyncResult("resolved", row.state, True, age_ms)
        target, values = _reconcile(row, live)

    if target == row.state or not fsm.can_transition(row.state, target):
        # nothing reachable to write (e.g. a deleted row whose asset is gone): reconciled
        emit(RESOLVED, row.state, True)
        return SyncResult("resolved", row.state, True, age_ms)
    if not _write(streaming, row, target, values):
        return SyncResult("raced", None, False, age_ms)
    emit(RESOLVED, target, False)
    return SyncResult("resolved", target, False, age_ms)


def _reconcile(row: ProviderAsset, live: LiveAsset) -> tuple[str, dict[str, Any]]:
    """The transition that brings ``row`` to ``live``: its target and column values."""
    live_state = live.state
    if live_state is None or not fsm.can_transition(row.state, live_state):
        return "errored", {"last_sync_error":
                           f"live state {live_state or ''} not reachable from {row.state}"}
    values: dict[str, Any] = {"raw_provider_metadata": dict(live.raw)}
    if live.playback_ids:
        values["playback_ids"] = list(live.playback_ids)
    if live_state == "errored":
        values["last_sync_error"] = (live.error or "the provider reports the asset errored"
                                     )[:MAX_ERROR]
    elif live_state in ("ready", "processing"):
        values["last_sync_error"] = None
    return live_state, values


def _write(streaming: Streaming, row: ProviderAsset, target: str,
           values: dict[str, Any]) -> bool:
    """One guarded transition from the state ``row`` was read in; False on a lost race."""
    app = streaming.app
    try:
        with app.db.transaction() as s:
            fsm.transition(s, row.id, row.state, target, telemetry=app.telemetry,
                           values=values)
    except InvalidTransition as exc:
        log.info("rindle.provider.sync.raced provider=%s asset_id=%s: %s", row.provider_name,
                 redact_id(row.provider_asset_id), exc.to_state)
        return False
    return True


def _breadcrumb(streaming: Streaming, row: ProviderAsset, message: str) -> None:
    """Record a transient failure on the row (state untouched; only when it changed)."""
    text = message[:MAX_ERROR]
    if row.last_sync_error == text:
        return
    table: Table = table_of(ProviderAsset)
    with streaming.app.db.transaction() as s:
        s.execute(update(table).where(table.c.id == row.id, table.c.state == row.state)
                  .values(last_sync_error=text, updated_at=utcnow()))


def sync_due(streaming: Streaming, *, now: dt.datetime | None = None) -> SyncDueReport:
    """Enqueue one per-row sync job for every row that waits on its provider.

    Per configured provider: rows in ``uploading``/``processing`` with a provider id and
    ``updated_at`` older than ``provider_polling_floor_seconds`` (and rows without one once
    they are past the stuck threshold, so a failed ingest is reaped instead of waiting
    forever), oldest first, at most ``provider_polling_batch_size``. Each job is unique on
    the row (``provider_sync:<id>``) while it is live, so a second run before the first jobs
    ran enqueues nothing new.
    """
    app = streaming.app
    moment = now or utcnow()
    report = SyncDueReport(floor_seconds={})
    queue = app.jobs
    for name, cfg in sorted(streaming.configs.items()):
        assert report.floor_seconds is not None
        report.floor_seconds[name] = cfg.polling_floor_seconds
        cutoff = moment - dt.timedelta(seconds=cfg.polling_floor_seconds)
        stuck = moment - dt.timedelta(seconds=cfg.stuck_threshold_seconds)
        with app.db.transaction() as s:
            ids = s.execute(
                select(ProviderAsset.id)
                .where(ProviderAsset.state.in_(ACTIVE_STATES),
                       ProviderAsset.updated_at < cutoff,
                       ProviderAsset.provider_name == name,
                       # rows without a provider id have nothing to ask about, but once
                       # past the stuck threshold the per-row job reaps them
                       or_(ProviderAsset.provider_asset_id.is_not(None),
                           ProviderAsset.updated_at < stuck))
                .order_by(ProviderAsset.updated_at, ProviderAsset.id)
                .limit(cfg.polling_batch_size)).scalars().all()
            items = [({"provider_asset_row_id": str(i)}, sync_unique_key(i)) for i in ids]
            fresh = queue.enqueue_unique_batch(s, SYNC, items)
        report.rows_scanned += len(ids)
        report.jobs_enqueued += fresh
        report.jobs_conflicted += len(ids) - fresh
    log.info("rindle.streaming.sync_due.completed rows_scanned=%d jobs_enqueued=%d "
             "jobs_conflicted=%d", report.rows_scanned, report.jobs_enqueued,
             report.jobs_conflicted)
    return report
