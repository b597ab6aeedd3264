"""Server-push ingest: once a streaming profile's ``source_variant`` is ready, hand a signed
URL of it to the provider.

:func:`enqueue_server_push` is called inside the transaction that marks the variant ready
(so the job commits with the state); the job (``rindle.provider.ingest``, unique per asset,
profile and variant) runs :func:`ingest_asset`:

1. the asset and variant must still be what the job was enqueued for (storage key, recipe
   digest), else the job is cancelled ``stale_source:asset_changed|recipe_changed``;
2. the provider row ``(asset, profile, provider)`` is created ``pending`` if absent;
3. ``pending`` -> ``uploading`` is committed, then the provider is asked (outside any
   transaction) to create the asset from a 30-minute signed URL of the variant;
4. ``uploading`` -> ``processing`` persists the provider id and playback ids.

A retry that finds the row ``uploading`` without a provider id creates again (the
reference never retried it: the row was stuck for good); ``uploading`` with an id,
``processing`` and ``ready`` are done (idempotent); ``errored`` and ``deleted`` cancel. A
429 retries after the provider's ``Retry-After``. If the source changed while the provider
was creating, the new provider asset is deleted again (best effort) and the job cancelled.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rindle.domain.fsm import provider_asset as fsm
from rindle.domain.models import Asset, ProviderAsset, Variant
from rindle.errors import InvalidTransition, ProviderQuotaExceeded, ProviderSyncFailed
from rindle.jobs.outcomes import Cancel, Retry
from rindle.telemetry import redact_id

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.streaming.service import Streaming

__all__ = ["INGEST", "SOURCE_URL_TTL", "enqueue_server_push", "ingest_asset"]

log = logging.getLogger(__name__)

INGEST = "rindle.provider.ingest"
#: Seconds the provider has to fetch the source variant.
SOURCE_URL_TTL = 1800


def enqueue_server_push(app: AppContext, session: Session, asset: Asset, variant_name: str,
                        recipe_digest: str | None) -> bool:
    """Enqueue the ingest job when ``variant_name`` is the ``source_variant`` of a
    server-push streaming profile; returns whether a job was enqueued. Runs in the caller's
    transaction; does nothing for every other profile and variant."""
    profile = app.profiles.get(asset.profile)
    cfg = profile.delivery.streaming if profile is not None else None
    if cfg is None or cfg.get("ingest_mode") != "server_push" or (
            cfg.get("source_variant") != variant_name):
        return False
    result = app.jobs.enqueue(session, INGEST, {
        "asset_id": str(asset.id), "profile": asset.profile, "variant_name": variant_name,
        "expected_storage_key": asset.storage_key, "expected_recipe_digest": recipe_digest,
    }, unique_key=f"provider_ingest:{asset.id}:{asset.profile}:{variant_name}")
    return not result.skipped


def _stale(app: AppContext, args: dict[str, Any]) -> str | None:
    with app.db.sessionmaker() as s:
        asset = s.get(Asset, uuid.UUID(args["asset_id"]))
        variant = s.execute(select(Variant).where(
            Variant.asset_id == uuid.UUID(args["asset_id"]),
            Variant.name == args["variant_name"])).scalar_one_or_none()
    if asset is None or variant is None:
        return "stale_source:gone"
    if asset.storage_key != args.get("expected_storage_key"):
        return "stale_source:asset_changed"
    if variant.recipe_digest != args.get("expected_recipe_digest") or variant.state != "ready":
        return "stale_source:recipe_changed"
    return None


def _ensure_row(app: AppContext, asset_id: uuid.UUID, profile: str, provider: str,
                policy: str) -> ProviderAsset:
    query = select(ProviderAsset).where(ProviderAsset.asset_id == asset_id,
                                        ProviderAsset.profile == profile,
                                        ProviderAsset.provider_name == provider)
    with app.db.sessionmaker() as s:
        row = s.execute(query).scalar_one_or_none()
    if row is not None:
        return row
    try:
        with app.db.transaction() as s:
            s.add(ProviderAsset(asset_id=asset_id, profile=profile, provider_name=provider,
                                playback_policy=policy, ingest_mode="server_push",
                                state="pending"))
    except IntegrityError:
        pass  # a concurrent run inserted it
    with app.db.sessionmaker() as s:
        return s.execute(query).scalar_one()


def ingest_asset(streaming: Streaming, args: dict[str, Any]) -> str:
    """Run one server-push ingest (the job's body); returns the row's state afterwards.

    Raises :class:`Cancel` for stale sources and rows that can no longer ingest, and
    :class:`Retry` for provider rate limits and failures. Telemetry: one
    ``rindle.provider.ingest.start``, then exactly one ``.stop`` (``result`` ``created``, or
    ``unchanged`` for a row already pushed) or ``.exception`` (``kind`` ``cancelled``,
    ``retry`` or ``error``, and a ``reason``: the job outcome's reason, the provider error's
    code, or the exception's type), so a trace's ingest span always ends with the work.
    """
    app = streaming.app
    tel = app.telemetry
    profile = app.profile(args["profile"])
    cfg = streaming.streaming_config(profile)
    provider_name = str(cfg["provider"])
    meta = {"profile": profile.name, "provider": provider_name, "asset_id": None,
            "variant_name": args["variant_name"]}
    started = time.monotonic()
    tel.emit("rindle.provider.ingest.start", {"system_time": time.time_ns()}, meta)
    try:
        state, provider_asset_id, created = _push(streaming, args, profile.name,
                                                  provider_name, str(cfg["playback_policy"]))
    except Exception as exc:
        if isinstance(exc, Cancel | Retry):
            kind, reason = ("cancelled" if isinstance(exc, Cancel) else "retry"), exc.reason
        elif isinstance(exc, ProviderSyncFailed):
            kind, reason = "error", exc.code
        else:
            kind, reason = "error", type(exc).__name__
        tel.emit("rindle.provider.ingest.exception",
                 {"duration": time.monotonic() - started},
                 {**meta, "kind": kind, "reason": reason})
        raise
    tel.emit("rindle.provider.ingest.stop",
             {"system_time": time.time_ns(), "duration": time.monotonic() - started},
             {**meta, "asset_id": redact_id(provider_asset_id), "state": state,
              "result": "created" if created else "unchanged"})
    return state


def _push(streaming: Streaming, args: dict[str, Any], profile: str, provider_name: str,
          policy: str) -> tuple[str, str | None, bool]:
    """The ingest's steps (see the module docstring): the row's state and provider asset id
    afterwards, and whether this run created the provider asset (``False``: the row was
    already pushed); raises what :func:`ingest_asset` documents."""
    app = streaming.app
    tel = app.telemetry
    reason = _stale(app, args)
    if reason:
        raise Cancel(reason)
    asset_id = uuid.UUID(args["asset_id"])
    row = _ensure_row(app, asset_id, profile, provider_name, policy)
    if row.state == "errored":
        raise Cancel("provider_asset_errored")
    if row.state == "deleted":
        raise Cancel("provider_asset_deleted")
    if row.state in ("processing", "ready") or (row.state == "uploading"
                                                and row.provider_asset_id):
        return row.state, row.provider_asset_id, False
    if row.state == "pending":
        try:
            with app.db.transaction() as s:
                fsm.transition(s, row.id, "pending", "uploading", telemetry=tel)
        except InvalidTransition:
            raise Retry("provider row moved concurrently", delay=1) from None
    source_url = app.url(asset_id, args["variant_name"], expires_in=SOURCE_URL_TTL)
    provider = streaming.provider(provider_name)
    try:
        created = provider.create_asset(source_url, playback_policy=policy)
    except ProviderQuotaExceeded as exc:
        raise Retry("provider_quota_exceeded", delay=exc.retry_after) from None
    reason = _stale(app, args)
    try:
        if reason:
            raise Cancel(reason)
        with app.db.transaction() as s:
            fsm.transition(s, row.id, "uploading", "processing", telemetry=tel, values={
                "provider_asset_id": created.provider_asset_id,
                "playback_ids": list(created.playback_ids), "raw_provider_metadata": {},
                "last_sync_error": None})
    except (Cancel, InvalidTransition, IntegrityError) as exc:
        try:  # compensate: the provider asset must not outlive the failed persist
            provider.delete_asset(created.provider_asset_id)
        except Exception as cleanup:
            log.warning("rindle.provider.ingest compensation delete failed: %s",
                        type(cleanup).__name__)
        if isinstance(exc, Cancel):
            raise
        raise Retry(f"could not record the provider asset ({type(exc).__name__})") from None
    return "processing", created.provider_asset_id, True
