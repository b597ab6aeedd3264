"""The storage protocol every backend implements, and the values it exchanges."""

from __future__ import annotations

import builtins
import datetime as dt
import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from rindle.errors import ConfigError, ObjectNotFound, UploadUnsupported

__all__ = [
    "BackendContext",
    "Capability",
    "ObjectInfo",
    "PresignedRequest",
    "ResumableSession",
    "ResumableStatus",
    "Storage",
]


class Capability:
    """Names of optional storage abilities; flows check them and never silently downgrade."""

    PRESIGNED_PUT = "presigned_put"
    MULTIPART_UPLOAD = "multipart_upload"
    RESUMABLE_UPLOAD = "resumable_upload"
    #: The server can take an upload in appended pieces (the tus server): a local part
    #: file, or a multipart upload fed with :meth:`Storage.upload_part`.
    APPEND_UPLOAD = "append_upload"
    SIGNED_URL = "signed_url"
    HEAD = "head"
    LIST = "list"
    #: :meth:`Storage.list_after` answers from an index, a page of keys per request, in key
    #: order (S3's ``StartAfter``): a range of many folders costs one request per page.
    LIST_AFTER = "list_after"
    LOCAL = "local"


@dataclass(frozen=True)
class ObjectInfo:
    """What a backend knows about one stored object."""

    key: str
    size: int
    content_type: str | None = None
    etag: str | None = None
    last_modified: dt.datetime | None = None


@dataclass(frozen=True)
class ResumableSession:
    """A backend-native resumable upload session (GCS's session URI, say).

    ``session_uri`` is a bearer credential: whoever holds it can upload the object, so it
    never appears in a repr, a log or telemetry.
    """

    session_uri: str
    expires_at: dt.datetime
    region_hint: str | None = None

    def __repr__(self) -> str:
        return (f"ResumableSession(session_uri='[REDACTED]', expires_at={self.expires_at!r}, "
                f"region_hint={self.region_hint!r})")


@dataclass(frozen=True)
class ResumableStatus:
    """How far a resumable session got: bytes the backend committed, and ``in_progress``
    or ``complete``."""

    committed_bytes: int
    state: str


@dataclass(frozen=True)
class PresignedRequest:
    """A request a client can make without credentials: method, URL and required headers."""

    url: str
    method: str = "PUT"
    headers: Mapping[str, str] = field(default_factory=dict)
    expires_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "url": self.url,
            "method": self.method,
            "headers": dict(self.headers),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


@dataclass(frozen=True)
class BackendContext:
    """Application facts a backend may need at construction (never per-call state)."""

    secret_key: str
    tmp_dir: Path
    base_dir: Path


