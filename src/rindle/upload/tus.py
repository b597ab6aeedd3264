"""The tus upload service: sessions the server itself writes, one appended chunk at a time.

The protocol lives in :mod:`rindle.web.tus`; this module keeps the session rows honest:

* :func:`create` opens a ``tus`` session (a staged asset plus a session moved straight to
  ``signed``: its upload URL is out), bound to its actor.
* :func:`append_chunk` takes one chunk at the upload's offset under its write lock (a
  local part file's ``flock``, else a short database lease, ``locked_until``: one writer
  per upload, across processes), writes it through the storage's backing
  (:mod:`rindle.upload.tus_backing`), then commits the new offset with a guarded UPDATE
  (a local upload's part file holds its offset, so only its first bytes, a declared
  length and its last bytes write the row); the first bytes move the session
  ``signed -> uploading``. When the last
  byte is in, the object is put at the upload key and the same trust gate as every other
  strategy runs (:func:`rindle.upload.direct.verify`).
* :func:`concatenate` builds a final upload from finished partial uploads (tus
  ``concatenation``); the partial sessions are then ``aborted`` (``failure_reason``
  ``concatenated``) and their bytes removed.
* :func:`terminate` takes the write lease, then is :func:`rindle.upload.direct.abort`,
  which discards the backing (``upload_busy`` while a final concatenation holds it).
  ``abort-incomplete-uploads`` takes the same lease (:func:`take_lease`) before it removes
  an expired session's bytes, and leaves a session whose lease is held.

Refusals are :class:`UploadRejected` with these reasons (the tus server maps each to its
status): ``offset_mismatch``, ``checksum_mismatch``, ``max_bytes_exceeded``,
``session_expired``, ``upload_busy``, ``invalid_upload_length``, ``upload_finished``,
``invalid_concat``; a session that is gone (aborted, or another actor's) is
:class:`NotFound`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import bindparam, inspect, or_, select, update

from rindle.domain.fsm import upload_session as session_fsm
from rindle.domain.models import Asset, UploadSession, utcnow
from rindle.errors import InvalidTransition, NotFound, StorageError, UploadRejected
from rindle.ids import parse_id
from rindle.upload import direct, tus_backing

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Table, Update
    from sqlalchemy.engine import CursorResult

    from rindle.context import AppContext
    from rindle.domain.profile import Profile
    from rindle.storage.base import Storage
    from rindle.upload.tus_backing import ChunkSource

__all__ = [
    "DEFAULT_MAX_SIZE",
    "LEASE",
    "STRATEGY",
    "Chunk",
    "append_chunk",
    "concatenate",
    "create",
    "current_offset",
    "is_finished",
    "load",
    "load_request",
    "max_size",
    "release_lease",
    "take_lease",
    "terminate",
]

STRATEGY = "tus"
#: How long one request may hold an upload's write lease (released when it ends; a
#: process that died holding it blocks that upload for at most this long).
LEASE = dt.timedelta(minutes=5)
#: The largest upload when neither the profile (``max_bytes``) nor the server caps it.
DEFAULT_MAX_SIZE = 5 * 1024 ** 3
#: Sessions whose rows :func:`append_chunk` may write.
_OPEN = ("signed", "uploading")


class Chunk:
    """One PATCH: ``source`` (a ``read(n)`` body) carrying ``declared`` bytes
    (``Content-Length``; ``None`` when unframed), an optional ``(algorithm, digest)``
    checksum and, for a deferred-length upload, the ``length`` it now declares."""

    def __init__(self, source: ChunkSource, *, declared: int | None,
                 checksum: tuple[str, bytes] | None = None, length: int | None = None
                 ) -> None:
        self.source, self.declared, self.checksum, self.length = (source, declared, checksum,
                                                                  length)


def max_size(app: AppContext, profile: type[Profile] | str, server_max: int) -> int:
    """The most bytes one upload of ``profile`` may have: the profile's ``max_bytes`` when
    set, capped by ``server_max``."""
    policy = app.profile(profile).upload_policy()
    return min(policy.max_bytes, server_max) if policy.max_bytes is not None else server_max


def load(app: AppContext, session_id: uuid.UUID | str, actor_id: str
         ) -> tuple[UploadSession, Asset]:
    """The tus session ``session_id`` of ``actor_id`` with its asset; :class:`NotFound`
    when it does not exist, is not a tus session, belongs to another actor, or was
    terminated (aborted)."""
    row, asset = direct.load_owned(app, session_id, actor_id, (STRATEGY,))
    if row.state == "aborted":
        raise NotFound("upload session", session_id)
    return row, asset


_ASSETS = cast("Table", Asset.__table__)
_SESSION_COLUMNS = cast("Table", UploadSession.__table__)
#: ``(attribute, column)`` of every column of a session row.
_SESSION_ATTRIBUTES = [(attr.key, attr.columns[0])
                       for attr in inspect(UploadSession).column_attrs]
#: A session's columns and its asset's profile by session id (built once: the tus server
#: runs it for every request).
_SESSION_AND_PROFILE = (
    select(*(column for _, column in _SESSION_ATTRIBUTES),
           _ASSETS.c.profile.label("rindle_asset_profile"))
    .join(_ASSETS, _ASSETS.c.id == _SESSION_COLUMNS.c.asset_id)
    .where(_SESSION_COLUMNS.c.id == bindparam("sid")))


def load_request(app: AppContext, session_id: uuid.UUID | str) -> tuple[UploadSession, str]:
    """The tus session ``session_id`` (of any actor: the caller checks ``actor_id``) and
    its asset's profile name, in one statement without the ORM (a tus request reads this
    first); :class:`NotFound` when it does not exist, is not a tus session, or the id is
    malformed. The session is a detached copy, never added to an ORM session."""
    sid = parse_id(session_id, "upload session")
    with app.db.engine.connect() as conn:
        found = conn.execute(_SESSION_AND_PROFILE, {"sid": sid}).first()
    if found is None or found.upload_strategy != STRATEGY:
        raise NotFound("upload session", session_id)
    values = found._mapping
    row = UploadSession(**{key: values[column] for key, column in _SESSION_ATTRIBUTES})
    return row, str(values["rindle_asset_profile"])


def is_finished(row: UploadSession) -> bool:
    """Whether every declared byte of ``row`` is stored (a deferred length never is)."""
    return row.upload_length is not None and row.last_known_offset == row.upload_length


def current_offset(app: AppContext, row: UploadSession, profile: str) -> int:
    """The upload's offset: for an open local upload its part file's size (the row's
    offset is then a lower bound; see :mod:`rindle.upload.tus_backing`), else the row's."""
    return _offset_in(app.storage_for(profile), row)


