"""A tus 1.0.0 server (https://tus.io/protocols/resumable-upload), WSGI and native ASGI.

Extensions: ``creation``, ``creation-defer-length``, ``expiration``, ``termination``,
``checksum`` (``md5``, ``sha1``, ``sha256``) and ``concatenation``. Mount :func:`wsgi_app`
or :func:`asgi_app` with the host's ``authorize`` (:mod:`rindle.web.auth`). Relative to
the mount:

* ``OPTIONS`` (any path): 204 with ``Tus-Version``, ``Tus-Extension``, ``Tus-Max-Size``
  and ``Tus-Checksum-Algorithm``; needs no ``Tus-Resumable`` and no authorization.
* ``POST /``: creation. ``Upload-Length`` (or ``Upload-Defer-Length: 1``), optional
  ``Upload-Metadata`` (``filename``, ``filetype``/``content_type``, ``profile``; the
  mount's ``profile`` when none is sent) and ``Upload-Concat: partial`` or
  ``Upload-Concat: final;<url> <url> ...``. 201 with ``Location`` and ``Upload-Expires``;
  a final concatenation (and an upload of length 0) is complete at once and carries
  ``Rindle-Asset-Id``.
* ``HEAD /<token>``: 200 with ``Upload-Offset``, ``Upload-Length`` or
  ``Upload-Defer-Length: 1``, ``Upload-Metadata``, ``Upload-Concat``, ``Upload-Expires``
  and ``Cache-Control: no-store``.
* ``PATCH /<token>``: ``Content-Type: application/offset+octet-stream`` (else 415), the
  stored ``Upload-Offset`` (else 409), optional ``Upload-Checksum`` and, for a deferred
  length, ``Upload-Length``. 204 with the new ``Upload-Offset``; the chunk that completes
  an upload also runs the trust gate (verify) and the answer carries ``Rindle-Asset-Id``.
* ``DELETE /<token>``: termination, 204; the bytes are removed. 423 while a final
  concatenation or a chunk being written (another writer holding the upload's lock) is
  using the upload.

A ``POST`` with ``X-HTTP-Method-Override: PATCH`` (or ``DELETE``, ``HEAD``) is that
request, for clients that cannot send those methods (tus-js-client's
``overridePatchMethod``). Every request but ``OPTIONS`` must carry ``Tus-Resumable:
1.0.0`` (412 with ``Tus-Version`` otherwise). Statuses: 400 malformed or contradictory
headers (an unsupported checksum algorithm too), 403 refused by ``authorize`` at
creation and PATCH to a final upload or a finished one, 404 unknown, tampered,
terminated or another actor's URL, 409 wrong offset, 410 expired, 413 over ``Tus-Max-
Size`` or the declared length, 415 wrong PATCH content type, 423 another request is
writing the same upload, 460 checksum mismatch. Error bodies are ``{"error": {"code",
"message"}}``.

The ``<token>`` of an upload URL is the session id and a MAC over it and the actor
(HMAC-SHA256 with the app's ``secret_key``), so a URL is useless to another actor and
cannot be guessed from a session id. A chunk whose request fails (checksum, size, cut
body) is not kept: the client asks ``HEAD`` and resumes from the stored offset, on this
process or any other on the same database and storage.

On local storage the upload's part file holds its offset (its size; ``HEAD`` reports
it, counting the bytes of a chunk still being written: a PATCH at that offset is 423
until that chunk ends, and 409 if the chunk then failed and took its bytes back), so a
middle chunk writes no database row, and between the PATCHes of an upload in
progress (known length) a server keeps the session as its last PATCH left it (at most
:data:`MAX_SNAPSHOTS`): a middle chunk then runs no database statement at all. The copy
is checked under the upload's lock before any byte is read (the part file must still be
at its path and hold exactly the offset; otherwise the session is read and the request
tried again), and whatever ends a session removes its part file under that same lock, so
a copy another process made stale never stores a byte. Other backings commit every
chunk's offset with an UPDATE guarded on offset and state. ``HEAD`` and ``DELETE`` always
read the session.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import hashlib
import hmac
import re
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rindle.clock import Clock, system_clock
from rindle.delivery.body import BodyIncomplete
from rindle.errors import ConfigError, NotFound, RindleError, UploadRejected
from rindle.upload import tus, tus_backing
from rindle.upload.tus_backing import BodyCut
from rindle.web.auth import Authorize, actor_of, admit, require_authorize
from rindle.web.http import ASGIApp, Refusal, Request, Response, WSGIApp, json_error
from rindle.web.upload_api import public_error

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.domain.models import UploadSession

__all__ = [
    "CHECKSUM_ALGORITHMS",
    "EXTENSIONS",
    "MAX_METADATA_BYTES",
    "TUS_VERSION",
    "TusServer",
    "asgi_app",
    "wsgi_app",
]

TUS_VERSION = "1.0.0"
EXTENSIONS = ("creation", "creation-defer-length", "expiration", "termination", "checksum",
              "concatenation")
#: ``Upload-Checksum`` algorithm name -> hashlib name.
CHECKSUM_ALGORITHMS = {"md5": "md5", "sha1": "sha1", "sha256": "sha256"}
#: The longest ``Upload-Metadata`` header accepted.
MAX_METADATA_BYTES = 4096
#: The most partial uploads one final concatenation may name.
MAX_PARTIALS = 100
_MAX_CONCAT_BYTES = 16 * 1024
_DIGITS = re.compile(r"[0-9]{1,19}")
_MAX_INT = 2 ** 63 - 1
_BLANKS = " \t"  # HTTP's optional whitespace
_METADATA_KEY = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_TOKEN = re.compile(r"([0-9a-f]{32})\.([0-9a-f]{32})")
_EXPOSE = ("Location, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires, "
           "Upload-Concat, Upload-Defer-Length, Tus-Resumable, Tus-Version, Tus-Extension, "
           "Tus-Max-Size, Tus-Checksum-Algorithm, Rindle-Asset-Id")
#: Uploads whose session a server keeps between PATCHes (the most at once; the oldest goes).
MAX_SNAPSHOTS = 1024
_STATUS = {"offset_mismatch": 409, "checksum_mismatch": 460, "max_bytes_exceeded": 413,
           "session_expired": 410, "upload_busy": 423, "invalid_upload_length": 400,
           "upload_finished": 403, "invalid_concat": 400}


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name.lower())
    if raw is None:
        return None
    raw = raw.strip()
    if not _DIGITS.fullmatch(raw) or int(raw) > _MAX_INT:
        raise Refusal(400, "invalid_header", f"{name} must be a non-negative integer below 2^63")
    return int(raw)


def parse_metadata(raw: str | None) -> dict[str, bytes]:
    """``Upload-Metadata`` as ``key -> decoded value``; 400 when it is over
    :data:`MAX_METADATA_BYTES`, a key is malformed or repeated, or a value is not base64.
    Only spaces and tabs may surround a pair (the raw header is stored and echoed on HEAD:
    Python's other whitespace, NEL or NBSP or C0 separators, is refused like any junk)."""
    if raw is None or not raw.strip(_BLANKS):
        return {}
    if len(raw) > MAX_METADATA_BYTES:
        raise Refusal(400, "invalid_metadata", f"Upload-Metadata is over {MAX_METADATA_BYTES} "
                                             "bytes")
    out: dict[str, bytes] = {}
    for pair in raw.split(","):
        bits = pair.strip(_BLANKS).split(" ")
        if len(bits) > 2 or not _METADATA_KEY.fullmatch(bits[0]) or bits[0] in out:
            raise Refusal(400, "invalid_metadata", "Upload-Metadata must be comma-separated "
                                                 "'key base64value' pairs with unique keys")
        try:
            out[bits[0]] = base64.b64decode(bits[1], validate=True) if len(bits) == 2 else b""
        except (binascii.Error, ValueError):
            raise Refusal(400, "invalid_metadata",
                        f"the Upload-Metadata value of {bits[0]!r} is not base64") from None
    return out


def _text(meta: Mapping[str, bytes], *keys: str, limit: int = 1024) -> str | None:
    for key in keys:
        if key in meta:
            try:
                value = meta[key].decode("utf-8")
            except UnicodeDecodeError:
                raise Refusal(400, "invalid_metadata", f"the {key!r} metadata is not UTF-8"
                            ) from None
            if len(value) > limit or "\x00" in value:
                raise Refusal(400, "invalid_metadata", f"the {key!r} metadata is too long or "
                                                     "holds NUL")
            return value or None
    return None


def _http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(dt.UTC), usegmt=True)


