"""Where the tus server keeps an upload's bytes between requests.

Two backings, chosen by the storage's capabilities (:func:`backing_for`):

* **local** (``local`` storages): the bytes go to a part file next to the final object
  (``.rindle-tmp-tus-<session hex>``, skipped by listings). The part file's size *is* the
  upload's offset (as in tusd's file store): a request holds the file's ``flock``, checks
  that the file still holds exactly the offset the client sent, appends, and truncates
  back to that offset when it fails (a refused checksum, a body cut short). The session
  row's ``last_known_offset`` is a lower bound that the upload's first bytes, a declared
  length and its last bytes commit; :func:`part_size` is the current offset. Whatever
  removes a part file (termination, abort, expiry) holds the same lock
  (:func:`removal_lock`), and a request that locked a part file no longer at its path
  (removed or completed meanwhile) is refused, so no request appends to bytes already
  gone. Completion hard-links the part file to the upload key (create-only, atomic) and
  removes the part file.
* **multipart** (storages with ``multipart_upload`` and :meth:`Storage.upload_part`, e.g.
  S3): bytes are spooled to a temporary file under the app's ``tmp_dir``, never held in
  process memory. Once the bytes since the last part reach :data:`MIN_PART` (S3's 5 MiB
  minimum part) they become the next part of a multipart upload opened on first need;
  fewer are written back to storage as a *tail* object (``<key>.tus-tail-<offset>``), so a
  resume on another process or host finds them. Completion uploads the rest as the last
  part and assembles the object; an upload that never reached a part is stored with one
  ``put``.

What a backing needs between requests lives in the session's ``protocol_state`` (parts,
tail key) and ``multipart_upload_id``; :class:`Appended` says what one request changed, and
the caller commits it, then calls :func:`after_commit` (or :func:`undo` when the commit
failed).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rindle.errors import ObjectNotFound, StorageError, UploadRejected, UploadUnsupported
from rindle.storage.base import Capability
from rindle.storage.blocks import BLOCK, read_blocks
from rindle.storage.local import _TMP_PREFIX, LocalStorage, ObjectExists

if TYPE_CHECKING:
    from rindle.domain.models import UploadSession
    from rindle.storage.base import Storage

__all__ = [
    "BLOCK",
    "MIN_PART",
    "Appended",
    "BodyCut",
    "ChunkSource",
    "StagedUpload",
    "after_commit",
    "append",
    "backing_for",
    "discard",
    "drop_part",
    "finish",
    "local_lock",
    "object_stored",
    "part_size",
    "removal_lock",
    "undo",
]

#: S3's smallest part (every part but the last must be at least this big).
MIN_PART = 5 * 1024 * 1024


class ChunkSource(Protocol):
    """A request body: ``read(n)`` returns up to ``n`` bytes, ``b""`` at its end."""

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes."""


class BodyCut(Exception):
    """The request body ended before its declared length (the client went away)."""


@dataclass
class Appended:
    """What one append wrote: ``written`` bytes, the new ``state`` and multipart upload id
    to commit, and the storage keys to delete once the commit succeeded (``garbage``) or
    failed (``orphans``)."""

    written: int
    state: dict[str, Any]
    upload_id: str | None
    garbage: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    opened_upload: bool = False
    rollback: Callable[[], None] | None = None


def backing_for(storage: Storage) -> str:
    """``"local"`` or ``"multipart"``: how the tus server stores ``storage``'s uploads;
    :class:`UploadUnsupported` when it can do neither."""
    if isinstance(storage, LocalStorage):
        return "local"
    if storage.supports(Capability.APPEND_UPLOAD) and storage.supports(
            Capability.MULTIPART_UPLOAD):
        return "multipart"
    raise UploadUnsupported(
        f"storage {storage.name!r} ({storage.backend_name}) cannot take tus uploads: it "
        f"needs the {Capability.APPEND_UPLOAD} capability; it supports: "
        f"{', '.join(sorted(storage.capabilities))}")