def _offset_in(storage: Storage, row: UploadSession) -> int:
    """:func:`current_offset` for ``row``'s storage."""
    if row.state in _OPEN:
        size = tus_backing.part_size(storage, row)
        if size is not None and size > row.last_known_offset:
            return size
    return row.last_known_offset


def _check_open(row: UploadSession, now: dt.datetime) -> None:
    if row.state == "expired" or (row.state in _OPEN and row.expires_at <= now):
        raise UploadRejected("session_expired",
                             "this upload expired; start a new one (its bytes are removed)")


def create(app: AppContext, profile: type[Profile] | str, *, actor_id: str,
           filename: str | None, content_type: str | None, length: int | None,
           metadata: str | None = None, concat: str | None = None,
           partials: Sequence[str] = (), expires_in: int, now: dt.datetime,
           server_max: int = DEFAULT_MAX_SIZE) -> UploadSession:
    """Open a tus session of ``actor_id`` (``signed``: its URL is handed out).

    ``length`` ``None`` defers the length (creation-defer-length). ``concat`` is ``None``,
    ``"partial"`` (a piece of a later final upload: no filename check) or ``"final"``
    (made by :func:`concatenate`). ``metadata`` is the raw ``Upload-Metadata``, echoed
    back on HEAD. A length over :func:`max_size` is ``max_bytes_exceeded`` and the
    profile's filename and type checks apply (``check_declared``) before anything is
    written.
    """
    prof = app.profile(profile)
    limit = max_size(app, prof, server_max)
    if length is not None and length > limit:
        raise UploadRejected("max_bytes_exceeded",
                             f"Upload-Length {length} is over this upload's maximum of "
                             f"{limit} bytes")
    tus_backing.backing_for(app.storage(prof.storage))
    state: dict[str, Any] = {"metadata": metadata or "", "concat": concat,
                             "partials": list(partials)}
    row = direct.initiate(app, prof, filename=filename or "upload", strategy=STRATEGY,
                          byte_size=length, content_type=content_type, expires_in=expires_in,
                          actor_id=actor_id, protocol_state=state, now=now,
                          check_filename=concat != "partial")
    with app.db.transaction() as s:
        session_fsm.transition(s, row.id, "initialized", "signed", telemetry=app.telemetry,
                               profile=prof.name)
    fresh, _ = load(app, row.id, actor_id)
    return fresh


