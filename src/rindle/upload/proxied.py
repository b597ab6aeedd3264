"""Proxied upload: bytes pass through the app, are validated, stored, then recorded.

Order matters: validate (nothing stored on rejection), store outside any transaction,
then insert the asset and its promote job in one transaction. If that transaction fails
the stored object is deleted again, so a failed upload leaves nothing behind.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from rindle.domain.models import Asset
from rindle.domain.queries import get_asset
from rindle.errors import UploadRejected, UsageError
from rindle.ids import uuid7
from rindle.jobs.kinds import PROMOTE, promote_unique_key
from rindle.upload.keys import generate_key
from rindle.upload.validation import ValidatedUpload, validate_upload

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.domain.profile import Profile

__all__ = ["UploadSource", "check", "upload"]

#: What a proxied upload reads: a path, the bytes themselves, or a binary file object.
UploadSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO

_CHUNK = 1024 * 1024


def _spool(source: Any, directory: Path, max_bytes: int | None) -> Path:
    """Copy a file object to a temp file, refusing early once it passes ``max_bytes``
    and with :class:`UsageError` (``text_mode_file``) when it yields ``str``."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="upload-", dir=directory)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                if isinstance(chunk, str):
                    raise _text_mode()
                written += len(chunk)
                if max_bytes is not None and written > max_bytes:
                    raise UploadRejected(
                        "max_bytes_exceeded",
                        f"upload is larger than the profile's max_bytes ({max_bytes} bytes)",
                    )
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _text_mode() -> UsageError:
    return UsageError("the upload source is a text-mode file object; open the file in binary "
                      "mode (open(path, \"rb\")) or pass its path", code="text_mode_file")


def _require_filename(filename: str | None, what: str) -> str:
    if not filename:
        raise UsageError(
            f"filename= is required when uploading {what}: rindle checks the file's "
            "extension against its bytes and keeps the name, e.g. "
            "app.upload(profile, data, filename=\"photo.jpg\")", code="filename_required")
    return filename


def upload(app: AppContext, profile: type[Profile] | str, source: UploadSource,
           *, filename: str | None = None) -> Asset:
    """Validate, store and record one upload; returns the new asset (state ``analyzing``).

    ``source`` is a path (``str`` or path-like; ``filename`` defaults to its name), the
    bytes themselves (``bytes``, ``bytearray``, ``memoryview``) or a binary file object
    (anything whose ``read`` returns bytes, read from its current position); for bytes
    and file objects ``filename`` is required. Raises :class:`rindle.errors.UsageError`
    for a source that cannot be read this way: ``filename_required``,
    ``text_mode_file`` (a file opened in text mode), ``source_not_found`` (a path that is
    not a file) or ``invalid_upload_source`` (anything else); then
    :class:`rindle.errors.SchemaOutOfDate` when the database is not migrated; both before
    anything is read or stored.

    Raises :class:`rindle.errors.UploadRejected` (with the reason as ``code``) before
    anything is stored or written when the bytes break the profile's policy.
    """
    prof = app.profile(profile)
    path, stream, name = _readable(source, filename)
    app.db.check_schema_once()  # an unmigrated database fails here, before anything is stored
    with _on_disk(app, prof, path, stream) as local:
        return _store_and_record(app, prof, local, name)


def check(app: AppContext, profile: type[Profile] | str, source: UploadSource,
          *, filename: str | None = None) -> ValidatedUpload:
    """Validate ``source`` as :func:`upload` would, storing and recording nothing; returns
    what the check proved (sniffed type, extension, size, dimensions, sanitised name).

    Raises exactly what :func:`upload` raises for the source and the policy
    (:class:`~rindle.errors.UsageError`, :class:`~rindle.errors.UploadRejected` with
    its reason, counted as ``rindle.upload.rejected``); never touches the database. A
    file object is read from its current position to its end: seek it back before
    uploading it.
    """
    prof = app.profile(profile)
    path, stream, name = _readable(source, filename)
    with _on_disk(app, prof, path, stream) as local:
        return validate_upload(local, filename=name, policy=prof.upload_policy())