def _copy(source: ChunkSource, write: Callable[[memoryview], object], limit: int,
          hasher: Any | None, declared: int | None) -> int:
    """Copy ``source`` through ``write``; ``max_bytes_exceeded`` past ``limit`` and
    :class:`BodyCut` when a declared length is not reached."""
    written = 0
    for data in read_blocks(source, BLOCK):
        written += len(data)
        if written > limit:
            raise UploadRejected("max_bytes_exceeded",
                                 f"the request carries more than the {limit} bytes this "
                                 "upload has room for")
        if hasher is not None:
            hasher.update(data)
        write(data)
    if declared is not None and written != declared:
        raise BodyCut(f"the body ended after {written} of {declared} bytes")
    return written


def _check_digest(hasher: Any | None, expected: bytes | None) -> None:
    if hasher is not None and expected is not None and hasher.digest() != expected:
        raise UploadRejected("checksum_mismatch",
                             "the Upload-Checksum does not match the bytes received; "
                             "nothing was stored, send the chunk again")


# --- local ----------------------------------------------------------------------------------

def part_path(storage: LocalStorage, row: StagedUpload) -> Path:
    """The part file of a local tus upload (next to its final object, hidden from
    listings)."""
    return Path(_part_file(storage, row))


def _part_file(storage: LocalStorage, row: StagedUpload) -> str:
    """:func:`part_path` as a string (a tus request needs it on every chunk)."""
    final = storage.fs_path(row.upload_key)
    return f"{final[:final.rindex('/') + 1]}{_TMP_PREFIX}tus-{row.id.hex}"


def _open_part(path: str) -> int:
    """A read-write descriptor of the part file ``path``, created (with its folder) when
    missing; the folder is only made when the first open finds it absent."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


#: The locked part file of each thread's request in progress: ``(path, descriptor,
#: size)``, set by :func:`local_lock` while it is held, so the append writes through the
#: descriptor it locked instead of opening the file again.
_held = threading.local()


def _append_local(storage: LocalStorage, row: UploadSession, offset: int,
                  source: ChunkSource, limit: int, hasher: Any | None,
                  expected: bytes | None, declared: int | None) -> Appended:
    path = _part_file(storage, row)
    locked: tuple[str, int, int] | None = getattr(_held, "part", None)
    own = locked is None or locked[0] != path
    if locked is not None and not own:
        fd, size = locked[1], locked[2]
    else:
        try:
            fd = _open_part(path)
            size = os.fstat(fd).st_size
        except OSError as exc:
            raise StorageError(f"cannot open the tus part file of {row.upload_key!r}: "
                               f"{exc}") from exc
    try:
        if size < offset:
            raise StorageError(f"the tus part file of {row.upload_key!r} holds fewer bytes "
                               f"than the recorded offset {offset}; start a new upload")
        if size != offset:
            os.ftruncate(fd, offset)  # bytes of a request that never committed go
        os.lseek(fd, offset, os.SEEK_SET)

        def write(view: memoryview) -> None:
            while view:
                view = view[os.write(fd, view):]

        try:
            written = _copy(source, write, limit, hasher, declared)
            _check_digest(hasher, expected)
        except BaseException:
            os.ftruncate(fd, offset)
            raise
    except OSError as exc:
        raise StorageError(f"cannot write the tus part file of {row.upload_key!r}: {exc}"
                           ) from exc
    finally:
        if own:
            os.close(fd)

    def rollback() -> None:
        with contextlib.suppress(OSError):
            os.truncate(path, offset)

    return Appended(written, dict(row.protocol_state or {}), row.multipart_upload_id,
                    rollback=rollback)


def _lock(fd: int, busy: str) -> None:
    """Take ``fd``'s exclusive ``flock`` without waiting; ``upload_busy`` (``busy``)
    while another descriptor holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UploadRejected("upload_busy", busy) from None