def take_lease(app: AppContext, session_id: uuid.UUID, now: dt.datetime, *,
               state: str | None = None) -> bool:
    """Take the session's write lease (``locked_until`` = ``now`` + :data:`LEASE`) in one
    guarded UPDATE, matched only while no lease is held (none, or one ending at or before
    ``now``) and, with ``state``, while the session is still in it. ``False`` (nothing
    written) when another holder has it, the state moved on, or the row is gone."""
    guard = [UploadSession.id == session_id,
             or_(UploadSession.locked_until.is_(None), UploadSession.locked_until <= now)]
    if state is not None:
        guard.append(UploadSession.state == state)
    with app.db.transaction() as s:
        claimed = cast("CursorResult[Any]", s.execute(
            update(UploadSession).where(*guard).values(locked_until=now + LEASE)
            .execution_options(synchronize_session=False))).rowcount
    return claimed == 1


def _lease(app: AppContext, row: UploadSession, now: dt.datetime) -> None:
    if not take_lease(app, row.id, now):
        raise UploadRejected("upload_busy", "another request is writing this upload; wait "
                                            "for it to finish, then ask for the offset again")


def release_lease(app: AppContext, session_id: uuid.UUID) -> None:
    """Clear the session's write lease (``locked_until``)."""
    with app.db.transaction() as s:
        s.execute(update(UploadSession).where(UploadSession.id == session_id)
                  .values(locked_until=None).execution_options(synchronize_session=False))


@dataclass
class _Held:
    """A held write lock: ``released`` is set by a commit that cleared the lease itself;
    ``part_size`` is the local part file's size once locked (``None`` for a lease)."""

    released: bool = False
    part_size: int | None = None


@contextlib.contextmanager
def _one_writer(app: AppContext, storage: Storage, row: UploadSession, now: dt.datetime,
                create: bool = True) -> Iterator[_Held]:
    """Hold the upload's write lock: the local part file's ``flock`` (no database write;
    ``create``: see :func:`tus_backing.local_lock`), else the ``locked_until`` lease.
    ``upload_busy`` when another request holds it."""
    held = _Held()
    local = tus_backing.local_lock(storage, row, create=create)
    if local is not None:
        try:
            with local as size:
                held.part_size = size
                yield held
        except (UploadRejected, StorageError) as exc:
            if not _drop_dead_part(app, storage, row):
                raise
            if isinstance(exc, UploadRejected):
                raise
            raise UploadRejected("offset_mismatch", "this upload moved on meanwhile (it was "
                                                    "terminated, expired or finished); ask "
                                                    "with HEAD") from exc
        return
    _lease(app, row, now)
    try:
        yield held
    finally:
        if not held.released:
            release_lease(app, row.id)


_SESSIONS = cast("Table", UploadSession.__table__)
#: The offset and state under the write lock (built once: this runs for every chunk).
_CURRENT = (select(_SESSIONS.c.last_known_offset, _SESSIONS.c.state)
            .where(_SESSIONS.c.id == bindparam("sid")))
def _advance(offset_guard: ColumnElement[bool]) -> Update:
    """A chunk's commit when the state stays, guarded on the state and ``offset_guard``
    (built once: this runs for every chunk that writes the row)."""
    return (update(_SESSIONS)
            .where(_SESSIONS.c.id == bindparam("sid"), offset_guard,
                   _SESSIONS.c.state == bindparam("old_state"))
            .values(last_known_offset=bindparam("new_offset"),
                    protocol_state=bindparam("new_state"),
                    multipart_upload_id=bindparam("new_upload_id"),
                    upload_length=bindparam("new_length"), locked_until=None,
                    updated_at=bindparam("now")))


#: Guarded on the offset the chunk started from.
_ADVANCE = _advance(_SESSIONS.c.last_known_offset == bindparam("old_offset"))
#: For a local part file, whose size is the offset (the row's lags behind it): guarded on
#: the row's offset being no further than the chunk's start.
_ADVANCE_FILE = _advance(_SESSIONS.c.last_known_offset <= bindparam("old_offset"))

