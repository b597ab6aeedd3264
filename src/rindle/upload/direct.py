"""Direct uploads: the client writes to storage; rindle issues the requests and verifies.

``initiate`` creates a staged asset and an upload session in one transaction; ``sign``
hands out a presigned request; ``verify`` is the single trust gate: a HEAD against
storage, then (in one transaction) session ``completed``, asset ``validating`` and the
promote job. The profile's policy is enforced again at promotion, on the stored bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import bindparam, select

from rindle.domain.fsm import asset as asset_fsm
from rindle.domain.fsm import upload_session as session_fsm
from rindle.domain.models import Asset, UploadSession, utcnow
from rindle.domain.queries import get_asset
from rindle.errors import InvalidTransition, NotFound, UploadRejected, UploadUnsupported
from rindle.ids import parse_id, uuid7
from rindle.jobs.kinds import PROMOTE, promote_unique_key
from rindle.storage.base import (
    Capability,
    PresignedRequest,
    ResumableSession,
    ResumableStatus,
    Storage,
)
from rindle.upload import tus_backing
from rindle.upload.filenames import sanitize_filename
from rindle.upload.keys import generate_key
from rindle.upload.validation import check_declared

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.domain.profile import Profile

__all__ = [
    "STRATEGIES",
    "abort",
    "complete_multipart",
    "initiate",
    "load_owned",
    "load_strategy",
    "resumable_status",
    "sign",
    "sign_part",
    "verify",
]

#: Strategy -> storage capability it needs. Never silently downgraded.
STRATEGIES = {
    "presigned_put": Capability.PRESIGNED_PUT,
    "multipart": Capability.MULTIPART_UPLOAD,
    "resumable": Capability.RESUMABLE_UPLOAD,
    "tus": Capability.APPEND_UPLOAD,
}

#: What a declared content type may be: ``type/subtype`` and optional ``; parameters``, in
#: printable ASCII (it reaches a text column and a storage request's ``Content-Type``).
_MEDIA_TYPE = re.compile(r" *[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+ *"
                         r"(?:;[ -~]*)?")


#: A session and its asset by session id (built once: the tus server runs it per chunk).
_SESSION_WITH_ASSET = (select(UploadSession, Asset)
                       .join(Asset, Asset.id == UploadSession.asset_id)
                       .where(UploadSession.id == bindparam("sid")))


def _load(app: AppContext, session_id: uuid.UUID | str) -> tuple[UploadSession, Asset]:
    sid = parse_id(session_id, "upload session")
    with app.db.sessionmaker() as s:  # one round trip: the tus server calls this per chunk
        found = s.execute(_SESSION_WITH_ASSET, {"sid": sid}).first()
        if found is None:
            raise NotFound("upload session", session_id)
        return found[0], found[1]


def load_owned(app: AppContext, session_id: uuid.UUID | str, actor_id: str,
               strategies: Sequence[str]) -> tuple[UploadSession, Asset]:
    """The session ``session_id`` with its asset, when ``actor_id`` started it and its
    strategy is one of ``strategies``; :class:`NotFound` otherwise (a session of another
    actor is indistinguishable from one that does not exist). A malformed id is
    :class:`NotFound` too."""
    row, asset = load_strategy(app, session_id, strategies)
    if row.actor_id != actor_id:
        raise NotFound("upload session", session_id)
    return row, asset


def load_strategy(app: AppContext, session_id: uuid.UUID | str, strategies: Sequence[str]
                  ) -> tuple[UploadSession, Asset]:
    """The session ``session_id`` with its asset when its strategy is one of
    ``strategies``; :class:`NotFound` otherwise, and for a malformed id."""
    row, asset = _load(app, session_id)
    if row.upload_strategy not in strategies:
        raise NotFound("upload session", session_id)
    return row, asset


def initiate(app: AppContext, profile: type[Profile] | str, *, filename: str,
             strategy: str = "presigned_put", byte_size: int | None = None,
             content_type: str | None = None, expires_in: int = 3600,
             origin: str | None = None, actor_id: str | None = None,
             protocol_state: Mapping[str, Any] | None = None,
             now: dt.datetime | None = None, check_filename: bool = True) -> UploadSession:
    """Create a staged asset and an ``initialized`` session for a direct upload.

    ``actor_id`` binds the session to whoever started it (the upload HTTP API and the tus
    server check it on every later call); ``protocol_state`` is a server-side protocol's
    initial state (``tus`` sessions); ``now`` is the time ``expires_in`` counts from
    (default: the current time). A ``tus`` session is opened at no backend: the tus server
    writes it (:mod:`rindle.upload.tus`). ``check_filename=False`` skips the extension and
    declared-type checks (a tus partial upload, which is only ever a piece of another).

    Fails fast, before anything is written, on an unknown strategy, a storage without the
    strategy's capability (``upload_unsupported``), or a declared size or extension the
    profile would refuse anyway, or a ``content_type`` that is no printable-ASCII media
    type (``mime_not_allowed``, even with ``check_filename=False``). A ``multipart`` or
    ``resumable`` session is opened at the backend first (``origin``: the browser origin a
    resumable session admits) and abandoned again if the rows cannot be written.
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
    if content_type is not None and not _MEDIA_TYPE.fullmatch(content_type):
        raise UploadRejected("mime_not_allowed", "the declared content type is not a media "
                                                 "type: send type/subtype[; parameters] in "
                                                 "printable ASCII")
    clean = sanitize_filename(filename)
    if check_filename:
        check_declared(filename, content_type=content_type, policy=policy)
    ext = PurePosixPath(clean).suffix.lower()
    asset_id = uuid7()
    key = generate_key(prof.name, asset_id, ext)
    upload_id = None
    resumable: ResumableSession | None = None
    if strategy == "multipart":
        upload_id = storage.initiate_multipart(key, content_type=content_type)
    elif strategy == "resumable":
        resumable = storage.initiate_resumable_upload(
            key, content_type=content_type, expected_size=byte_size, origin=origin)
    try:
        with app.db.transaction() as s:
            s.add(Asset(id=asset_id, state="staged", storage_key=key, profile=prof.name,
                        filename=clean))
            s.flush()
            row = UploadSession(
                asset_id=asset_id, state="initialized", upload_key=key,
                expires_at=(now or utcnow()) + dt.timedelta(seconds=expires_in),
                upload_strategy=strategy, multipart_upload_id=upload_id,
                expected_size=byte_size, content_type=content_type, actor_id=actor_id,
                protocol_state=dict(protocol_state) if protocol_state is not None else None,
            )
            if strategy == "tus":
                row.upload_length = byte_size
            if resumable is not None:
                row.session_uri = resumable.session_uri
                row.session_uri_expires_at = resumable.expires_at
                row.region_hint = resumable.region_hint
                row.resumable_protocol = storage.backend_name
                row.upload_length = byte_size
            s.add(row)
    except BaseException:
        if upload_id is not None:
            storage.abort_multipart(key, upload_id)
        if resumable is not None:
            storage.cancel_resumable_upload(key, resumable.session_uri)
        raise
    if upload_id is not None:  # a host's rollback (app.bind) forgets the session: end it
        app.db.if_rolled_back(lambda: storage.abort_multipart(key, upload_id))
    if resumable is not None:
        uri = resumable.session_uri
        app.db.if_rolled_back(lambda: storage.cancel_resumable_upload(key, uri))
    app.db.when_committed(lambda: app.telemetry.emit(
        "rindle.upload.start", {"system_time": time.time_ns()},
        {"profile": prof.name, "adapter": storage.backend_name, "strategy": strategy}))
    return row