@contextlib.contextmanager
def _flocked(path: str, create: bool) -> Iterator[int]:
    name = os.path.basename(path)
    try:
        fd = _open_part(path) if create else os.open(path, os.O_RDWR)
    except FileNotFoundError as exc:
        if create:
            raise StorageError(f"cannot open the tus part file {name}: {exc}") from exc
        raise UploadRejected("offset_mismatch", "this upload moved on meanwhile; ask with "
                                                "HEAD and resume from its offset") from None
    except OSError as exc:
        raise StorageError(f"cannot open the tus part file {name}: {exc}") from exc
    try:
        _lock(fd, "another request is writing this upload; wait for it, then ask for the "
                  "offset again")
        try:
            held = os.fstat(fd)
            still_there = os.path.samestat(held, os.stat(path))
        except FileNotFoundError:
            still_there = False
        except OSError as exc:
            raise StorageError(f"cannot read the tus part file {name}: {exc}") from exc
        if not still_there:  # removed (or completed) after it was opened, before the lock
            raise UploadRejected("offset_mismatch", "this upload moved on meanwhile; ask "
                                                    "with HEAD and resume from its offset")
        outer = getattr(_held, "part", None)
        _held.part = (path, fd, held.st_size)
        try:
            yield held.st_size
        finally:
            _held.part = outer
    finally:
        os.close(fd)  # releases the lock


def local_lock(storage: Storage, row: UploadSession, *, create: bool = True
               ) -> contextlib.AbstractContextManager[int] | None:
    """For a local upload, a context holding an exclusive, non-blocking ``flock`` on its
    part file (``upload_busy`` when another request, in any process on this host, holds
    it) that yields the part file's size once locked; ``None`` for other backings (the
    caller leases the row instead). A missing part file is created, unless ``create`` is
    false: then it is ``offset_mismatch`` (the upload was finished, terminated or expired
    since ``row`` was read) and nothing is created."""
    if isinstance(storage, LocalStorage):
        return _flocked(_part_file(storage, row), create)
    return None


@contextlib.contextmanager
def removal_lock(storage: Storage, row: StagedUpload) -> Iterator[None]:
    """Hold what keeps a local upload's part file from being written while the caller
    removes it or ends its session (termination, abort, expiry): the part file's
    exclusive ``flock``; ``upload_busy`` (nothing done) while a request holds it. Nothing
    to hold for an upload without a part file yet or for other backings (they commit
    every chunk under a guard on the session's state)."""
    if not isinstance(storage, LocalStorage):
        yield
        return
    path = _part_file(storage, row)
    try:
        fd = os.open(path, os.O_RDWR)
    except (FileNotFoundError, NotADirectoryError):
        yield  # a request that creates it later finds the session over
        return
    except OSError as exc:
        raise StorageError(f"cannot open the tus part file {os.path.basename(path)}: {exc}"
                           ) from exc
    try:
        _lock(fd, "a request is writing this upload; wait for it to finish, then try again")
        yield
    finally:
        os.close(fd)


def object_stored(storage: Storage, row: StagedUpload) -> bool:
    """Whether a local upload's object is at its upload key (its completion linked the
    part file there); ``False`` for other backings."""
    return isinstance(storage, LocalStorage) and os.path.isfile(
        storage.fs_path(row.upload_key))


def part_size(storage: Storage, row: StagedUpload) -> int | None:
    """The bytes in a local upload's part file (its current offset), ``None`` when there
    is no part file (no byte yet, or the upload is over) or the backing keeps none."""
    if not isinstance(storage, LocalStorage):
        return None
    try:
        return part_path(storage, row).stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StorageError(f"cannot read the tus part file of {row.upload_key!r}: {exc}"
                           ) from exc