#: States whose session never writes its part file again.
_DONE = ("aborted", "expired", "failed", "completed")


def _drop_dead_part(app: AppContext, storage: Storage, row: UploadSession) -> bool:
    """After a refused or failed local write: when the session is over (terminated,
    expired, failed or completed, e.g. by a request that ran while this one held the part
    file's lock) or its object is already at the upload key (a completion is running),
    remove the part file this request may have made again by opening it by name, and say
    so; ``False`` (nothing removed) while the session is still open."""
    with app.db.engine.connect() as conn:
        current = conn.execute(_CURRENT, {"sid": row.id}).first()
    if (current is not None and current.state not in _DONE
            and not tus_backing.object_stored(storage, row)):
        return False
    tus_backing.drop_part(storage, row)
    return True


def _check_current(app: AppContext, row: UploadSession, offset: int) -> None:
    """``offset_mismatch`` unless the stored offset and state are still ``offset`` and
    ``row.state`` (read again under the write lock)."""
    with app.db.engine.connect() as conn:
        current = conn.execute(_CURRENT, {"sid": row.id}).one()
    if current.last_known_offset != offset or current.state != row.state:
        raise UploadRejected("offset_mismatch", "this upload moved on meanwhile; ask "
                                                "with HEAD and resume from its offset")


