"""Direct uploads: the client writes to storage; rindle issues the requests and verifies.

``initiate`` creates a staged asset and an upload session in one transaction; ``sign``
hands out a presigned request; ``verify`` is the single trust gate: a HEAD against
storage, then (in one transaction) session ``completed``, asset ``validating`` and the
promote job. The profile's policy is enforced again at promotion, on the stored bytes.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from rindle.domain.fsm import asset as asset_fsm
from rindle.domain.fsm import upload_session as session_fsm
from rindle.domain.models import Asset, UploadSession, utcnow
from rindle.errors import NotFound, UploadRejected, UploadUnsupported
from rindle.ids import uuid7
from rindle.processing.kinds import PROMOTE
from rindle.storage.base import Capability, PresignedRequest
from rindle.upload.filenames import sanitize_filename
from rindle.upload.keys import generate_key

if TYPE_CHECKING:
    from rindle.app import Rindle
    from rindle.domain.profile import Profile

__all__ = [
    "STRATEGIES",
    "abort",
    "complete_multipart",
    "initiate",
    "sign",
    "sign_part",
    "verify",
]

#: Strategy -> storage capability it needs. Never silently downgraded.
STRATEGIES = {
    "presigned_put": Capability.PRESIGNED_PUT,
    "multipart": Capability.MULTIPART_UPLOAD,
    "resumable": Capability.RESUMABLE_UPLOAD,
}


def _as_uuid(value: uuid.UUID | str, entity: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound(entity, value) from None


def _load(app: Rindle, session_id: uuid.UUID | str) -> tuple[UploadSession, Asset]:
    sid = _as_uuid(session_id, "upload session")
    with app.db.sessionmaker() as s:
        row = s.get(UploadSession, sid)
        if row is None:
            raise NotFound("upload session", session_id)
        asset = s.get(Asset, row.asset_id)
        if asset is None:
            raise NotFound("asset", row.asset_id)
        return row, asset


def initiate(app: Rindle, profile: type[Profile] | str, *, filename: str,
             strategy: str = "presigned_put", byte_size: int | None = None,
             content_type: str | None = None, expires_in: int = 3600) -> UploadSession:
    """Create a staged asset and an ``initialized`` session for a direct upload.

    Fails fast, before anything is written, on an unknown strategy, a storage without the
    strategy's capability (``upload_unsupported``), or a declared size or extension the
    profile would refuse anyway.
    """
    prof = app.profile(profile)
    if strategy not in STRATEGIES:
        raise UploadUnsupported(
            f"unknown upload strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    storage = app.storage(prof.storage)
    if not storage.supports(STRATEGIES[strategy]):
        raise UploadUnsupported(
            f"storage {storage.name!r} ({storage.backend_name}) cannot do {strategy} uploads; "
            f"it supports: {', '.join(sorted(storage.capabilities))}")
    policy = prof.upload_policy()
    if byte_size is not None and (not isinstance(byte_size, int) or byte_size < 0):
        raise UploadRejected("invalid_upload", "byte_size must be a non-negative integer")
    if byte_size is not None and policy.max_bytes is not None and byte_size > policy.max_bytes:
        raise UploadRejected("max_bytes_exceeded",
                             f"declared size {byte_size} is over max_bytes {policy.max_bytes}")
    if expires_in <= 0:
        raise UploadRejected("invalid_upload", "expires_in must be a positive number of seconds")
    clean = sanitize_filename(filename)
    ext = PurePosixPath(clean).suffix.lower()
    if policy.allow_extensions and ext.lstrip(".") not in {
        e.lower().lstrip(".") for e in policy.allow_extensions
    }:
        raise UploadRejected("extension_not_allowed",
                             f"extension {ext or '(none)'} is not allowed for profile {prof.name}")
    asset_id = uuid7()
    key = generate_key(prof.name, asset_id, ext)
    upload_id = None
    if strategy == "multipart":
        upload_id = storage.initiate_multipart(key, content_type=content_type)
    try:
        with app.db.transaction() as s:
            s.add(Asset(id=asset_id, state="staged", storage_key=key, profile=prof.name,
                        filename=clean))
            s.flush()
            row = UploadSession(
                asset_id=asset_id, state="initialized", upload_key=key,
                expires_at=utcnow() + dt.timedelta(seconds=expires_in),
                upload_strategy=strategy, multipart_upload_id=upload_id,
                expected_size=byte_size, content_type=content_type,
            )
            s.add(row)
    except BaseException:
        if upload_id is not None:
            storage.abort_multipart(key, upload_id)
        raise
    app.telemetry.emit("rindle.upload.start", {"system_time": time.time_ns()},
                       {"profile": prof.name, "adapter": storage.backend_name,
                        "strategy": strategy})
    return row


def _presign_cap(app: Rindle, prof: type[Profile], row: UploadSession) -> int | None:
    caps = [c for c in (prof.upload_policy().max_bytes, row.expected_size) if c is not None]
    return min(caps) if caps else None


def sign(app: Rindle, session_id: uuid.UUID | str, *, expires_in: int | None = None
         ) -> PresignedRequest:
    """Move the session to ``signed`` and return the presigned PUT for it."""
    row, asset = _load(app, session_id)
    prof = app.profile(asset.profile)
    if row.upload_strategy != "presigned_put":
        raise UploadUnsupported(f"session uses {row.upload_strategy}; sign parts instead")
    session_fsm.check(row.state, "signed")
    remaining = int((row.expires_at - utcnow()).total_seconds())
    ttl = min(expires_in or remaining, remaining)
    if ttl <= 0:
        raise UploadRejected("session_expired", "the upload session has expired; start a new one")
    request = app.storage(prof.storage).presign_put(
        row.upload_key, expires_in=ttl, content_type=row.content_type,
        max_bytes=_presign_cap(app, prof, row))
    with app.db.transaction() as s:
        session_fsm.transition(s, row.id, row.state, "signed", telemetry=app.telemetry,
                               profile=prof.name)
    return request


def sign_part(app: Rindle, session_id: uuid.UUID | str, part_number: int, *,
              expires_in: int = 3600) -> PresignedRequest:
    """A presigned request for one multipart part; the first part moves the session to signed."""
    row, asset = _load(app, session_id)
    prof = app.profile(asset.profile)
    if row.upload_strategy != "multipart" or not row.multipart_upload_id:
        raise UploadUnsupported("not a multipart session")
    if not isinstance(part_number, int) or not 1 <= part_number <= 10000:
        raise UploadRejected("invalid_multipart_parts", "part_number must be 1..10000")
    request = app.storage(prof.storage).presign_part(
        row.upload_key, row.multipart_upload_id, part_number, expires_in=expires_in)
    if row.state == "initialized":
        with app.db.transaction() as s:
            session_fsm.transition(s, row.id, "initialized", "signed",
                                   telemetry=app.telemetry, profile=prof.name)
    return request


def complete_multipart(app: Rindle, session_id: uuid.UUID | str,
                       parts: Sequence[Mapping[str, Any]]) -> Asset:
    """Persist the part list, assemble the object in storage, then verify like any upload."""
    row, asset = _load(app, session_id)
    prof = app.profile(asset.profile)
    if row.upload_strategy != "multipart" or not row.multipart_upload_id:
        raise UploadUnsupported("not a multipart session")
    try:
        numbered = sorted((int(p["part_number"]), str(p["etag"])) for p in parts)
    except (KeyError, TypeError, ValueError):
        raise UploadRejected("invalid_multipart_parts",
                             "parts must be mappings with part_number and etag") from None
    clean: list[dict[str, Any]] = [{"part_number": n, "etag": e} for n, e in numbered]
    if not numbered or any(n < 1 for n, _ in numbered):
        raise UploadRejected("invalid_multipart_parts", "parts must be non-empty and positive")
    with app.db.transaction() as s:
        live = s.get(UploadSession, row.id)
        assert live is not None
        live.multipart_parts = {"parts": clean}
    app.storage(prof.storage).complete_multipart(row.upload_key, row.multipart_upload_id, clean)
    return verify(app, row.id)


def verify(app: Rindle, session_id: uuid.UUID | str) -> Asset:
    """Check the object is in storage, then complete the session and queue promotion.

    Raises :class:`rindle.errors.ObjectNotFound` (``storage_object_missing``) when nothing
    was uploaded, with no state change; a second call raises ``InvalidTransition``.
    """
    row, asset = _load(app, session_id)
    prof = app.profile(asset.profile)
    session_fsm.check(row.state, "verifying")
    asset_fsm.check(asset.state, "validating")
    info = app.storage(prof.storage).head(row.upload_key)  # ObjectNotFound propagates
    policy = prof.upload_policy()
    with app.db.transaction() as s:
        tel = app.telemetry
        session_fsm.transition(s, row.id, row.state, "verifying", telemetry=tel, profile=prof.name)
        session_fsm.transition(s, row.id, "verifying", "completed", telemetry=tel,
                               profile=prof.name, values={"verified_at": utcnow()})
        asset_fsm.transition(s, asset.id, "staged", "validating", telemetry=tel,
                             profile=prof.name,
                             values={"byte_size": info.size, "content_type": info.content_type})
        app.jobs.enqueue(s, PROMOTE, {"asset_id": str(asset.id), "direct": True,
                                      "max_bytes": policy.max_bytes},
                         unique_key=f"promote:{asset.id}")
    app.telemetry.emit("rindle.upload.stop", {"system_time": time.time_ns(), "bytes": info.size},
                       {"profile": prof.name, "adapter": app.storage(prof.storage).backend_name,
                        "strategy": row.upload_strategy})
    return app.get_asset(asset.id)


def abort(app: Rindle, session_id: uuid.UUID | str) -> UploadSession:
    """Abort an unfinished session; the staged object (or multipart upload) is removed."""
    row, asset = _load(app, session_id)
    prof = app.profile(asset.profile)
    session_fsm.check(row.state, "aborted")
    with app.db.transaction() as s:
        session_fsm.transition(s, row.id, row.state, "aborted", telemetry=app.telemetry,
                               profile=prof.name)
    storage = app.storage(prof.storage)
    if row.multipart_upload_id:
        storage.abort_multipart(row.upload_key, row.multipart_upload_id)
    else:
        storage.delete(row.upload_key)
    with app.db.sessionmaker() as s:
        fresh = s.execute(select(UploadSession).where(UploadSession.id == row.id)).scalar_one()
        return fresh