def _finish_local(storage: LocalStorage, row: UploadSession) -> None:
    path = part_path(storage, row)
    final = storage.path_for(row.upload_key)
    try:
        if final.exists():  # an earlier attempt finished (its verify did not complete);
            path.unlink(missing_ok=True)  # a later lock may have left an empty part file
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)  # an empty upload never wrote its part file
        try:
            os.link(path, final)  # create-only and atomic: the object appears complete
        except FileNotFoundError:  # a concurrent completion linked it and removed the
            if final.exists():  # part file between our touch and our link
                return
            raise
        except FileExistsError:  # a concurrent completion may have linked it first:
            try:
                ours = path.stat()
            except FileNotFoundError:  # ...and removed the part file already
                return
            if not os.path.samestat(ours, final.stat()) and ours.st_size:  # or our touch
                raise ObjectExists(row.upload_key) from None  # re-made it empty
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot complete the tus upload {row.upload_key!r}: {exc}"
                           ) from exc


# --- multipart ------------------------------------------------------------------------------

def _tail_key(row: UploadSession, offset: int) -> str:
    return f"{row.upload_key}.tus-tail-{offset}"


def _append_multipart(storage: Storage, row: UploadSession, tmp_dir: Path, offset: int,
                      source: ChunkSource, limit: int, hasher: Any | None,
                      expected: bytes | None, declared: int | None,
                      final_length: int | None) -> Appended:
    state = dict(row.protocol_state or {})
    parts: list[dict[str, Any]] = [dict(p) for p in state.get("parts", [])]
    old_tail: str | None = state.get("tail")
    tail_size = offset - sum(int(p["size"]) for p in parts)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="rindle-tus-", dir=tmp_dir)
    os.close(fd)
    spool = Path(name)
    try:
        if old_tail:
            storage.download(old_tail, spool)
        if spool.stat().st_size != tail_size:
            raise StorageError(f"the buffered tail of tus upload {row.upload_key!r} holds "
                               f"{spool.stat().st_size} bytes, not {tail_size}; start a new "
                               "upload")
        with open(spool, "ab") as out:
            written = _copy(source, out.write, limit, hasher, declared)
        _check_digest(hasher, expected)
        new_offset = offset + written
        total = tail_size + written
        complete = final_length is not None and new_offset == final_length
        result = Appended(written, state, row.multipart_upload_id)
        if old_tail and (written or complete):
            result.garbage.append(old_tail)
        if complete and not parts and result.upload_id is None:
            storage.put(row.upload_key, spool, content_type=row.content_type)
            state.update(stored=True, tail=None)
            result.orphans.append(row.upload_key)
        elif total and (complete or total >= MIN_PART):
            if result.upload_id is None:
                result.upload_id = storage.initiate_multipart(row.upload_key,
                                                              content_type=row.content_type)
                result.opened_upload = True
            number = len(parts) + 1
            etag = storage.upload_part(row.upload_key, result.upload_id, number, spool)
            parts.append({"part_number": number, "etag": etag, "size": total})
            state.update(parts=parts, tail=None)
        elif written:
            key = _tail_key(row, new_offset)
            storage.put(key, spool)
            state.update(tail=key)
            result.orphans.append(key)
        return result
    finally:
        spool.unlink(missing_ok=True)


def _finish_multipart(storage: Storage, row: UploadSession) -> None:
    state = row.protocol_state or {}
    if state.get("stored"):
        return
    parts = state.get("parts", [])
    if not parts or not row.multipart_upload_id:  # an empty upload: nothing was appended
        with tempfile.TemporaryDirectory(prefix="rindle-tus-") as tmp:
            empty = Path(tmp) / "empty"
            empty.touch()
            storage.put(row.upload_key, empty, content_type=row.content_type)
        return
    storage.complete_multipart(row.upload_key, row.multipart_upload_id,
                               [{"part_number": p["part_number"], "etag": p["etag"]}
                                for p in parts])


# --- the entry points -----------------------------------------------------------------------

