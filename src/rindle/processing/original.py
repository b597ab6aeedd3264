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
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from rindle.domain.fsm import asset as asset_fsm
from rindle.domain.models import Asset
from rindle.errors import InvalidTransition, NotFound, OriginalChanged
from rindle.storage.base import Storage

if TYPE_CHECKING:
    from rindle.database import Database
    from rindle.telemetry import Telemetry

__all__ = [
    "ORIGINAL_CHANGED",
    "check_pinned",
    "fetch_original",
    "quarantine_changed",
    "sha256_file",
]

log = logging.getLogger("rindle.processing")

ORIGINAL_CHANGED = "original_changed"
_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    """The lowercase hex sha256 of the file at ``path``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


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


def quarantine_changed(db: Database, asset_id: uuid.UUID, *,
                       telemetry: Telemetry | None, profile: str | None) -> bool:
    """Move the asset to ``quarantined`` with reason ``original_changed``.

    Returns False (and logs) when the asset is already quarantined or deleted, or moved
    concurrently; never raises for those.
    """
    try:
        with db.transaction() as s:
            asset_fsm.transition_from_current(
                s, asset_id, "quarantined", telemetry=telemetry, profile=profile,
                values={"error_reason": ORIGINAL_CHANGED})
    except (InvalidTransition, NotFound) as exc:
        log.warning("asset %s: original changed, but it could not be quarantined: %s",
                    asset_id, exc)
        return False
    log.warning("asset %s quarantined: %s", asset_id, ORIGINAL_CHANGED)
    if telemetry is not None:
        telemetry.emit("rindle.asset.quarantined", {"count": 1},
                       {"profile": profile, "reason": ORIGINAL_CHANGED})
    return True