class TusServer:
    """The handler behind :func:`wsgi_app` and :func:`asgi_app` (``server(request)``)."""

    def __init__(self, app: AppContext, *, authorize: Authorize | None = None,
                 development_only: bool = False, profile: str | None = None,
                 expires_in: int = 24 * 3600, max_size: int = tus.DEFAULT_MAX_SIZE,
                 clock: Clock = system_clock) -> None:
        self.app = app
        self.authorize = require_authorize(authorize, development_only, "the tus server")
        if profile is not None:
            app.profile(profile)  # an unknown default profile fails at mount
        if expires_in <= 0 or max_size <= 0:
            raise ConfigError("the tus server needs expires_in > 0 and max_size > 0")
        secret = app.settings.secret_key
        if not secret:
            raise ConfigError("the tus server needs secret_key to sign upload URLs; set "
                              "secret_key in rindle.toml or RINDLE_SECRET_KEY")
        self._secret = secret.encode("utf-8")
        self.profile = profile
        self.expires_in = expires_in
        self.max_size = max_size
        self.clock = clock
        # Sessions as this process's last PATCH left them (local uploads of known length,
        # in progress), so the next middle chunk runs one statement: its offset UPDATE.
        self._snapshots: dict[uuid.UUID, tuple[UploadSession, str]] = {}
        self._snapshots_lock = threading.Lock()

    # --- tokens ---------------------------------------------------------------------------

    def _mac(self, sid: uuid.UUID, actor: str) -> str:
        message = b"rindle-tus\x00" + sid.bytes + b"\x00" + actor.encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def token(self, sid: uuid.UUID, actor: str) -> str:
        """The last path segment of ``actor``'s URL of session ``sid``."""
        return f"{sid.hex}.{self._mac(sid, actor)}"

    def _url(self, request: Request, sid: uuid.UUID, actor: str) -> str:
        return f"{request.base_url}/{self.token(sid, actor)}"

    # --- plumbing ---------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        """Answer one tus request; every refusal carries its tus status."""
        try:
            response = self._route(request)
        except Refusal as refusal:
            response = refusal.response()
        except (BodyCut, BodyIncomplete) as exc:  # nothing of this chunk was kept
            response = json_error(400, "body_incomplete", str(exc))
        except RindleError as exc:
            status, code, message = public_error(exc, request)
            response = json_error(_STATUS.get(exc.code, status), code, message)
        response.headers.extend([("Tus-Resumable", TUS_VERSION),
                                 ("Access-Control-Expose-Headers", _EXPOSE)])
        if response.status == 412:
            response.headers.append(("Tus-Version", TUS_VERSION))
        return response

    def _route(self, request: Request) -> Response:
        override = request.headers.get("x-http-method-override", "").strip().upper()
        if request.method == "POST" and override in ("PATCH", "DELETE", "HEAD"):
            request.method = override  # for clients that can only send GET and POST
        if request.method == "OPTIONS":
            return self._options()
        if request.headers.get("tus-resumable", "").strip() != TUS_VERSION:
            raise Refusal(412, "unsupported_version", f"send Tus-Resumable: {TUS_VERSION}")
        path = request.path.strip("/")
        if not path:
            if request.method != "POST":
                raise Refusal(405, "method_not_allowed", "create uploads with POST")
            return self._create(request)
        if "/" in path:
            raise Refusal(404, "not_found", "no such upload")
        if request.method == "HEAD":
            return self._head(request, path)
        if request.method == "PATCH":
            return self._patch(request, path)
        if request.method == "DELETE":
            return self._delete(request, path)
        raise Refusal(405, "method_not_allowed", "uploads take HEAD, PATCH and DELETE")

    def _options(self) -> Response:
        return Response(204, [("Tus-Version", TUS_VERSION),
                              ("Tus-Extension", ",".join(EXTENSIONS)),
                              ("Tus-Max-Size", str(self.max_size)),
                              ("Tus-Checksum-Algorithm", ",".join(CHECKSUM_ALGORITHMS))])

    def _snapshot(self, token: str, offset: int) -> tuple[UploadSession, str] | None:
        """The kept session of ``token``'s upload, taken out (one request uses it), when
        it is at ``offset``; ``None`` otherwise."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        with self._snapshots_lock:
            kept = self._snapshots.pop(uuid.UUID(hex=match.group(1)), None)
        return kept if kept is not None and kept[0].last_known_offset == offset else None

    def _keep(self, row: UploadSession, profile: str) -> None:
        """Keep ``row`` for the next PATCH of its upload: only an upload in progress, of
        known length, in a local part file (whose presence and size the next request
        checks under its lock before trusting the copy)."""
        if (row.state != "uploading" or row.upload_length is None
                or tus_backing.backing_for(self.app.storage_for(profile)) != "local"):
            return
        with self._snapshots_lock:
            if len(self._snapshots) >= MAX_SNAPSHOTS:
                self._snapshots.pop(next(iter(self._snapshots)))
            self._snapshots[row.id] = (row, profile)

    def _owned(self, request: Request, token: str,
               kept: tuple[UploadSession, str] | None = None
               ) -> tuple[UploadSession, str, str]:
        """The session behind ``token`` (``kept``, a snapshot of it, or read now) with the
        caller's actor and its asset's profile name; 404 for a malformed or tampered
        token, another actor's, or a terminated upload."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise Refusal(404, "not_found", "no such upload")
        sid = uuid.UUID(hex=match.group(1))
        try:
            row, profile_name = (kept if kept is not None and kept[0].id == sid
                                 else tus.load_request(self.app, sid))
        except NotFound:
            raise Refusal(404, "not_found", "no such upload") from None
        profile = self.app.profiles.get(profile_name)
        actor = actor_of(self.authorize, request.native, profile) if profile else None
        if (actor is None or not hmac.compare_digest(match.group(2), self._mac(sid, actor))
                or row.actor_id != actor or row.state == "aborted"):
            raise Refusal(404, "not_found", "no such upload")
        return row, actor, profile_name

    def _no_body(self, request: Request) -> None:
        body = request.body
        if body.error is not None:
            raise Refusal(body.error[0], "invalid_request", body.error[1])
        if (body.length or 0) > 0:
            raise Refusal(400, "invalid_request", "this request takes no body (creation with "
                                                "upload is not offered)")

    def _expires(self, row: UploadSession) -> tuple[str, str]:
        return ("Upload-Expires", _http_date(row.expires_at))

    def _asset_header(self, asset_id: Any) -> list[tuple[str, str]]:
        return [("Rindle-Asset-Id", str(asset_id))] if asset_id is not None else []

    # --- creation ---------------------------------------------------------------------

    def _create(self, request: Request) -> Response:
        self._no_body(request)
        headers = request.headers
        concat_raw = headers.get("upload-concat")
        length = _int_header(headers, "Upload-Length")
        defer = headers.get("upload-defer-length")
        if defer is not None and defer.strip() != "1":
            raise Refusal(400, "invalid_header", "Upload-Defer-Length must be 1")
        meta_raw = headers.get("upload-metadata")
        meta = parse_metadata(meta_raw)
        name = _text(meta, "profile", limit=255) or self.profile
        if name is None:
            raise Refusal(400, "invalid_metadata", "say which profile: the 'profile' metadata")
        profile, actor = admit(self.authorize, request.native, self.app.profiles, name,
                               unknown_status=400)
        filename = _text(meta, "filename", "name")
        content_type = _text(meta, "filetype", "content_type", "type", limit=255)
        now = self.clock()
        if concat_raw is not None and concat_raw.strip().startswith("final;"):
            if length is not None or defer is not None:
                raise Refusal(400, "invalid_header", "a final upload takes no Upload-Length")
            ids = self._partials(request, concat_raw, actor)
            row, asset = tus.concatenate(
                self.app, profile, actor_id=actor, partial_ids=ids, filename=filename,
                content_type=content_type, metadata=meta_raw, expires_in=self.expires_in,
                now=now, server_max=self.max_size)
            return Response(201, [("Location", self._url(request, row.id, actor)),
                                  self._expires(row), *self._asset_header(asset.id)])
        if concat_raw is not None and concat_raw.strip() != "partial":
            raise Refusal(400, "invalid_header", "Upload-Concat must be 'partial' or "
                                               "'final;<urls>'")
        if (length is None) == (defer is None):
            raise Refusal(400, "invalid_header",
                        "send exactly one of Upload-Length and Upload-Defer-Length: 1")
        row = tus.create(self.app, profile, actor_id=actor, filename=filename,
                         content_type=content_type, length=length, metadata=meta_raw,
                         concat="partial" if concat_raw is not None else None,
                         expires_in=self.expires_in, now=now, server_max=self.max_size)
        asset_id = None
        if row.upload_length == 0 and concat_raw is None:
            done = tus.complete_if_empty(self.app, row)
            asset_id = done.id if done is not None else None
        return Response(201, [("Location", self._url(request, row.id, actor)),
                              self._expires(row), *self._asset_header(asset_id)])

    def _partials(self, request: Request, raw: str, actor: str) -> list[str]:
        if len(raw) > _MAX_CONCAT_BYTES:
            raise Refusal(400, "invalid_concat", "Upload-Concat is too long")
        urls = raw.strip()[len("final;"):].split()
        if not urls or len(urls) > MAX_PARTIALS:
            raise Refusal(400, "invalid_concat",
                        f"name 1 to {MAX_PARTIALS} partial upload URLs")
        ids: list[str] = []
        for url in urls:
            token = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
            row, owner, _ = self._owned(request, token)
            if owner != actor:  # pragma: no cover - _owned already checks
                raise Refusal(404, "not_found", "no such upload")
            ids.append(str(row.id))
        return ids

    # --- an upload ----------------------------------------------------------------------

    def _check_live(self, row: UploadSession) -> None:
        if row.state == "expired" or (row.state in ("initialized", "signed", "uploading")
                                      and row.expires_at <= self.clock()):
            raise Refusal(410, "session_expired", "this upload expired; start a new one")

    def _head(self, request: Request, token: str) -> Response:
        row, actor, profile = self._owned(request, token)
        self._check_live(row)
        state = tus.metadata_of(row)
        headers = [("Upload-Offset", str(tus.current_offset(self.app, row, profile))),
                   self._expires(row)]
        if row.upload_length is None:
            headers.append(("Upload-Defer-Length", "1"))
        else:
            headers.append(("Upload-Length", str(row.upload_length)))
        if state.get("metadata"):
            headers.append(("Upload-Metadata", str(state["metadata"])))
        if state.get("concat") == "partial":
            headers.append(("Upload-Concat", "partial"))
        elif state.get("concat") == "final":
            urls = " ".join(self._url(request, uuid.UUID(p), actor)
                            for p in state.get("partials", []))
            headers.append(("Upload-Concat", f"final;{urls}"))
        if row.state == "completed":
            headers.extend(self._asset_header(row.asset_id))
        return Response(200, headers)

    def _patch(self, request: Request, token: str) -> Response:
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/offset+octet-stream":
            raise Refusal(415, "unsupported_media_type",
                        "PATCH needs Content-Type: application/offset+octet-stream")
        offset = _int_header(request.headers, "Upload-Offset")
        if offset is None:
            raise Refusal(400, "invalid_header", "PATCH needs Upload-Offset")
        length = _int_header(request.headers, "Upload-Length")
        checksum = self._checksum(request.headers.get("upload-checksum"))
        body = request.body
        if body.error is not None:
            raise Refusal(body.error[0], "invalid_request", body.error[1])
        kept = self._snapshot(token, offset) if length is None else None
        row, actor, profile = self._owned(request, token, kept)
        self._check_live(row)
        chunk = tus.Chunk(body, declared=body.length, checksum=checksum, length=length)
        try:
            fresh, asset = tus.append_chunk(self.app, row.id, actor_id=actor, offset=offset,
                                            chunk=chunk, now=self.clock(),
                                            server_max=self.max_size, loaded=(row, profile),
                                            snapshot=kept is not None)
        except UploadRejected as exc:
            # a stale snapshot is found out under the lock, before any byte is read:
            # read the session and try once more
            if kept is None or exc.code != "offset_mismatch" or body.received:
                raise
            row, actor, profile = self._owned(request, token)
            self._check_live(row)
            fresh, asset = tus.append_chunk(self.app, row.id, actor_id=actor, offset=offset,
                                            chunk=chunk, now=self.clock(),
                                            server_max=self.max_size, loaded=(row, profile))
        self._keep(fresh, profile)
        return Response(204, [("Upload-Offset", str(fresh.last_known_offset)),
                              self._expires(fresh),
                              *self._asset_header(asset.id if asset else None)])

    @staticmethod
    def _checksum(raw: str | None) -> tuple[str, bytes] | None:
        if raw is None:
            return None
        bits = raw.strip().split(" ")
        if len(bits) != 2:
            raise Refusal(400, "invalid_checksum", "Upload-Checksum is '<algorithm> <base64>'")
        algorithm = CHECKSUM_ALGORITHMS.get(bits[0].lower())
        if algorithm is None:
            raise Refusal(400, "checksum_unsupported",
                        f"supported checksum algorithms: {', '.join(CHECKSUM_ALGORITHMS)}")
        try:
            digest = base64.b64decode(bits[1], validate=True)
        except (binascii.Error, ValueError):
            raise Refusal(400, "invalid_checksum", "the Upload-Checksum value is not base64"
                        ) from None
        if len(digest) != hashlib.new(algorithm).digest_size:
            raise Refusal(400, "invalid_checksum",
                        f"a {bits[0]} digest is {hashlib.new(algorithm).digest_size} bytes")
        return algorithm, digest

    def _delete(self, request: Request, token: str) -> Response:
        self._no_body(request)
        row, actor, _ = self._owned(request, token)
        with self._snapshots_lock:
            self._snapshots.pop(row.id, None)
        tus.terminate(self.app, row.id, actor_id=actor, now=self.clock())
        return Response(204)


def wsgi_app(app: AppContext, *, authorize: Authorize | None = None,
             development_only: bool = False, mount: str = "", **options: Any) -> WSGIApp:
    """The tus server as a WSGI app (see the module docstring).

    ``authorize(environ, profile) -> actor | None`` is required unless
    ``development_only=True`` (:class:`ConfigError` otherwise). ``options``: ``profile``
    (used when an upload names none), ``expires_in`` (upload lifetime, 24 h),
    ``max_size`` (``Tus-Max-Size``; a profile's ``max_bytes`` caps it further) and
    ``clock`` (a :mod:`rindle.clock` clock, for expiry).
    """
    return WSGIApp(TusServer(app, authorize=authorize, development_only=development_only,
                             **options), mount=mount)


def asgi_app(app: AppContext, *, authorize: Authorize | None = None,
             development_only: bool = False, mount: str = "", **options: Any) -> ASGIApp:
    """The tus server as a native ASGI app; ``authorize`` receives the ASGI scope. Same
    protocol and options as :func:`wsgi_app`."""
    return ASGIApp(TusServer(app, authorize=authorize, development_only=development_only,
                             **options), mount=mount)