def append(storage: Storage, row: UploadSession, *, tmp_dir: Path | None, offset: int,
           source: ChunkSource, limit: int, checksum: tuple[str, bytes] | None = None,
           declared: int | None = None) -> Appended:
    """Append ``source`` (at most ``limit`` bytes) to ``row``'s upload at ``offset``.

    ``checksum`` is ``(hashlib algorithm name, expected digest)`` of the bytes of this
    request: a mismatch raises :class:`UploadRejected` ``checksum_mismatch`` and keeps
    nothing; more than ``limit`` bytes raises ``max_bytes_exceeded`` and keeps nothing; a
    body shorter than ``declared`` raises :class:`BodyCut` and keeps nothing. The caller
    commits the returned state with the new offset, then calls :func:`after_commit`.
    ``tmp_dir`` (where a multipart backing spools) may be ``None`` for a local one.
    """
    hasher = hashlib.new(checksum[0]) if checksum else None
    expected = checksum[1] if checksum else None
    if isinstance(storage, LocalStorage):
        return _append_local(storage, row, offset, source, limit, hasher, expected, declared)
    backing_for(storage)
    if tmp_dir is None:
        raise ValueError("a multipart tus backing needs tmp_dir to spool chunks")
    return _append_multipart(storage, row, tmp_dir, offset, source, limit, hasher, expected,
                             declared, row.upload_length)


def after_commit(storage: Storage, appended: Appended) -> None:
    """Delete what the committed append replaced (an older tail); never raises for a
    storage failure (a leftover tail is removed with its session later)."""
    for key in appended.garbage:
        with contextlib.suppress(StorageError):
            storage.delete(key)


def undo(storage: Storage, row: UploadSession, appended: Appended) -> None:
    """Take back an append whose commit failed: its new tail, a multipart upload it
    opened, bytes it appended to a part file. Never raises for a storage failure."""
    with contextlib.suppress(StorageError):
        for key in appended.orphans:
            storage.delete(key)
        if appended.opened_upload and appended.upload_id:
            storage.abort_multipart(row.upload_key, appended.upload_id)
    if appended.rollback is not None:
        appended.rollback()


def finish(storage: Storage, row: UploadSession) -> None:
    """Put the complete upload's object at ``row.upload_key`` (create-only where the
    backend can); the caller then runs the trust gate (verify)."""
    if isinstance(storage, LocalStorage):
        _finish_local(storage, row)
    else:
        _finish_multipart(storage, row)


class StagedUpload(Protocol):
    """What :func:`discard` reads of a session (an :class:`UploadSession`, or a row of
    these columns)."""

    @property
    def id(self) -> uuid.UUID:
        """The session id."""

    @property
    def upload_key(self) -> str:
        """The final object's key."""

    @property
    def multipart_upload_id(self) -> str | None:
        """The multipart upload feeding it, if one was opened."""

    @property
    def protocol_state(self) -> dict[str, Any] | None:
        """The tus state (parts, tail)."""


def drop_part(storage: Storage, row: StagedUpload) -> None:
    """Remove a local upload's part file if there is one (a missing one is success;
    other backings keep no part file). Only for a session that is over."""
    if isinstance(storage, LocalStorage):
        with contextlib.suppress(OSError):
            part_path(storage, row).unlink(missing_ok=True)


def discard(storage: Storage, row: StagedUpload) -> None:
    """Remove everything an unfinished tus upload left: the part file, or the multipart
    upload and its buffered tail, and any object at the upload key. A missing piece is
    success."""
    if isinstance(storage, LocalStorage):
        with contextlib.suppress(FileNotFoundError, StorageError):
            part_path(storage, row).unlink()
    else:
        state = row.protocol_state or {}
        if row.multipart_upload_id:
            with contextlib.suppress(UploadUnsupported):
                storage.abort_multipart(row.upload_key, row.multipart_upload_id)
        if state.get("tail"):
            with contextlib.suppress(ObjectNotFound):
                storage.delete(str(state["tail"]))
    storage.delete(row.upload_key)