def _presign_cap(app: AppContext, prof: type[Profile], row: UploadSession) -> int | None:
    caps = [c for c in (prof.upload_policy().max_bytes, row.expected_size) if c is not None]
    return min(caps) if caps else None


def sign(app: AppContext, session_id: uuid.UUID | str, *, expires_in: int | None = None
         ) -> PresignedRequest:
    """Move the session to ``signed`` and return the request the client uploads with.

    ``presigned_put``: a presigned PUT, capped at the profile's ``max_bytes``. ``resumable``:
    the backend's session URI, which the client PUTs to in one or more ``Content-Range``
    chunks and may resume after an interruption (see :func:`resumable_status`).
    """
    row, asset = _load(app, session_id)
    prof = app.profile(asset.profile)
    if row.upload_strategy not in ("presigned_put", "resumable"):
        raise UploadUnsupported(f"session uses {row.upload_strategy}; sign parts instead")
    session_fsm.check(row.state, "signed")
    left = (row.expires_at - utcnow()).total_seconds()
    remaining = math.ceil(left)  # a live session in its last second still signs (1 s)
    ttl = min(expires_in or remaining, remaining)
    if left <= 0 or ttl <= 0:
        raise UploadRejected("session_expired", "the upload session has expired; start a new one")
    if row.upload_strategy == "resumable":
        request = _resumable_request(row)
    else:
        request = app.storage(prof.storage).presign_put(
            row.upload_key, expires_in=ttl, content_type=row.content_type,
            max_bytes=_presign_cap(app, prof, row))
    with app.db.transaction() as s:
        session_fsm.transition(s, row.id, row.state, "signed", telemetry=app.telemetry,
                               profile=prof.name)
    return request


