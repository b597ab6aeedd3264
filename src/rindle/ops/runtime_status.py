"""``runtime-status``: a bounded, read-only report of degraded or stuck work.

Every number is an aggregate computed in SQL; every list is a sample capped at ``limit``;
nothing is written. Ids in samples are full asset ids (operators need them for
``rindle requeue``), never storage keys, session URIs or provider ids.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from rindle import defaults
from rindle.domain.models import Asset, Job, ProviderAsset, UploadSession, Variant, utcnow
from rindle.errors import (
    ConfigError,
    RindleError,
    SchemaOutOfDate,
    UnknownProfile,
    UsageError,
)
from rindle.jobs.kinds import PROMOTE
from rindle.ops.report import Report
from rindle.ops.requeue import PROMOTABLE
from rindle.streaming.service import ProviderConfig

if TYPE_CHECKING:
    from rindle.context import AppContext

__all__ = ["RuntimeStatusReport", "runtime_status"]

DEFAULT_OLDER_THAN = defaults.RUNTIME_STATUS_OLDER_THAN
DEFAULT_LIMIT = defaults.RUNTIME_STATUS_LIMIT
DEFAULT_PROVIDER_STUCK = defaults.STREAMING_STUCK_THRESHOLD_SECONDS


@dataclass
class RuntimeStatusReport(Report):
    """What is degraded or stuck, and which verb to run about it."""

    profile: str | None = None
    older_than_sec: int = DEFAULT_OLDER_THAN
    limit: int = DEFAULT_LIMIT
    assets_by_state: dict[str, int] = field(default_factory=dict)
    variants_by_state: dict[str, int] = field(default_factory=dict)
    stuck_variants: list[dict[str, Any]] = field(default_factory=list)
    stuck_variant_count: int = 0
    failed_variants: list[dict[str, Any]] = field(default_factory=list)
    failed_variant_count: int = 0
    expired_sessions: int = 0
    stale_open_sessions: int = 0
    provider_stuck: int = 0
    provider_stuck_threshold_sec: dict[str, int] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    discarded_jobs: int = 0
    retrying_job_count: int = 0
    retrying_jobs: list[dict[str, Any]] = field(default_factory=list)
    discarded: list[dict[str, Any]] = field(default_factory=list)
    #: Assets (of the discarded jobs listed) whose promotion gave up and that are still
    #: before ``available``: ``rindle requeue ASSET_ID`` re-runs it.
    promotions_given_up: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The text block."""
        scope = f" (profile {self.profile})" if self.profile else ""
        lines = [f"runtime status{scope}, stuck threshold {self.older_than_sec}s"]
        lines.append("assets    " + _pairs(self.assets_by_state))
        lines.append("variants  " + _pairs(self.variants_by_state))
        lines.append(f"stuck     {self.stuck_variant_count} variant(s) queued/processing for "
                     f"more than {self.older_than_sec}s")
        for row in self.stuck_variants:
            lines.append(f"          {row['asset_id']} {row['variant']} {row['state']} "
                         f"{row['age_sec']}s")
        lines.append(f"failed    {self.failed_variant_count} variant(s) failed or cancelled")
        for row in self.failed_variants:
            lines.append(f"          {row['asset_id']} {row['variant']} {row['state']}: "
                         f"{row['error']}")
        lines.append(f"uploads   {self.stale_open_sessions} open session(s) past expiry, "
                     f"{self.expired_sessions} expired awaiting cleanup")
        limits = ", ".join(f"{'any other' if k == '*' else k} {v}s"
                           for k, v in sorted(self.provider_stuck_threshold_sec.items()))
        lines.append(f"provider  {self.provider_stuck} provider asset(s) uploading/processing "
                     f"past the stuck threshold ({limits})")
        for queue, info in sorted(self.queues.items()):
            lines.append(f"queue     {queue}: {info['waiting']} waiting, {info['executing']} "
                         f"running, oldest {info['oldest_wait_sec']}s")
        lines.append(f"retrying  {self.retrying_job_count} job(s) failed and wait to run "
                     "again")
        lines.extend(_job_line(job) for job in self.retrying_jobs)
        lines.append(f"discarded {self.discarded_jobs} job(s) gave up")
        lines.extend(_job_line(job) for job in self.discarded)
        lines.append("next:" if self.recommendations else "next:     nothing to do")
        lines.extend(f"  - {r}" for r in self.recommendations)
        return "\n".join(lines)


def _stuck_thresholds(app: AppContext, override: int | None) -> dict[str, int]:
    """Seconds after which a provider row is stuck: ``"*"`` for rows of any provider, or one
    entry per configured provider plus ``"*"`` (the default) for the others."""
    if override is not None:
        return {"*": override}
    out = {"*": DEFAULT_PROVIDER_STUCK}
    for name, table in app.settings.streaming.items():
        try:
            out[name] = ProviderConfig.parse(name, table).stuck_threshold_seconds
        except ConfigError:  # reported by doctor; this report stays read-only and bounded
            continue
    return out