def append_chunk(app: AppContext, session_id: uuid.UUID | str, *, actor_id: str,
                 offset: int, chunk: Chunk, now: dt.datetime,
                 server_max: int = DEFAULT_MAX_SIZE,
                 loaded: tuple[UploadSession, str] | None = None, snapshot: bool = False
                 ) -> tuple[UploadSession, Asset | None]:
    """Append one chunk at ``offset``; returns the session as this chunk left it and,
    when this chunk finished a non-partial upload, the verified asset.

    ``loaded`` is the session and its asset's profile name the caller already read with
    :func:`load_request` and checked for this actor (saves reading them again); under the
    write lock the offset is checked again: read from the database, or, for a local part
    file, that file's size (a stale ``loaded`` never overwrites stored bytes). A local
    upload's middle chunks write no row (the part file holds the offset; see
    :mod:`rindle.upload.tus_backing`): its first bytes, a declared length and its last
    bytes are committed; every other backing commits each chunk. ``snapshot``:
    ``loaded`` is the session as an earlier request of this process left it (not read
    for this request); a local part file that is gone is then ``offset_mismatch`` before
    any byte is read, never created again, so the caller can read the session and try
    once more.

    Refusals (nothing is stored): ``offset_mismatch`` (``offset`` is not the stored
    offset), ``max_bytes_exceeded`` (past the declared length or :func:`max_size`),
    ``checksum_mismatch``, ``session_expired``, ``upload_busy`` (another request holds the
    lease), ``invalid_upload_length`` (a length that contradicts the recorded one or lies
    below the offset), ``upload_finished`` (bytes after the end, or a PATCH to a final
    concatenation). A finished upload whose completion failed (a transient error) is
    completed again by an empty chunk at its end.
    """
    if loaded is not None:
        row, profile = loaded
    else:
        row, asset_row = load(app, session_id, actor_id)
        profile = asset_row.profile
    _check_open(row, now)
    state = row.protocol_state or {}
    if state.get("concat") == "final":
        raise UploadRejected("upload_finished", "a final concatenation takes no bytes")
    limit = max_size(app, profile, server_max)
    storage = app.storage_for(profile)
    # a local part file's size is the offset; the row's is then a lower bound (checked
    # again under the lock)
    file_offset = tus_backing.backing_for(storage) == "local"
    recorded = row.last_known_offset
    if file_offset and offset > recorded:
        recorded = _offset_in(storage, row)
    length = row.upload_length
    if chunk.length is not None:
        if length is not None and chunk.length != length:
            raise UploadRejected("invalid_upload_length",
                                 f"Upload-Length {chunk.length} contradicts the declared "
                                 f"length {length}")
        if chunk.length > limit:
            raise UploadRejected("max_bytes_exceeded",
                                 f"Upload-Length {chunk.length} is over this upload's "
                                 f"maximum of {limit} bytes")
        if chunk.length < recorded:
            raise UploadRejected("invalid_upload_length",
                                 f"Upload-Length {chunk.length} is below the bytes already "
                                 f"stored ({recorded})")
        length = chunk.length
    if offset != recorded:
        raise UploadRejected("offset_mismatch",
                             f"Upload-Offset {offset} is not this upload's offset "
                             f"{recorded}; ask with HEAD and resume from there")
    if row.state not in _OPEN:
        if row.state == "completed" and chunk.declared == 0:
            return row, None
        raise UploadRejected("upload_finished", f"this upload is {row.state}; it takes no "
                                                "more bytes")
    room = (length if length is not None else limit) - offset
    if chunk.declared is not None and chunk.declared > room:
        raise UploadRejected("max_bytes_exceeded",
                             f"the chunk of {chunk.declared} bytes does not fit: {room} bytes "
                             "of this upload are left")
    # every byte is in and committed: complete (again)
    committed_end = offset == row.upload_length == row.last_known_offset
    with _one_writer(app, storage, row, now, create=not snapshot) as held:
        if committed_end:
            _check_current(app, row, offset)
        elif file_offset and held.part_size != offset:
            if held.part_size is not None and held.part_size < row.last_known_offset:
                # 409 when the upload moved on (finished or ended: a new part file is
                # empty); bytes lost while it stayed where it was are a storage failure
                _check_current(app, row, row.last_known_offset)
                raise StorageError(f"the tus part file of {row.upload_key!r} holds fewer "
                                   "bytes than the recorded offset "
                                   f"{row.last_known_offset}; start a new upload")
            raise UploadRejected("offset_mismatch",
                                 f"Upload-Offset {offset} is not this upload's offset "
                                 f"{held.part_size}; ask with HEAD and resume from there")
        elif not file_offset:
            _check_current(app, row, offset)
        # else the locked part file, still at its path, holds exactly ``offset`` bytes:
        # that is the upload's offset. What ends the session without bytes (termination,
        # abort, expiry) removes the part file under this lock (tus_backing.removal_lock),
        # so it cannot have happened while this request holds it. A part file that holds
        # every byte while the row's offset lags (the process died between the last write
        # and its commit) goes on as an empty chunk: its commit, then completion.
        if committed_end:
            return _complete_once(app, row) if state.get("concat") != "partial" else (row,
                                                                                     None)
        declares = length != row.upload_length
        if declares:
            row.upload_length = length  # the backing completes against the declared length
        appended = tus_backing.append(storage, row, tmp_dir=None if file_offset else _tmp(app),
                                      offset=offset, source=chunk.source, limit=room,
                                      checksum=chunk.checksum, declared=chunk.declared)
        new_offset = offset + appended.written
        values = {"last_known_offset": new_offset, "protocol_state": appended.state,
                  "multipart_upload_id": appended.upload_id,
                  "upload_length": length, "locked_until": None}
        try:
            if (file_offset and row.state == "uploading" and not declares
                    and new_offset != length):
                pass  # a middle chunk of a local upload: its part file holds the offset
            elif row.state == "signed" and appended.written:
                try:
                    with app.db.transaction() as s:
                        session_fsm.transition(s, row.id, "signed", "uploading",
                                               telemetry=app.telemetry, profile=profile,
                                               values=values)
                except InvalidTransition:  # terminated or expired meanwhile
                    raise UploadRejected("offset_mismatch", "this upload moved on meanwhile; "
                                                            "ask with HEAD") from None
            else:  # the state stays: one guarded UPDATE, no ORM session
                with app.db.engine.begin() as conn:
                    done = conn.execute(_ADVANCE_FILE if file_offset else _ADVANCE, {
                        "sid": row.id, "old_offset": offset, "old_state": row.state,
                        "new_offset": new_offset,
                        "new_state": appended.state, "new_upload_id": appended.upload_id,
                        "new_length": length, "now": utcnow()})
                    if done.rowcount != 1:
                        raise UploadRejected("offset_mismatch", "this upload moved on "
                                                                "meanwhile; ask with HEAD")
        except BaseException:
            tus_backing.undo(storage, row, appended)
            raise
        held.released = True
        tus_backing.after_commit(storage, appended)
    row.last_known_offset = offset + appended.written
    row.protocol_state = appended.state
    row.multipart_upload_id = appended.upload_id
    if row.state == "signed" and appended.written:
        row.state = "uploading"
    if is_finished(row) and state.get("concat") != "partial":
        return _complete_once(app, row)
    return row, None