def _resumable_request(row: UploadSession) -> PresignedRequest:
    if not row.session_uri:
        raise UploadRejected("session_expired",
                             "the resumable session is closed; start a new upload")
    headers = {"Content-Type": row.content_type} if row.content_type else {}
    return PresignedRequest(url=row.session_uri, method="PUT", headers=headers,
                            expires_at=row.session_uri_expires_at)


def resumable_status(app: AppContext, session_id: uuid.UUID | str) -> ResumableStatus:
    """How many bytes of a resumable session the backend holds (resume from there).

    A ``signed`` session with bytes committed moves to ``uploading``. A ``tus`` session
    answers from its row (the bytes the tus server committed). Raises
    ``upload_unsupported`` for other strategies and ``session_expired`` once the session is
    closed.
    """
    row, asset = _load(app, session_id)
    prof = app.profile(asset.profile)
    if row.upload_strategy == "tus":  # the tus server wrote it: the database knows
        done = row.state == "completed" or (row.upload_length is not None
                                            and row.last_known_offset == row.upload_length)
        return ResumableStatus(committed_bytes=row.last_known_offset,
                               state="complete" if done else "in_progress")
    if row.upload_strategy != "resumable":
        raise UploadUnsupported(f"session uses {row.upload_strategy}, not resumable")
    uri = _resumable_request(row).url
    status = app.storage(prof.storage).resumable_upload_status(row.upload_key, uri)
    if status.committed_bytes > 0 and row.state == "signed":
        try:
            with app.db.transaction() as s:
                session_fsm.transition(s, row.id, "signed", "uploading",
                                       telemetry=app.telemetry, profile=prof.name,
                                       values={"last_known_offset": status.committed_bytes})
        except InvalidTransition:
            pass  # verified or aborted meanwhile: the status stands as the backend said
    return status


