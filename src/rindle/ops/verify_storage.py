"""``verify-storage``: reconcile ``ready`` variants (and live originals) with storage.

A variant whose object is gone becomes ``missing`` through the variant FSM (then
``regenerate-variants`` re-renders it). Only "not found" means missing: any other storage
failure (network, auth) is counted in ``errors``, flips nothing, and the pass continues.
Storage checks run on a bounded thread pool; a backend that can list answers a whole asset
folder per request instead of one HEAD per key.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from rindle.domain.fsm import variant as variant_fsm
from rindle.domain.models import Asset, Variant
from rindle.errors import ObjectNotFound
from rindle.ops.batches import DEFAULT_BATCH, keyset_batches
from rindle.ops.progress import Progress
from rindle.ops.report import Report, repair_span
from rindle.ops.scope import profiles_in_scope, variant_names
from rindle.storage.base import Capability, Storage

if TYPE_CHECKING:
    from rindle.app import Rindle
    from rindle.jobs import JobContext

__all__ = ["VerifyStorageReport", "check_keys", "verify_storage"]

PRESENT, MISSING, ERROR = "present", "missing", "error"


@dataclass
class VerifyStorageReport(Report):
    """Counters of one ``verify-storage`` pass."""

    checked: int = 0
    present: int = 0
    missing: int = 0
    fsm_blocked: int = 0
    errors: int = 0
    originals_checked: int = 0
    originals_missing: int = 0


def _head(storage: Storage, key: str) -> str:
    try:
        storage.head(key)
        return PRESENT
    except ObjectNotFound:
        return MISSING
    except Exception:
        return ERROR


def _list_prefix(storage: Storage, prefix: str) -> set[str] | None:
    try:
        return {info.key for info in storage.list(prefix)}
    except Exception:
        return None


def check_keys(storage: Storage, keys: Iterable[str], pool: ThreadPoolExecutor) -> dict[str, str]:
    """Whether each key is present, missing or unknowable (error), checked concurrently."""
    keys = list(keys)
    if storage.supports(Capability.LOCAL):  # a stat is cheaper than any pool or listing
        return {key: _head(storage, key) for key in keys}
    if storage.supports(Capability.LIST):
        folders: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            folders[posixpath.dirname(key) + "/"].append(key)
        listed = dict(zip(folders, pool.map(lambda p: _list_prefix(storage, p), folders),
                          strict=True))
        out = {}
        for folder, members in folders.items():
            found = listed[folder]
            for key in members:
                out[key] = ERROR if found is None else (PRESENT if key in found else MISSING)
        return out
    return dict(zip(keys, pool.map(lambda k: _head(storage, k), keys), strict=True))


def verify_storage(app: Rindle, *, profile: str | None = None, variant: str | None = None,
                   concurrency: int = 8, batch_size: int = DEFAULT_BATCH,
                   include_originals: bool = True, progress: bool | None = None
                   ) -> VerifyStorageReport:
    """Check every ready variant in scope against storage; gone ones become ``missing``."""
    report = VerifyStorageReport()
    scope = "profile" if profile else "all"
    with repair_span(app.telemetry, "verify_storage", scope=scope, dry_run=False) as span, \
            ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        bar = Progress("verify-storage", enabled=progress)
        for prof in profiles_in_scope(app, profile):
            storage = app.storage(prof.storage)
            names = variant_names(prof, variant)
            if names:
                stmt = (select(Variant.id, Variant.storage_key)
                        .join(Asset, Asset.id == Variant.asset_id)
                        .where(Asset.profile == prof.name, Variant.name.in_(names),
                               Variant.state == "ready"))
                for rows in keyset_batches(app.db.sessionmaker, stmt, Variant.id,
                                           batch_size=batch_size):
                    _verify_batch(app, prof.name, storage, rows, pool, report)
                    bar.advance(len(rows), missing=report.missing, errors=report.errors)
            if include_originals and variant is None:
                originals = select(Asset.id, Asset.storage_key).where(
                    Asset.profile == prof.name, Asset.state.in_(("available", "ready")))
                for rows in keyset_batches(app.db.sessionmaker, originals, Asset.id,
                                           batch_size=batch_size):
                    status = check_keys(storage, [r.storage_key for r in rows], pool)
                    report.originals_checked += len(rows)
                    report.originals_missing += sum(v == MISSING for v in status.values())
                    report.errors += sum(v == ERROR for v in status.values())
                    bar.advance(len(rows))
        bar.close()
        span["result"] = "partial" if report.errors else "ok"
        span["measurements"] = {"checked": report.checked, "missing": report.missing,
                                "errors": report.errors}
    return report


def _verify_batch(app: Rindle, profile: str, storage: Storage, rows: Any,
                  pool: ThreadPoolExecutor, report: VerifyStorageReport) -> None:
    keyed = [r for r in rows if r.storage_key]
    status = check_keys(storage, [r.storage_key for r in keyed], pool)
    report.checked += len(rows)
    gone = [r.id for r in keyed if status[r.storage_key] == MISSING]
    report.present += sum(status[r.storage_key] == PRESENT for r in keyed)
    report.errors += sum(status[r.storage_key] == ERROR for r in keyed)
    if not gone:
        return
    with app.db.transaction() as s:
        moved = variant_fsm.transition_many(s, gone, "ready", "missing",
                                            telemetry=app.telemetry, profile=profile,
                                            values={"error_reason": "storage_object_missing"})
    report.missing += len(moved)
    report.fsm_blocked += len(gone) - len(moved)


def handle(app: Rindle, job: JobContext) -> None:
    """Job handler for ``rindle.maintenance.verify_storage``."""
    verify_storage(app, profile=job.args.get("profile"), variant=job.args.get("variant"),
                   progress=False)