def _readable(source: UploadSource, filename: str | None
              ) -> tuple[Path | None, Any, str]:
    """``source`` as a path or a stream to spool, and the filename it is checked with;
    the :class:`UsageError` of :func:`upload` for a source it cannot read."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"cannot upload {str(path)!r}: it is not a file",
                             code="source_not_found")
        return path, None, filename or path.name
    if isinstance(source, (bytes, bytearray, memoryview)):
        return None, io.BytesIO(source), _require_filename(filename, "bytes")
    if callable(getattr(source, "read", None)):
        if isinstance(source, io.TextIOBase):
            raise _text_mode()
        return None, source, _require_filename(filename, "a file object")
    raise UsageError(
        f"cannot upload a {type(source).__name__}: pass a path, bytes, or a binary file "
        "object (open(path, \"rb\"), io.BytesIO, a framework's uploaded file)",
        code="invalid_upload_source")


@contextmanager
def _on_disk(app: AppContext, prof: type[Profile], path: Path | None, stream: Any
             ) -> Iterator[Path]:
    """The upload as a local file (a stream is spooled under the tmp dir, bounded by
    ``max_bytes``, and removed after the block); a rejection is counted as
    ``rindle.upload.rejected``."""
    spooled: Path | None = None
    try:
        if stream is not None:
            spooled = _spool(stream, app.settings.resolved_tmp_dir / "uploads",
                             prof.upload_policy().max_bytes)
        local = spooled if spooled is not None else path
        assert local is not None  # _readable gives a path or a stream
        yield local
    except UploadRejected as exc:
        app.telemetry.emit("rindle.upload.rejected", {"count": 1},
                           {"profile": prof.name, "adapter": "proxied", "code": exc.code})
        raise
    finally:
        if spooled is not None:
            spooled.unlink(missing_ok=True)


def _store_and_record(app: AppContext, prof: type[Profile], path: Path, filename: str) -> Asset:
    """Check, store and record one upload between ``rindle.upload.start`` and its end: the
    ``.stop`` once the row commits, or, when anything raises, ``rindle.upload.exception``
    (``kind`` ``rejected`` with the rejection's code as ``reason``, else ``error`` with the
    exception's type) before the error propagates, or (inside ``app.bind``) ``kind``
    ``rolled_back`` when the host rolls back; so an upload span never outlives its work."""
    app.telemetry.emit("rindle.upload.start", {"system_time": _now_ns()},
                       {"profile": prof.name, "adapter": "proxied"})
    try:
        return _checked_store(app, prof, path, filename)
    except BaseException as exc:
        kind, reason = (("rejected", exc.code) if isinstance(exc, UploadRejected)
                        else ("error", type(exc).__name__))
        app.telemetry.emit("rindle.upload.exception", {"system_time": _now_ns()},
                           {"profile": prof.name, "adapter": "proxied", "kind": kind,
                            "reason": reason})
        raise


def _checked_store(app: AppContext, prof: type[Profile], path: Path, filename: str) -> Asset:
    policy = prof.upload_policy()
    checked = validate_upload(path, filename=filename, policy=policy)
    asset_id = uuid7()
    key = generate_key(prof.name, asset_id, checked.extension)
    storage = app.storage(prof.storage)
    info = storage.put(key, path, content_type=checked.mime)
    try:
        with app.db.transaction() as session:
            asset = Asset(
                id=asset_id,
                state="analyzing",
                storage_key=key,
                profile=prof.name,
                filename=checked.sanitized_filename,
                content_type=checked.mime,
                byte_size=info.size,
                kind="image" if checked.mime.startswith("image/") else _kind_of(checked.mime),
                width=checked.width,
                height=checked.height,
            )
            session.add(asset)
            session.flush()
            app.jobs.enqueue(session, PROMOTE, {"asset_id": str(asset_id)},
                             unique_key=promote_unique_key(asset_id))
    except BaseException:
        storage.delete(key)  # nothing half-done survives a failed insert
        raise

    def rolled_back() -> None:  # a host's rollback (app.bind): nothing of the upload stays
        storage.delete(key)
        app.telemetry.emit("rindle.upload.exception", {"system_time": _now_ns()},
                           {"profile": prof.name, "adapter": "proxied", "kind": "rolled_back",
                            "reason": "host_rolled_back"})

    app.db.if_rolled_back(rolled_back)
    app.db.when_committed(lambda: app.telemetry.emit(
        "rindle.upload.stop", {"system_time": _now_ns(), "bytes": info.size},
        {"profile": prof.name, "adapter": "proxied"}))
    return get_asset(app.db, asset.id)


def _kind_of(mime: str) -> str:
    if mime.startswith("video/"):
        return "video"
    if mime.startswith("audio/"):
        return "audio"
    return "image"


def _now_ns() -> int:
    return time.time_ns()