def _complete_once(app: AppContext, row: UploadSession) -> tuple[UploadSession, Asset | None]:
    """:func:`_complete`; when a concurrent request (a retry at the end offset) ran the
    trust gate first, the session as that left it and the asset once it is completed."""
    try:
        return _complete(app, row)
    except InvalidTransition:
        fresh, asset = load(app, row.id, str(row.actor_id))
        if fresh.state not in ("verifying", "completed"):
            raise
        return fresh, asset if fresh.state == "completed" else None


def _complete(app: AppContext, row: UploadSession) -> tuple[UploadSession, Asset]:
    """Put the object at its key and run the trust gate (verify)."""
    storage = app.storage_for(_profile_of(app, row))
    tus_backing.finish(storage, row)
    asset = direct.verify(app, row.id)
    fresh, _ = load(app, row.id, str(row.actor_id))
    return fresh, asset


def _profile_of(app: AppContext, row: UploadSession) -> str:
    with app.db.sessionmaker() as s:
        asset = s.get(Asset, row.asset_id)
        if asset is None:
            raise NotFound("asset", row.asset_id)
        return asset.profile


def complete_if_empty(app: AppContext, row: UploadSession) -> Asset | None:
    """Complete a new non-partial upload of length 0 (nothing will ever be PATCHed); the
    asset, or ``None`` for any other upload."""
    state = row.protocol_state or {}
    if row.upload_length == 0 and state.get("concat") != "partial":
        return _complete(app, row)[1]
    return None


def concatenate(app: AppContext, profile: type[Profile] | str, *, actor_id: str,
                partial_ids: Sequence[str], filename: str | None, content_type: str | None,
                metadata: str | None, expires_in: int, now: dt.datetime,
                server_max: int = DEFAULT_MAX_SIZE) -> tuple[UploadSession, Asset]:
    """Build a final upload from ``partial_ids`` (finished partial uploads of ``actor_id``
    and of the same profile, in order) and verify it.

    ``invalid_concat`` when the list is empty or names an upload that is not a finished
    partial upload of this actor and profile (another actor's is :class:`NotFound`);
    ``max_bytes_exceeded`` when their sum is over :func:`max_size`. On success the partial
    sessions are aborted (``failure_reason`` ``concatenated``) and their bytes removed. A
    partial is used once: while a final (or a termination) holds its write lease, another
    final naming it is ``upload_busy``; once used or terminated, it is :class:`NotFound`.
    A final whose building fails (a partial's bytes gone, a storage error) is aborted and
    its bytes removed, and the partials are released for another try.
    """
    prof = app.profile(profile)
    if not partial_ids:
        raise UploadRejected("invalid_concat", "a final upload needs at least one partial "
                                               "upload")
    pieces: list[UploadSession] = []
    for pid in partial_ids:
        part, part_asset = load(app, pid, actor_id)
        _check_open(part, now)
        if ((part.protocol_state or {}).get("concat") != "partial" or not is_finished(part)
                or part_asset.profile != prof.name or part.state not in _OPEN):
            raise UploadRejected("invalid_concat",
                                 f"upload {pid} is not a finished partial upload of profile "
                                 f"{prof.name!r}")
        pieces.append(part)
    if len({p.id for p in pieces}) != len(pieces):
        raise UploadRejected("invalid_concat", "a partial upload is named twice")
    claimed: list[UploadSession] = []
    try:  # one final at a time may use a partial: hold each partial's write lease
        for part in pieces:
            _lease(app, part, now)
            claimed.append(part)
        for part in pieces:  # under the lease: not used by another final meanwhile
            if load(app, part.id, actor_id)[0].state not in _OPEN:
                raise UploadRejected("invalid_concat", f"upload {part.id} is no longer a "
                                                       "partial upload waiting to be used")
        return _build_final(app, prof, pieces, actor_id=actor_id, filename=filename,
                            content_type=content_type, metadata=metadata,
                            expires_in=expires_in, now=now, server_max=server_max)
    except BaseException:
        for part in claimed:  # a used partial is aborted already; another may be retried
            release_lease(app, part.id)
        raise


