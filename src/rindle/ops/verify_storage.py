"""``verify-storage``: reconcile ``ready`` variants (and live originals) with storage.

A variant whose object is gone becomes ``missing`` through the variant FSM (then
``regenerate-variants`` re-renders it). Only "not found" means missing: any other storage
failure (network, auth) is counted in ``errors``, flips nothing, and the pass continues.
Storage checks run on a bounded thread pool; a backend that can list answers a whole asset
folder per request instead of one HEAD per key, and one that lists from a key in key order
(S3) a page of a key range per request. Where the database or the storage waits on
a socket, the next page is read while the current page's keys are being checked.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from rindle.domain.fsm import variant as variant_fsm
from rindle.domain.models import Asset, Variant
from rindle.ops.batches import (
    DEFAULT_BATCH,
    as_uuid,
    keyset_batches,
    overlapped,
    raw_id,
    walk_states,
)
from rindle.ops.progress import Progress
from rindle.ops.report import Report, log_failure, repair_span
from rindle.ops.scope import profiles_in_scope, variant_names
from rindle.storage.base import Capability, Storage

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.jobs import JobContext

__all__ = ["VerifyStorageReport", "check_keys", "verify_storage"]

Presence = bool | Exception  # True present, False gone, an exception: unknowable

log = logging.getLogger(__name__)


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


def _listing(storage: Storage, prefix: str) -> set[str] | Exception:
    try:
        return {info.key for info in storage.list(prefix)}
    except Exception as exc:
        return exc


def check_keys(storage: Storage, keys: Sequence[str], pool: ThreadPoolExecutor, *,
               workers: int = 8) -> Sequence[Presence]:
    """The presence of each key, in order, checked the cheapest way the backend allows.

    Local storage answers with a bare ``stat`` per key (cheaper than any pool); a backend
    that lists from a key in key order (S3) answers a range of folders per page, the ranges
    listed concurrently; another backend that can list answers one folder per request, the
    folders fetched concurrently; any other backend gets its ``exists_many`` spread over the
    pool.
    """
    if not keys:
        return []
    if storage.supports(Capability.LOCAL):
        return storage.exists_many(keys)
    if storage.supports(Capability.LIST_AFTER):
        return _check_ranges(storage, keys, pool, workers=workers)
    if storage.supports(Capability.LIST):
        folders = sorted({posixpath.dirname(key) + "/" for key in keys})
        listed = dict(zip(folders, pool.map(lambda p: _listing(storage, p), folders),
                          strict=True))
        out: list[Presence] = []
        for key in keys:
            found = listed[posixpath.dirname(key) + "/"]
            out.append(found if isinstance(found, Exception) else key in found)
        return out
    step = max(1, -(-len(keys) // max(1, workers)))
    chunks = [keys[i:i + step] for i in range(0, len(keys), step)]
    return [answer for part in pool.map(storage.exists_many, chunks) for answer in part]


#: Fewest keys per key-range listing: a batch is split into at most ``workers`` ranges,
#: none smaller than this, listed at once. A default batch (500 keys) is one range, about a
#: page of 1,000 listed objects: on S3 each request costs far more than each listed key.
RANGE_MIN_KEYS = 500
#: A range listing gives up after this many listed objects beyond twice its key count (keys
#: scattered among many others); the keys it has not reached yet get one HEAD each.
RANGE_SLACK = 1000


def _check_range(storage: Storage, run: Sequence[str]) -> dict[str, Presence]:
    """Presence of each key of ``run`` (sorted, distinct) from one key-ordered listing of
    the range ``run[0]..run[-1]``; keys past where a too-sparse listing stopped get HEADs."""
    first, last = run[0], run[-1]
    prefix = posixpath.commonprefix([first, last])
    wanted, found = set(run), set()
    budget = 2 * len(run) + RANGE_SLACK
    reached = ""
    try:
        # first[:-1] sorts just before first, so the listing starts at first itself
        for listed, info in enumerate(storage.list_after(prefix, first[:-1]), start=1):
            if info.key > last:
                reached = last
                break
            reached = info.key
            if info.key in wanted:
                found.add(info.key)
            if listed >= budget:
                break
        else:
            reached = last
    except Exception as exc:  # the whole range is unknowable: never "gone"
        return dict.fromkeys(run, exc)
    out: dict[str, Presence] = {key: key in found for key in run if key <= reached}
    rest = [key for key in run if key > reached]
    if rest:
        out.update(zip(rest, storage.exists_many(rest), strict=True))
    return out


def _check_ranges(storage: Storage, keys: Sequence[str], pool: ThreadPoolExecutor, *,
                  workers: int) -> Sequence[Presence]:
    """Presence of each key from key-range listings (S3 ``StartAfter``): the sorted keys are
    cut into up to ``workers`` contiguous ranges of at least :data:`RANGE_MIN_KEYS`, listed
    concurrently, so a batch costs about one request per page of stored keys in its range."""
    ordered = sorted(set(keys))
    step = max(RANGE_MIN_KEYS, -(-len(ordered) // max(1, workers)))
    runs = [ordered[i:i + step] for i in range(0, len(ordered), step)]
    answers: dict[str, Presence] = {}
    for part in pool.map(lambda run: _check_range(storage, run), runs):
        answers.update(part)
    return [answers[key] for key in keys]


def _check_rows(storage: Storage, rows: Sequence[Any], *, pool: ThreadPoolExecutor, workers: int
                ) -> tuple[Sequence[Any], Sequence[Presence]]:
    """The rows of ``(id, storage_key)`` that have a key, and the presence of each key."""
    keyed, keys = rows, [row[1] for row in rows]
    if None in keys:  # keyless rows are counted as checked, never looked up
        keyed = [row for row in rows if row[1]]
        keys = [row[1] for row in keyed]
    return keyed, check_keys(storage, keys, pool, workers=workers)


class _Missing:
    """Variant ids found gone, flipped ``ready -> missing`` a bounded batch at a time."""

    def __init__(self, app: AppContext, report: VerifyStorageReport, limit: int) -> None:
        self.app, self.report, self.limit = app, report, limit
        self.profile = ""
        self.ids: list[Any] = []

    def add(self, profile: str, variant_id: Any) -> None:
        if profile != self.profile:
            self.flush()
            self.profile = profile
        self.ids.append(variant_id)
        if len(self.ids) >= self.limit:
            self.flush()

    def flush(self) -> None:
        if not self.ids:
            return
        ids, self.ids = self.ids, []
        with self.app.db.transaction() as s:
            moved = variant_fsm.transition_many(
                s, ids, "ready", "missing", telemetry=self.app.telemetry,
                profile=self.profile, values={"error_reason": "storage_object_missing"})
        self.report.missing += len(moved)
        self.report.fsm_blocked += len(ids) - len(moved)


def verify_storage(app: AppContext, *, profile: str | None = None, variant: str | None = None,
                   concurrency: int = 8, batch_size: int = DEFAULT_BATCH,
                   include_originals: bool = True, progress: bool | None = None
                   ) -> VerifyStorageReport:
    """Check every ready variant in scope against storage; gone ones become ``missing``.

    A variant whose check failed for another reason than "not found" counts in ``errors``
    and keeps its state. Originals are checked and counted, never changed. An unknown
    ``profile``, or a ``variant`` no profile in scope declares, raises
    :class:`~rindle.errors.UsageError` before anything is read.
    """
    report = VerifyStorageReport()
    scope = "profile" if profile else "all"
    profiles = profiles_in_scope(app, profile, variant)  # unknown names: UsageError, no span
    missing = _Missing(app, report, batch_size)
    with repair_span(app.telemetry, "verify_storage", scope=scope, dry_run=False) as span, \
            ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="rindle-verify") as stage:
        bar = Progress("verify-storage", enabled=progress)
        checked = partial(_check_rows, pool=pool, workers=concurrency)
        in_process_db = app.db.engine.dialect.name == "sqlite"
        try:
            for prof in profiles:
                storage = app.storage(prof.storage)
                names = variant_names(prof, variant)
                # Overlap page reads with storage checks where one side waits on a socket.
                # SQLite and local stat are both in-process and short: two threads trading
                # the GIL every few microseconds lose more than the overlap gains.
                ahead = None if in_process_db and storage.supports(Capability.LOCAL) else stage
                if names:
                    stmt = (select(raw_id(Variant.id), Variant.storage_key)
                            .join(Asset, Asset.id == Variant.asset_id)
                            .where(Asset.profile == prof.name, Variant.name.in_(names),
                                   Variant.state == "ready"))
                    pages = keyset_batches(app.db.engine.connect, stmt, Variant.id,
                                           batch_size=batch_size)
                    for rows, (keyed, answers) in overlapped(
                            pages, partial(checked, storage), ahead):
                        present = answers.count(True)
                        report.present += present
                        if present != len(answers):  # the rare batch with news in it
                            for row, answer in zip(keyed, answers, strict=True):
                                if answer is False:
                                    missing.add(prof.name, as_uuid(row[0]))
                                elif answer is not True:
                                    report.errors += 1
                                    log_failure(log, "verify-storage", answer, "variant",
                                                as_uuid(row[0]))
                        report.checked += len(rows)
                        bar.advance(len(rows), missing=report.missing + len(missing.ids),
                                    errors=report.errors)
                if include_originals and variant is None:
                    originals = select(raw_id(Asset.id), Asset.storage_key).where(
                        Asset.profile == prof.name)
                    pages = walk_states(app.db.engine.connect, originals, Asset.state,
                                        ("available", "ready"), Asset.id,
                                        batch_size=batch_size)
                    for rows, (keyed, answers) in overlapped(
                            pages, partial(checked, storage), ahead):
                        report.originals_checked += len(rows)
                        present = answers.count(True)
                        if present != len(answers):
                            gone = answers.count(False)
                            report.originals_missing += gone
                            report.errors += len(answers) - present - gone
                            for row, answer in zip(keyed, answers, strict=True):
                                if isinstance(answer, Exception):
                                    log_failure(log, "verify-storage", answer, "original of asset",
                                                as_uuid(row[0]))
                        bar.advance(len(rows))
        finally:  # what was found gone before an interruption is still recorded
            missing.flush()
            bar.close()
        span["result"] = "partial" if report.errors else "ok"
        span["measurements"] = {"checked": report.checked, "missing": report.missing,
                                "errors": report.errors}
    return report


def handle(app: AppContext, job: JobContext) -> None:
    """Job handler for ``rindle.maintenance.verify_storage``."""
    verify_storage(app, profile=job.args.get("profile"), variant=job.args.get("variant"),
                   progress=False)
