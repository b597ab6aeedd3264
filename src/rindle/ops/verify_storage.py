"""``verify-storage``: reconcile ``ready`` variants (and live originals) with storage.

A variant whose object is gone becomes ``missing`` through the variant FSM (then
``regenerate-variants`` re-renders it). Only "not found" means missing: any other storage
failure (network, auth) is counted in ``errors``, flips nothing, and the pass continues.
Storage checks run on a bounded thread pool; a backend that can list answers a whole asset
folder per request instead of one HEAD per key, and one that lists from a key in key order
(S3) a page of a key range per request. On such a backend one walk covers both kinds of
object: each page of live assets carries its assets' ready variants, and an asset's
original and variants (neighbours in key order) come from the same listing, so each object
is listed once; ready variants of assets in other states follow in a walk of their own.
Local storage keeps two index walks (variants, then originals), a bare ``stat`` per key.
Where the database or the storage waits on a socket, the next page is read while the
current page's keys are being checked.
"""

from __future__ import annotations

import bisect
import logging
import posixpath
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select

from rindle.domain.fsm import variant as variant_fsm
from rindle.domain.models import Asset, Variant
from rindle.ops.batches import (
    DEFAULT_BATCH,
    as_uuid,
    keyset_batches,
    overlapped,
    raw_id,
    raw_ids_match,
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
#: none smaller than this, listed at once. A default page of 500 assets with an original
#: and a variant each is one range, one S3 page (1,000 keys): on S3 each request costs far
#: more than each listed key (on moto, 500-key ranges cost 20% more server time).
RANGE_MIN_KEYS = 1000
#: A range listing gives up after this many listed objects beyond twice its key count (keys
#: scattered among many others); the keys it has not reached yet get one HEAD each.
RANGE_SLACK = 1000


def _check_range(storage: Storage, run: Sequence[str]) -> dict[str, Presence]:
    """Presence of each key of ``run`` (sorted, distinct) from key-ordered listings of the
    range ``run[0]..run[-1]``; keys past where a too-sparse listing stopped get HEADs.

    Each request asks for as many objects as the keys left to reach would span at the
    density seen so far (a first request: one object per key), so a range holding only
    the asked keys is one request listing each of them once, and nothing past ``run[-1]``
    is listed unless keys near the end are gone.
    """
    first, last = run[0], run[-1]
    prefix = posixpath.commonprefix([first, last])
    wanted, found = set(run), set()
    budget = 2 * len(run) + RANGE_SLACK
    listed = passed = 0  # objects listed; keys of run at or before the last listed one
    cursor = first[:-1]  # sorts just before first, so the listing starts at first itself
    reached = ""
    try:
        while reached < last and listed < budget:
            ahead = len(run) - passed
            want = ahead if not listed else -(-ahead * listed // passed) if passed else budget
            want = min(max(1, want), budget - listed)
            got = 0
            for info in storage.list_after(prefix, cursor, limit=want):
                got += 1
                if info.key >= last:
                    if info.key == last:
                        found.add(last)
                    reached = last
                    break
                reached = cursor = info.key
                if info.key in wanted:
                    found.add(info.key)
            listed += got
            if got < want:  # the listing ran out: nothing else lies in the range
                reached = last
            passed = bisect.bisect_right(run, reached)
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


#: Asset states whose original is checked: the asset's bytes are live in storage.
LIVE_STATES = ("available", "ready")

#: One page of a walk: rows of ``(asset id, original key)`` and of ``(variant id, key)``.
Page = tuple[Sequence[Any], Sequence[Any]]
Checked = tuple[Sequence[Any], Sequence[Presence]]


def _keyed(rows: Sequence[Any]) -> Sequence[Any]:
    """The rows of ``(id, storage_key)`` that have a key (keyless rows are counted as
    checked, never looked up)."""
    return [row for row in rows if row[1]] if any(row[1] is None for row in rows) else rows


def _check_page(storage: Storage, page: Page, *, pool: ThreadPoolExecutor, workers: int
                ) -> tuple[Checked, Checked]:
    """The keyed rows of both halves of ``page`` and the presence of each one's key, all
    keys checked together: an asset's original and its variants, neighbours in key order,
    come from the same listing."""
    originals, variants = _keyed(page[0]), _keyed(page[1])
    answers = check_keys(storage, [row[1] for row in (*originals, *variants)], pool,
                         workers=workers)
    split = len(originals)
    return (originals, answers[:split]), (variants, answers[split:])


def _pages(app: AppContext, profile: str, names: Sequence[str], originals: bool, *,
           together: bool, batch_size: int) -> Iterator[Page]:
    """Every page of one profile's walk: ready variants named ``names``, and the originals
    of live assets when ``originals`` is set, each row exactly once.

    ``together`` (a backend that lists) walks live assets by id, each page carrying the
    ready variants of its assets, then the ready variants of every other asset; otherwise
    variants and originals are walked one after the other, each by its own index.
    """
    connect = app.db.engine.connect
    variants = (select(raw_id(Variant.id), Variant.storage_key)
                .join(Asset, Asset.id == Variant.asset_id)
                .where(Asset.profile == profile, Variant.name.in_(names),
                       Variant.state == "ready"))
    live = select(raw_id(Asset.id), Asset.storage_key).where(Asset.profile == profile)
    if names and originals and together:
        yield from _assets_with_variants(app, live, names, batch_size)
        for rows in keyset_batches(connect, variants.where(Asset.state.not_in(LIVE_STATES)),
                                   Variant.id, batch_size=batch_size):
            yield (), rows
        return
    if names:
        for rows in keyset_batches(connect, variants, Variant.id, batch_size=batch_size):
            yield (), rows
    if originals:
        for rows in walk_states(connect, live, Asset.state, LIVE_STATES, Asset.id,
                                batch_size=batch_size):
            yield rows, ()


def _assets_with_variants(app: AppContext, live: Select[Any], names: Sequence[str],
                          batch_size: int) -> Iterator[Page]:
    """Pages of live assets (``live``'s rows in :data:`LIVE_STATES`, by id) and the ready
    variants named ``names`` of each page's assets, read by asset id in one short query.

    The query names no state: the (asset id, name) index answers it. With ``state =
    'ready'`` in it, SQLite without statistics scanned every ready variant by the state
    index, for every page. The few variants of a page's assets in another state are
    dropped here.
    """
    dialect = app.db.engine.dialect.name
    variants = select(raw_id(Variant.id), Variant.storage_key, Variant.state).where(
        Variant.name.in_(names))
    with app.db.engine.connect() as conn:
        for rows in walk_states(app.db.engine.connect, live, Asset.state, LIVE_STATES,
                                Asset.id, batch_size=batch_size):
            try:
                found = conn.execute(variants.where(raw_ids_match(
                    Variant.asset_id, [row[0] for row in rows], dialect))).all()
            finally:
                conn.rollback()  # no transaction held while the page is checked
            yield rows, [row for row in found if row[2] == "ready"]


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
        checked = partial(_check_page, pool=pool, workers=concurrency)
        in_process_db = app.db.engine.dialect.name == "sqlite"
        try:
            for prof in profiles:
                storage = app.storage(prof.storage)
                # Overlap page reads with storage checks where one side waits on a socket.
                # SQLite and local stat are both in-process and short: two threads trading
                # the GIL every few microseconds lose more than the overlap gains.
                local = storage.supports(Capability.LOCAL)
                ahead = None if in_process_db and local else stage
                pages = _pages(app, prof.name, variant_names(prof, variant),
                               include_originals and variant is None,
                               together=not local and storage.supports(Capability.LIST),
                               batch_size=batch_size)
                for page, (originals, variants) in overlapped(
                        pages, partial(checked, storage), ahead):
                    _tally_variants(report, missing, prof.name, page[1], *variants)
                    _tally_originals(report, page[0], *originals)
                    bar.advance(len(page[0]) + len(page[1]),
                                missing=report.missing + len(missing.ids), errors=report.errors)
        finally:  # what was found gone before an interruption is still recorded
            missing.flush()
            bar.close()
        span["result"] = "partial" if report.errors else "ok"
        span["measurements"] = {"checked": report.checked, "missing": report.missing,
                                "errors": report.errors}
    return report


def _tally_variants(report: VerifyStorageReport, missing: _Missing, profile: str,
                    rows: Sequence[Any], keyed: Sequence[Any], answers: Sequence[Presence]
                    ) -> None:
    """Count a page's variant checks; gone ones queue for ``ready -> missing``."""
    present = answers.count(True)
    report.present += present
    if present != len(answers):  # the rare batch with news in it
        for row, answer in zip(keyed, answers, strict=True):
            if answer is False:
                missing.add(profile, as_uuid(row[0]))
            elif answer is not True:
                report.errors += 1
                log_failure(log, "verify-storage", answer, "variant", as_uuid(row[0]))
    report.checked += len(rows)


def _tally_originals(report: VerifyStorageReport, rows: Sequence[Any], keyed: Sequence[Any],
                     answers: Sequence[Presence]) -> None:
    """Count a page's original checks (originals are never changed)."""
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


def handle(app: AppContext, job: JobContext) -> None:
    """Job handler for ``rindle.maintenance.verify_storage``."""
    verify_storage(app, profile=job.args.get("profile"), variant=job.args.get("variant"),
                   progress=False)