def _build_final(app: AppContext, prof: type[Profile], pieces: Sequence[UploadSession], *,
                 actor_id: str, filename: str | None, content_type: str | None,
                 metadata: str | None, expires_in: int, now: dt.datetime,
                 server_max: int) -> tuple[UploadSession, Asset]:
    """:func:`concatenate`'s work once the partials are checked and leased."""
    total = sum(int(p.upload_length or 0) for p in pieces)
    final = create(app, prof, actor_id=actor_id, filename=filename, content_type=content_type,
                   length=total, metadata=metadata, concat="final",
                   partials=[str(p.id) for p in pieces], expires_in=expires_in, now=now,
                   server_max=server_max)
    storage = app.storage(prof.storage)
    try:
        return _fill_final(app, prof, storage, pieces, final, total=total, actor_id=actor_id)
    except BaseException:
        _drop_final(app, final)
        raise


def _drop_final(app: AppContext, final: UploadSession) -> None:
    """Abort a final upload whose building failed and remove its bytes (part file,
    multipart upload, object), so a failed concatenation leaves no session or file
    behind; a final that got past its trust gate is left as it is."""
    with contextlib.suppress(InvalidTransition, NotFound):
        direct.abort(app, final.id)  # discards the backing once the abort committed


def _fill_final(app: AppContext, prof: type[Profile], storage: Storage,
                pieces: Sequence[UploadSession], final: UploadSession, *, total: int,
                actor_id: str) -> tuple[UploadSession, Asset]:
    """Append each leased partial's bytes to ``final``, verify it, then abort the
    partials (``failure_reason`` ``concatenated``) and remove their bytes."""
    for part in pieces:  # each partial's object, appended through the final's backing
        tus_backing.finish(storage, part)
    with tempfile.TemporaryDirectory(prefix="rindle-tus-concat-",
                                     dir=_tmp(app)) as tmp:
        offset = 0
        for part in pieces:
            local = storage.download(part.upload_key, Path(tmp) / part.id.hex)
            fresh, _ = load(app, final.id, actor_id)
            fresh.protocol_state = {**(fresh.protocol_state or {}), "concat": None}
            with open(local, "rb") as src:
                appended = tus_backing.append(storage, fresh, tmp_dir=_tmp(app), offset=offset,
                                              source=src, limit=total - offset)
            offset += appended.written
            with app.db.transaction() as s:
                st = {**appended.state, "concat": "final"}
                values = {"last_known_offset": offset, "protocol_state": st,
                          "multipart_upload_id": appended.upload_id}
                if fresh.state == "signed":
                    session_fsm.transition(s, final.id, "signed", "uploading",
                                           telemetry=app.telemetry, profile=prof.name,
                                           values=values)
                else:
                    s.execute(update(UploadSession).where(UploadSession.id == final.id)
                              .values(**values).execution_options(synchronize_session=False))
            tus_backing.after_commit(storage, appended)
            local.unlink()
    done, _ = load(app, final.id, actor_id)
    _, asset = _complete(app, done)
    for part in pieces:
        try:
            with app.db.transaction() as s:
                session_fsm.transition(s, part.id, part.state, "aborted",
                                       telemetry=app.telemetry, profile=prof.name,
                                       values={"failure_reason": "concatenated",
                                               "locked_until": None})
        except InvalidTransition:
            continue
        tus_backing.discard(storage, part)
    fresh, _ = load(app, final.id, actor_id)
    return fresh, asset


def _tmp(app: AppContext) -> Path:
    path = Path(app.settings.resolved_tmp_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def terminate(app: AppContext, session_id: uuid.UUID | str, *, actor_id: str,
              now: dt.datetime | None = None) -> None:
    """Abort ``actor_id``'s unfinished tus session and remove its bytes (tus
    termination); :class:`NotFound` when it is gone or not theirs.

    Termination takes the upload's write lease (``locked_until``) like a writer does:
    while another request holds it (a final concatenation using this partial upload, or
    a chunk written through a leased backing) it is ``upload_busy`` and nothing changes,
    so a concatenation never builds from bytes being terminated and a termination never
    removes bytes a concatenation is reading. The lease is released once the session is
    aborted; a concatenation naming it afterwards finds it gone (:class:`NotFound`).
    """
    row, _ = load(app, session_id, actor_id)
    _lease(app, row, utcnow() if now is None else now)
    try:
        direct.abort(app, row.id)
    except InvalidTransition:
        raise UploadRejected("upload_finished", f"this upload is {row.state}; a finished "
                                                "upload cannot be terminated") from None
    finally:
        release_lease(app, row.id)


def metadata_of(row: UploadSession) -> Mapping[str, Any]:
    """The session's tus protocol state (raw ``metadata``, ``concat``, ``partials``)."""
    return row.protocol_state or {}