def _stuck_since(thresholds: dict[str, int], now: dt.datetime) -> ColumnElement[bool]:
    """Rows whose ``updated_at`` is older than their provider's threshold (strictly)."""
    named = {k: v for k, v in thresholds.items() if k != "*"}
    default = ProviderAsset.updated_at < now - dt.timedelta(seconds=thresholds["*"])
    if not named:
        return default
    return or_(*(and_(ProviderAsset.provider_name == name,
                      ProviderAsset.updated_at < now - dt.timedelta(seconds=sec))
                 for name, sec in named.items()),
               and_(ProviderAsset.provider_name.not_in(list(named)), default))


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"


def runtime_status(app: AppContext, *, profile: str | None = None,
                   older_than: int = DEFAULT_OLDER_THAN, limit: int = DEFAULT_LIMIT,
                   provider_stuck: int | None = None) -> RuntimeStatusReport:
    """Collect the report; refuses (with telemetry) before any query if the setup is not ready.

    A provider asset counts as stuck in ``uploading``/``processing`` untouched for longer
    than ``provider_stuck`` seconds, or, when that is None, than its provider's
    ``provider_stuck_threshold_seconds`` (7200 where unset), the threshold the per-row sync
    applies.
    """
    try:
        if limit < 1 or older_than < 0 or (provider_stuck is not None and provider_stuck < 0):
            raise UsageError("limit must be >= 1; older_than and provider_stuck must be >= 0")
        if profile is not None and profile not in app.profiles:
            raise UsageError(UnknownProfile(profile, app.profiles).message,
                             code="unknown_profile")
        app.db.ensure_schema_current()
    except RindleError as exc:
        reason = "schema_not_ready" if isinstance(exc, SchemaOutOfDate) else exc.code
        app.telemetry.emit("rindle.runtime.refusal", {"system_time": time.time_ns()},
                           {"surface": "runtime_status", "reason": reason, "mode": "api"})
        raise
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=older_than)
    report = RuntimeStatusReport(profile=profile, older_than_sec=older_than, limit=limit)
    scoped = [Asset.profile == profile] if profile else []
    with app.db.engine.connect() as conn:
        report.assets_by_state = dict(conn.execute(
            select(Asset.state, func.count()).where(*scoped).group_by(Asset.state)).tuples().all())
        vjoin = select(Variant.state, func.count()).join(Asset, Asset.id == Variant.asset_id)
        report.variants_by_state = dict(conn.execute(
            vjoin.where(*scoped).group_by(Variant.state)).tuples().all())
        stuck = (Variant.state.in_(("queued", "processing")), Variant.updated_at < cutoff)
        report.stuck_variant_count = conn.execute(
            select(func.count()).select_from(Variant).join(Asset, Asset.id == Variant.asset_id)
            .where(*scoped, *stuck)).scalar() or 0
        for row in conn.execute(
                select(Variant.asset_id, Variant.name, Variant.state, Variant.updated_at)
                .join(Asset, Asset.id == Variant.asset_id).where(*scoped, *stuck)
                .order_by(Variant.updated_at).limit(limit)):
            age = int((now - _aware(row.updated_at)).total_seconds())
            report.stuck_variants.append({"asset_id": str(row.asset_id), "variant": row.name,
                                          "state": row.state, "age_sec": age})
        failed = (Variant.state.in_(("failed", "cancelled")),)
        report.failed_variant_count = conn.execute(
            select(func.count()).select_from(Variant).join(Asset, Asset.id == Variant.asset_id)
            .where(*scoped, *failed)).scalar() or 0
        for frow in conn.execute(
                select(Variant.asset_id, Variant.name, Variant.state, Variant.error_reason)
                .join(Asset, Asset.id == Variant.asset_id).where(*scoped, *failed)
                .order_by(Variant.updated_at.desc()).limit(limit)):
            error = (frow.error_reason or "").splitlines()
            report.failed_variants.append({
                "asset_id": str(frow.asset_id), "variant": frow.name, "state": frow.state,
                "error": error[0][:120] if error else ""})
        sess = select(func.count()).select_from(UploadSession).join(
            Asset, Asset.id == UploadSession.asset_id).where(*scoped)
        report.expired_sessions = conn.execute(
            sess.where(UploadSession.state == "expired")).scalar() or 0
        report.stale_open_sessions = conn.execute(sess.where(
            UploadSession.state.in_(("initialized", "signed", "uploading", "resuming")),
            UploadSession.expires_at < now)).scalar() or 0
        thresholds = _stuck_thresholds(app, provider_stuck)
        report.provider_stuck_threshold_sec = thresholds
        report.provider_stuck = conn.execute(
            select(func.count()).select_from(ProviderAsset).where(
                ProviderAsset.state.in_(("uploading", "processing")),
                _stuck_since(thresholds, now),
                *([ProviderAsset.profile == profile] if profile else []))).scalar() or 0
        for queue, state, n, oldest in conn.execute(
                select(Job.queue, Job.state, func.count(), func.min(Job.run_at))
                .where(Job.state.in_(("available", "retryable", "executing")))
                .group_by(Job.queue, Job.state)):
            info = report.queues.setdefault(queue, {"waiting": 0, "executing": 0,
                                                    "oldest_wait_sec": 0})
            if state == "executing":
                info["executing"] += n
            else:
                info["waiting"] += n
                if oldest is not None:
                    wait = int((now - _aware(oldest)).total_seconds())
                    info["oldest_wait_sec"] = max(info["oldest_wait_sec"], wait)
        report.discarded_jobs = conn.execute(
            select(func.count()).select_from(Job).where(Job.state == "discarded")).scalar() or 0
        report.retrying_job_count = conn.execute(
            select(func.count()).select_from(Job).where(Job.state == "retryable")).scalar() or 0
        report.retrying_jobs = _jobs(app, conn, "retryable", Job.run_at, limit)
        report.discarded = _jobs(app, conn, "discarded", Job.id.desc(), limit)
        given_up = _uuids(j["asset_id"] for j in report.discarded if j["kind"] == PROMOTE)
        if given_up:
            report.promotions_given_up = sorted(str(a) for a in conn.scalars(
                select(Asset.id).where(Asset.id.in_(given_up), Asset.state.in_(PROMOTABLE),
                                       *scoped)))
    report.recommendations = _recommend(report)
    return report


