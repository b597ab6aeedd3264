"""The original's identity: pinned at verify, hashed at promotion, checked on every read.

The trust gate promises that what is processed and delivered is what was checked. A
presigned PUT URL outlives the upload it was issued for, and a storage bucket can be
written by other hands, so rindle never assumes the bytes at an asset's key are the ones
it checked:

* ``verify_upload`` stores the backend's identity of the object it saw
  (``Asset.original_etag``: an S3 ETag, a GCS generation, a local inode/mtime stamp) with
  its size (``Asset.byte_size``);
* promotion downloads the original, refuses it unless the backend still reports that
  identity and the copy has that size, and stores its sha256 (``Asset.original_sha256``);
* every later read (:func:`fetch_original`: variant jobs, reprobe, backfill) checks size
  and sha256 of the downloaded copy before anything decodes it.

A mismatch raises :class:`~rindle.errors.OriginalChanged`; callers quarantine the asset
with reason ``original_changed`` (:func:`quarantine_changed`) and process nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from rindle.domain.fsm import asset as asset_fsm
from rindle.domain.models import Asset, Variant
from rindle.errors import InvalidTransition, NotFound, ObjectNotFound, OriginalChanged, RindleError
from rindle.storage.base import Storage

if TYPE_CHECKING:
    from rindle.database import Database
    from rindle.telemetry import Telemetry

__all__ = [
    "ORIGINAL_CHANGED",
    "QUARANTINE_PREFIX",
    "check_pinned",
    "fetch_original",
    "quarantine_changed",
    "sha256_file",
]

log = logging.getLogger(__name__)

ORIGINAL_CHANGED = "original_changed"
#: Where the objects of an asset quarantined after promotion are moved.
QUARANTINE_PREFIX = "quarantine/"


def sha256_file(path: Path) -> str:
    """The lowercase hex sha256 of the file at ``path`` (streamed, never all in memory)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_pinned(storage: Storage, asset: Asset, local: Path) -> None:
    """Raise :class:`OriginalChanged` unless the object still is the one verify pinned.

    Compares the downloaded copy's size with ``asset.byte_size`` and the backend's current
    ETag/generation with ``asset.original_etag`` (each only when pinned). Used at promotion,
    before the sha256 exists.
    """
    size = local.stat().st_size
    if asset.byte_size is not None and size != asset.byte_size:
        raise OriginalChanged(
            f"the original of asset {asset.id} is {size} bytes, but verify saw "
            f"{asset.byte_size}; it was replaced after the upload was checked")
    if asset.original_etag:
        current = storage.head(asset.storage_key).etag
        if current != asset.original_etag:
            raise OriginalChanged(
                f"the original of asset {asset.id} has another identity than the one verify "
                "saw (ETag/generation changed); it was replaced after the upload was checked")


def fetch_original(storage: Storage, asset: Asset, dest: Path) -> Path:
    """Download the asset's original to ``dest`` and prove it is the promoted one.

    Checks the copy's size against ``asset.byte_size`` and its sha256 against
    ``asset.original_sha256`` (each when set: assets promoted before identities were
    pinned have none). Raises :class:`~rindle.errors.ObjectNotFound` when the object is
    gone and :class:`OriginalChanged` on a mismatch; ``dest`` is removed in that case so
    no caller can decode the foreign bytes by mistake.
    """
    storage.download(asset.storage_key, dest)
    try:
        size = dest.stat().st_size
        if asset.byte_size is not None and size != asset.byte_size:
            raise OriginalChanged(
                f"the original of asset {asset.id} is {size} bytes, but {asset.byte_size} "
                "were checked at promotion")
        if asset.original_sha256 and sha256_file(dest) != asset.original_sha256:
            raise OriginalChanged(
                f"the original of asset {asset.id} no longer has the sha256 computed at "
                "promotion")
    except OriginalChanged:
        dest.unlink(missing_ok=True)
        raise
    return dest


def quarantine_changed(db: Database, asset_id: uuid.UUID, *, storage: Storage | None = None,
                       tmp_dir: Path | None = None, telemetry: Telemetry | None,
                       profile: str | None) -> bool:
    """Move the asset to ``quarantined`` with reason ``original_changed``, and its bytes out
    of reach of every URL signed before.

    With ``storage`` (and ``tmp_dir`` for the copies), the original and every variant
    object are copied under :data:`QUARANTINE_PREFIX` first; the transition then records
    the new keys in the same transaction, and the old objects are deleted after commit. A
    presigned GET from S3 or GCS, which no rindle code sees, then finds nothing. The
    copies are kept for inspection (the original is the foreign object, as found).

    Returns False (and logs, and removes any copies) when the asset is already
    quarantined or deleted, or moved concurrently; never raises for those. A storage
    failure while moving is logged and the asset is quarantined in place.
    """
    with db.sessionmaker() as s:
        asset = s.get(Asset, asset_id)
        keys = [] if asset is None else [asset.storage_key] + [
            key for key in s.execute(select(Variant.storage_key).where(
                Variant.asset_id == asset_id, Variant.storage_key.is_not(None))).scalars()
            if key is not None]
    moves = _copy_out(storage, keys, tmp_dir) if storage is not None and keys else {}
    try:
        with db.transaction() as s:
            values: dict[str, Any] = {"error_reason": ORIGINAL_CHANGED}
            if keys and keys[0] in moves:
                values["storage_key"] = moves[keys[0]]
            asset_fsm.transition_from_current(
                s, asset_id, "quarantined", telemetry=telemetry, profile=profile,
                values=values)
            for old, new in moves.items():
                s.execute(update(Variant).where(Variant.asset_id == asset_id,
                                                Variant.storage_key == old)
                          .values(storage_key=new))
    except (InvalidTransition, NotFound) as exc:
        log.warning("asset %s: original changed, but it could not be quarantined: %s",
                    asset_id, exc)
        if storage is not None and moves:
            storage.delete_many(list(moves.values()))
        return False
    if storage is not None and moves:
        for key, failure in zip(moves, storage.delete_many(list(moves)), strict=True):
            if failure is not None:
                log.error("asset %s: could not delete %r after quarantine: %s",
                          asset_id, key, failure)
    log.warning("asset %s quarantined: %s (%d object(s) moved under %s)", asset_id,
                ORIGINAL_CHANGED, len(moves), QUARANTINE_PREFIX)
    if telemetry is not None:
        telemetry.emit("rindle.asset.quarantined", {"count": 1},
                       {"profile": profile, "reason": ORIGINAL_CHANGED})
    return True


def _copy_out(storage: Storage, keys: list[str], tmp_dir: Path | None) -> dict[str, str]:
    """Copy each key under the quarantine prefix; old key -> new key for those copied."""
    moves: dict[str, str] = {}
    root = tmp_dir if tmp_dir is not None else Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    for key in keys:
        if key.startswith(QUARANTINE_PREFIX) or key in moves:
            continue
        target = QUARANTINE_PREFIX + key
        fd, name = tempfile.mkstemp(prefix="rindle-quarantine-", dir=root)
        os.close(fd)
        local = Path(name)
        try:
            storage.download(key, local)
            storage.put(target, local)
            moves[key] = target
        except ObjectNotFound:
            continue
        except RindleError as exc:
            log.error("could not move %r under %s: %s", key, QUARANTINE_PREFIX, exc)
        finally:
            local.unlink(missing_ok=True)
    return moves