class Storage(ABC):
    """A place objects live. Subclass it and register it with ``register_storage_backends``.

    Contract for every backend:

    * ``head`` and ``download`` raise :class:`rindle.errors.ObjectNotFound` when, and only
      when, the object does not exist; every other failure is a
      :class:`rindle.errors.StorageError` (with ``raise ... from``).
    * ``delete`` is idempotent: deleting a missing object succeeds.
    * Calls are safe from several threads at once.
    """

    #: Names from :class:`Capability` this backend supports.
    capabilities: frozenset[str] = frozenset()
    #: Short backend name shown in reports (``local``, ``s3``).
    backend_name: str = "storage"

    #: What each setting is, for messages about it (``{"bucket": "the S3 bucket name"}``).
    setting_descriptions: Mapping[str, str] = {}

    def __init__(self, *, name: str) -> None:
        self.name = name

    @classmethod
    def required_settings(cls, *, supplied: Iterable[str] = ()) -> builtins.list[str]:
        """The settings ``__init__`` cannot do without: its parameters other than ``self``,
        ``name`` and ``supplied`` (what ``from_settings`` fills in itself) that have no
        default, in declaration order."""
        skip = {"self", "name", *supplied}
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params
                if p.name not in skip and p.default is inspect.Parameter.empty
                and p.kind in (inspect.Parameter.KEYWORD_ONLY,
                               inspect.Parameter.POSITIONAL_OR_KEYWORD)]

    @classmethod
    def check_settings(cls, name: str, settings: Mapping[str, Any], *,
                       supplied: Iterable[str] = (), allowed: Iterable[str] | None = None
                       ) -> None:
        """Raise :class:`ConfigError` unless ``settings`` (a ``[storages.NAME]`` table
        without ``backend``) holds every :meth:`required_settings` key with a value that is
        not ``None`` or empty, and (when ``allowed`` is given) nothing else.

        The message names the table and each missing key with its description from
        :attr:`setting_descriptions`: ``[storages.media] needs 'bucket' (the S3 bucket
        name)``; an unknown key is named with the allowed ones.
        """
        backend = cls.backend_name
        if allowed is not None:
            unknown = sorted(set(settings) - set(allowed))
            if unknown:
                raise ConfigError(
                    f"[storages.{name}]: unknown setting(s) {', '.join(map(repr, unknown))} "
                    f"for the {backend} backend; allowed: {', '.join(sorted(allowed))}")
        missing = [key for key in cls.required_settings(supplied=supplied)
                   if settings.get(key) is None or settings.get(key) == ""]
        if missing:
            needs = " and ".join(
                f"{key!r} ({cls.setting_descriptions[key]})" if key in cls.setting_descriptions
                else repr(key) for key in missing)
            raise ConfigError(f"[storages.{name}] needs {needs}: the {backend} backend "
                              "cannot work without it; add it to that table in rindle.toml")

    @classmethod
    def from_settings(
        cls, name: str, settings: Mapping[str, Any], context: BackendContext
    ) -> Storage:
        """Build an instance from a ``[storages.NAME]`` table (``backend`` removed).

        The default passes the settings as keyword arguments. A missing required setting
        (a constructor parameter without a default) and an unknown key become a
        :class:`ConfigError` naming the table and the key (see :meth:`check_settings`).
        """
        params = inspect.signature(cls.__init__).parameters
        open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        allowed = None if open_ended else [k for k in params if k not in ("self", "name")]
        cls.check_settings(name, settings, allowed=allowed)
        try:
            return cls(name=name, **dict(settings))
        except TypeError as exc:
            raise ConfigError(
                f"[storages.{name}]: invalid settings for the {cls.backend_name} backend "
                f"({cls.__name__}): {exc}"
            ) from exc

    def supports(self, capability: str) -> bool:
        """Whether ``capability`` is among this backend's capabilities."""
        return capability in self.capabilities

    # --- the core operations -----------------------------------------------------------

    @abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Describe the object at ``key``; raises ``ObjectNotFound`` when it is absent."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object at ``key``; a missing object is success."""

    @abstractmethod
    def put(self, key: str, source: Path | BinaryIO, *, content_type: str | None = None
            ) -> ObjectInfo:
        """Store ``source`` (a path or a binary file object) at ``key``, replacing it."""

    @abstractmethod
    def download(self, key: str, dest: Path) -> Path:
        """Copy the object at ``key`` to the local file ``dest``; returns ``dest``."""

    @abstractmethod
    def url(self, key: str, *, expires_in: int | None = None, disposition: str | None = None,
            content_type: str | None = None) -> str:
        """A URL for reading ``key``: signed and expiring when ``expires_in`` is given.

        ``content_type``, when given, is the type the response must carry (the asset's
        sniffed type, never one guessed from the key): backends that can override the
        response's Content-Type in the URL do so.
        """

    def url_until(self, key: str, *, expires_at: int, now: int,
                  disposition: str | None = None, content_type: str | None = None) -> str:
        """A signed URL for reading ``key`` that expires at the Unix time ``expires_at``
        (``now`` is the caller's clock, in Unix seconds).

        Backends whose URL depends only on its claims (rindle's own HMAC tokens) override
        it to sign ``expires_at`` itself, so the same arguments give the byte-identical
        URL. The default signs ``url(key, expires_in=expires_at - now)`` (at least 1 s):
        the expiry lands on ``expires_at``, but a backend that signs the current time
        (S3, GCS V4) still gives a new URL on each call.
        """
        return self.url(key, expires_in=max(1, expires_at - now), disposition=disposition,
                        content_type=content_type)

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, streamed (never all in memory)."""

    def list_after(self, prefix: str, start_after: str, *, limit: int | None = None
                   ) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` and sorts after ``start_after``
        (code-point order, which is UTF-8 byte order), in ascending key order; the first
        ``limit`` of them when ``limit`` is set (at least 1).

        Backends with :attr:`Capability.LIST_AFTER` answer from their index, streamed, and
        ask their service for no more than ``limit`` objects. This default sorts what
        :meth:`list` yields for ``prefix``, so it holds the whole prefix in memory: correct,
        never cheap.
        """
        ordered = sorted((info for info in self.list(prefix) if info.key > start_after),
                         key=lambda info: info.key)
        yield from ordered if limit is None else ordered[:max(1, limit)]

    def exists_many(self, keys: Sequence[str]) -> Sequence[bool | Exception]:
        """For each key, in order: ``True`` if present, ``False`` if gone, or the exception
        that made the answer unknowable (network, auth). Never raises for one key's fault.

        The default asks :meth:`head` once per key; backends with a cheaper presence check
        (a bare ``stat``, a batched listing) override it.
        """
        out: builtins.list[bool | Exception] = []
        for key in keys:
            try:
                self.head(key)
                out.append(True)
            except ObjectNotFound:
                out.append(False)
            except Exception as exc:
                out.append(exc)
        return out

    def delete_many(self, keys: Sequence[str]) -> Sequence[Exception | None]:
        """Remove every key; for each, in order, ``None`` (gone, or never there) or the
        exception that kept it. Never raises for one key's fault.

        The default calls :meth:`delete` per key; backends with a bulk delete (S3's
        ``DeleteObjects``) override it.
        """
        out: builtins.list[Exception | None] = []
        for key in keys:
            try:
                self.delete(key)
                out.append(None)
            except Exception as exc:
                out.append(exc)
        return out

    # --- optional operations (capability-gated) -----------------------------------------

    def presign_put(
        self,
        key: str,
        *,
        expires_in: int,
        content_type: str | None = None,
        max_bytes: int | None = None,
    ) -> PresignedRequest:
        """A request that lets a client PUT the object directly (``presigned_put``)."""
        raise UploadUnsupported(f"storage {self.name!r} cannot presign uploads",
                                code="upload_unsupported")

    def initiate_multipart(self, key: str, *, content_type: str | None = None) -> str:
        """Start a multipart upload and return its upload id (``multipart_upload``)."""
        raise UploadUnsupported(f"storage {self.name!r} has no multipart uploads")

    def presign_part(self, key: str, upload_id: str, part_number: int, *, expires_in: int
                     ) -> PresignedRequest:
        """A request that uploads one part of a multipart upload."""
        raise UploadUnsupported(f"storage {self.name!r} has no multipart uploads")

    def complete_multipart(self, key: str, upload_id: str, parts: Sequence[Mapping[str, Any]]
                           ) -> None:
        """Assemble the uploaded ``parts`` (``part_number``, ``etag``) into the object."""
        raise UploadUnsupported(f"storage {self.name!r} has no multipart uploads")

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Abandon a multipart upload; an unknown upload id is success."""
        raise UploadUnsupported(f"storage {self.name!r} has no multipart uploads")

    def upload_part(self, key: str, upload_id: str, part_number: int, source: Path
                    ) -> str:
        """Upload the file ``source`` as part ``part_number`` of a multipart upload, from
        the server (the tus server's multipart backing); returns the part's ETag. A part
        number uploaded again is replaced."""
        raise UploadUnsupported(f"storage {self.name!r} cannot upload parts itself")

    def list_parts(self, key: str, upload_id: str) -> builtins.list[dict[str, Any]]:
        """The parts a multipart upload holds so far, in part-number order, each as
        ``{"part_number": int, "size": int, "etag": str}``; an unknown upload id raises
        ``ObjectNotFound``."""
        raise UploadUnsupported(f"storage {self.name!r} has no multipart uploads")

    def initiate_resumable_upload(self, key: str, *, content_type: str | None = None,
                                  expected_size: int | None = None, origin: str | None = None
                                  ) -> ResumableSession:
        """Open a resumable session a client can upload ``key`` to (``resumable_upload``);
        ``origin`` is the browser origin the backend should allow (CORS)."""
        raise UploadUnsupported(f"storage {self.name!r} has no resumable uploads")

    def resumable_upload_status(self, key: str, session_uri: str) -> ResumableStatus:
        """How far the session got; a session the backend no longer knows raises
        ``ObjectNotFound``."""
        raise UploadUnsupported(f"storage {self.name!r} has no resumable uploads")

    def verify_resumable_completion(self, key: str, session_uri: str) -> ObjectInfo:
        """The stored object once its session finished; ``ObjectNotFound`` while bytes are
        still missing or nothing was stored."""
        raise UploadUnsupported(f"storage {self.name!r} has no resumable uploads")

    def cancel_resumable_upload(self, key: str, session_uri: str) -> None:
        """Cancel the session; a session already gone is success."""
        raise UploadUnsupported(f"storage {self.name!r} has no resumable uploads")

    def describe(self) -> dict[str, Any]:
        """Non-secret facts for reports (backend, location)."""
        return {"name": self.name, "backend": self.backend_name,
                "capabilities": sorted(self.capabilities)}