def _jobs(app: AppContext, conn: Connection, state: str, order: Any, limit: int
          ) -> list[dict[str, Any]]:
    """Up to ``limit`` jobs in ``state``, in ``order``, each with the first line of its last
    error (scrubbed of the database URL's secrets, at most 200 characters)."""
    out = []
    for row in conn.execute(
            select(Job.id, Job.queue, Job.kind, Job.attempt, Job.max_attempts, Job.last_error,
                   Job.args)
            .where(Job.state == state).order_by(order).limit(limit)):
        lines = (row.last_error or "").splitlines()
        asset_id = (row.args or {}).get("asset_id")
        out.append({"id": str(row.id), "queue": row.queue, "kind": row.kind,
                    "attempt": row.attempt, "max_attempts": row.max_attempts,
                    "error": app.db.scrub(lines[0])[:200] if lines else "",
                    "asset_id": asset_id if isinstance(asset_id, str) else None})
    return out


def _uuids(values: Iterable[str | None]) -> list[uuid.UUID]:
    """The values that are UUIDs, as UUIDs (a job's arguments are not trusted to be)."""
    out = []
    for value in values:
        try:
            out.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return out


def _job_line(job: Mapping[str, Any]) -> str:
    """One indented report line for a job :func:`_jobs` listed."""
    return (f"          {job['kind']} ({job['queue']}) attempt {job['attempt']}/"
            f"{job['max_attempts']}: {job['error']}")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _recommend(r: RuntimeStatusReport) -> list[str]:
    out = []
    for row in r.failed_variants[:5]:
        out.append(f"rindle requeue {row['asset_id']} --variant {row['variant']}  "
                   "(after fixing the cause shown above)")
    for asset_id in r.promotions_given_up[:5]:
        out.append(f"rindle requeue {asset_id}  (its promotion gave up: fix the cause shown "
                   "under `discarded` first)")
    if r.stuck_variant_count:
        out.append("rindle worker  (variants are waiting: is a worker running the process "
                   "queue?)")
    if r.variants_by_state.get("missing") or r.variants_by_state.get("stale"):
        out.append("rindle regenerate-variants  (stale or missing variants)")
    if r.stale_open_sessions:
        out.append("rindle abort-incomplete-uploads  (open upload sessions past expiry)")
    if r.expired_sessions:
        out.append("rindle cleanup-orphans --live  (expired sessions hold staged objects)")
    if r.provider_stuck:
        out.append("rindle streaming sync-due  (provider assets stuck past the threshold)")
    if r.retrying_jobs:
        out.append("fix what the errors under `retrying` name (a setting, a missing profile): "
                   "the worker retries those jobs until they run out of attempts")
    if any(q["waiting"] and q["oldest_wait_sec"] > r.older_than_sec for q in r.queues.values()):
        out.append("rindle worker  (jobs have waited longer than the threshold)")
    return list(dict.fromkeys(out))