def sign_part(app: AppContext, session_id: uuid.UUID | str, part_number: int, *,
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
        try:
            with app.db.transaction() as s:
                session_fsm.transition(s, row.id, "initialized", "signed",
                                       telemetry=app.telemetry, profile=prof.name)
        except InvalidTransition:
            # parts signed in parallel (Uppy, rindle-upload.js): another one won the move
            if _load(app, row.id)[0].state != "signed":
                raise
    return request


def complete_multipart(app: AppContext, session_id: uuid.UUID | str,
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


def verify(app: AppContext, session_id: uuid.UUID | str) -> Asset:
    """Check the object is in storage, then complete the session and queue promotion.

    Raises :class:`rindle.errors.ObjectNotFound` (``storage_object_missing``) when nothing
    was uploaded, with no state change; a second call raises ``InvalidTransition``. An
    object over the profile's ``max_bytes`` (by the HEAD size) is deleted and the session
    fails: :class:`UploadRejected` ``max_bytes_exceeded``. The object's identity (size and
    ETag/generation) is pinned on the asset; promotion refuses any other object.
    """
    row, asset = _load(app, session_id)
    prof = app.profile(asset.profile)
    session_fsm.check(row.state, "verifying")
    asset_fsm.check(asset.state, "validating")
    if row.expires_at <= utcnow():
        raise UploadRejected("session_expired",
                             "the upload session expired before it was verified; start a new "
                             "upload (abort-incomplete-uploads removes what it left)")
    storage = app.storage(prof.storage)
    done: dict[str, Any] = {"verified_at": utcnow()}
    if row.upload_strategy == "resumable":  # ObjectNotFound while bytes are missing
        info = storage.verify_resumable_completion(row.upload_key, _resumable_request(row).url)
        done["session_uri"] = None  # a finished session's URI is no use, only a risk
    else:
        info = storage.head(row.upload_key)  # ObjectNotFound propagates
    policy = prof.upload_policy()
    if policy.max_bytes is not None and info.size > policy.max_bytes:
        _fail_oversized(app, prof, row, storage, info.size, policy.max_bytes)
    with app.db.transaction() as s:
        tel = app.telemetry
        session_fsm.transition(s, row.id, row.state, "verifying", telemetry=tel, profile=prof.name)
        session_fsm.transition(s, row.id, "verifying", "completed", telemetry=tel,
                               profile=prof.name, values=done)
        asset_fsm.transition(s, asset.id, "staged", "validating", telemetry=tel,
                             profile=prof.name,
                             values={"byte_size": info.size, "content_type": info.content_type,
                                     "original_etag": info.etag})
        app.jobs.enqueue(s, PROMOTE, {"asset_id": str(asset.id), "direct": True,
                                      "max_bytes": policy.max_bytes},
                         unique_key=promote_unique_key(asset.id))
    app.db.when_committed(lambda: app.telemetry.emit(
        "rindle.upload.stop", {"system_time": time.time_ns(), "bytes": info.size},
        {"profile": prof.name, "adapter": storage.backend_name,
         "strategy": row.upload_strategy}))
    return get_asset(app.db, asset.id)


def _fail_oversized(app: AppContext, prof: type[Profile], row: UploadSession, storage: Storage,
                    size: int, max_bytes: int) -> NoReturn:
    """Fail the session (``max_bytes_exceeded``), delete the object, raise the rejection."""
    with app.db.transaction() as s:
        session_fsm.transition(s, row.id, row.state, "failed", telemetry=app.telemetry,
                               profile=prof.name,
                               values={"failure_reason": "max_bytes_exceeded",
                                       "session_uri": None})
    app.db.when_committed(lambda: storage.delete(row.upload_key))
    raise UploadRejected(
        "max_bytes_exceeded",
        f"the uploaded object is {size} bytes, over this profile's max_bytes of {max_bytes}; "
        "it was deleted. Upload a smaller file in a new session.")


def _discard(storage: Storage, row: UploadSession) -> None:
    """Remove what an aborted session left in storage (tus part file, open multipart
    upload, or the staged object)."""
    if row.upload_strategy == "tus":
        tus_backing.discard(storage, row)
    elif row.multipart_upload_id:
        storage.abort_multipart(row.upload_key, row.multipart_upload_id)
    else:
        storage.delete(row.upload_key)


def abort(app: AppContext, session_id: uuid.UUID | str) -> UploadSession:
    """Abort an unfinished session; the staged object (or multipart upload, or resumable
    session) is removed. A resumable session is cancelled at the backend first, so a
    failure there changes nothing and the call can be repeated. A tus upload whose part
    file a request is writing is :class:`UploadRejected` ``upload_busy`` (nothing
    changes)."""
    row, asset = _load(app, session_id)
    prof = app.profile(asset.profile)
    session_fsm.check(row.state, "aborted")
    storage = app.storage(prof.storage)
    if row.upload_strategy == "resumable" and row.session_uri:
        storage.cancel_resumable_upload(row.upload_key, row.session_uri)
    # a tus part file is removed under its lock: upload_busy while a chunk is written
    with (tus_backing.removal_lock(storage, row) if row.upload_strategy == "tus"
          else contextlib.nullcontext()):
        with app.db.transaction() as s:
            session_fsm.transition(s, row.id, row.state, "aborted", telemetry=app.telemetry,
                                   profile=prof.name, values={"session_uri": None})
        app.db.when_committed(lambda: _discard(storage, row))
    with app.db.sessionmaker() as s:
        fresh = s.execute(select(UploadSession).where(UploadSession.id == row.id)).scalar_one()
        return fresh
