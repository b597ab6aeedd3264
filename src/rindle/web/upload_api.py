"""The upload JSON API: direct uploads from a browser, shaped for Uppy's ``@uppy/aws-s3``.

Mount :func:`wsgi_app` or :func:`asgi_app` (same routes, same answers) with the host's
``authorize`` (see :mod:`rindle.web.auth`). Every request and answer body is JSON; a
request with a body must say ``Content-Type: application/json`` (415 otherwise), which
also keeps plain cross-site form posts out. Routes, relative to the mount:

``POST /uploads``  body ``{"profile", "filename", "content_type", "size", "strategy"?}``
    Opens a session bound to the caller (201). ``strategy`` is ``presigned_put`` or
    ``multipart``; left out, it is ``multipart`` when the storage can and ``size`` is at
    least ``multipart_threshold`` (100 MiB, Uppy's own default), else ``presigned_put``.
    Answer: ``{"id", "uploadId", "key", "strategy", "state", "asset_id", "expires_at"}``;
    ``uploadId`` (the session id) and ``key`` are what Uppy's ``createMultipartUpload``
    must return.
``POST /uploads/{id}/sign``  body optional ``{"expires_in"}``
    A presigned PUT: ``{"method", "url", "fields": {}, "headers", "expires_at"}``, what
    ``getUploadParameters`` must return (send exactly these headers).
``POST /uploads/{id}/parts/{n}``
    One multipart part (``n`` 1..10000): ``{"url", "method", "headers", "expires_at"}``,
    what ``signPart`` must return.
``GET /uploads/{id}/parts``
    The parts stored so far: ``[{"PartNumber", "Size", "ETag"}, ...]``, what
    ``listParts`` must return.
``POST /uploads/{id}/complete``  body ``{"parts": [{"PartNumber", "ETag"}, ...]}``
    Assembles the multipart upload and runs the trust gate (verify):
    ``{"id", "asset_id", "state", "session_state"}`` (``completeMultipartUpload``).
``POST /uploads/{id}/verify``
    The trust gate for a presigned PUT: the same answer as ``complete``. When the API is
    mounted with ``events=<the live progress mount's URL or path>``, both answers also
    carry ``events_url``: that stream for this asset, with a subscribe token valid for
    ``expires_in`` seconds (:mod:`rindle.web.events`).
``DELETE /uploads/{id}``
    Aborts the session and removes what was staged (``abortMultipartUpload``):
    ``{"id", "state": "aborted"}``.
``GET /static/rindle-upload.js``
    rindle's browser module (an ES module driving these routes; :mod:`rindle.web.static`,
    ``guides/browser_uploads.md``), public and cacheable.

Errors are ``{"error": {"code": <rindle code>, "message": ...}}``: a policy refusal 422
(``max_bytes_exceeded`` 413; a refused type or extension 415; ``session_expired`` 410),
an unknown or someone else's session 404, a step out of order (``InvalidTransition``, or
nothing uploaded yet at verify: ``storage_object_missing``) 409, a refused ``authorize``
403 at ``POST /uploads`` (and 404 on a session, which is never confirmed to exist),
malformed JSON 400 ``invalid_json``, a body over ``max_json_bytes`` 413
``request_too_large``, a storage outage 503, another storage failure 502.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rindle.config import EVENTS_TOKEN_TTL_LIMIT
from rindle.delivery.body import BodyIncomplete, BodyTooLarge
from rindle.domain.models import utcnow
from rindle.errors import (
    ConfigError,
    InvalidTransition,
    NotFound,
    ObjectNotFound,
    Rejected,
    RindleError,
    StorageError,
    TransientError,
    UnknownProfile,
    UploadRejected,
    UploadUnsupported,
)
from rindle.storage.base import Capability
from rindle.upload import direct
from rindle.web import static
from rindle.web.auth import Authorize, actor_of, admit, require_authorize
from rindle.web.events import events_url
from rindle.web.http import (
    ASGIApp,
    Refusal,
    Request,
    Response,
    WSGIApp,
    json_error,
    json_response,
)

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.domain.models import Asset, UploadSession

__all__ = [
    "DEFAULT_MAX_JSON_BYTES",
    "DEFAULT_MULTIPART_THRESHOLD",
    "UploadAPI",
    "asgi_app",
    "error_status",
    "public_error",
    "wsgi_app",
]

log = logging.getLogger(__name__)

#: The largest JSON request body (a completion listing 10,000 parts fits).
DEFAULT_MAX_JSON_BYTES = 1024 * 1024
#: Uppy's own default for ``shouldUseMultipart``: files of 100 MiB and more.
DEFAULT_MULTIPART_THRESHOLD = 100 * 1024 * 1024
_API_STRATEGIES = ("presigned_put", "multipart")

_REJECTION_STATUS = {
    "max_bytes_exceeded": 413,
    "mime_not_allowed": 415,
    "extension_not_allowed": 415,
    "extension_mime_mismatch": 415,
    "unknown_mime": 415,
    "session_expired": 410,
    "upload_busy": 423,
}


def error_status(exc: RindleError) -> int:
    """The HTTP status of a rindle error (see the module docstring); a misconfiguration
    (a :class:`ConfigError` such as an ``authorize`` answer that is no actor id) is 500."""
    if isinstance(exc, UnknownProfile):
        return 422
    if isinstance(exc, Rejected):
        return _REJECTION_STATUS.get(exc.code, 422)
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (InvalidTransition, ObjectNotFound)):
        return 409
    if isinstance(exc, TransientError):
        return 503
    if isinstance(exc, StorageError):
        return 502
    if isinstance(exc, UploadUnsupported):
        return 422
    return 500


def public_error(exc: RindleError, request: Request) -> tuple[int, str, str]:
    """``(status, code, message)`` to answer for ``exc``. A 5xx is logged (method, path,
    class and code; never the message, which may name a bucket or key) and answered with
    a generic message; an unknown profile never lists the configured ones."""
    status = error_status(exc)
    if status >= 500:
        log.warning("rindle.web: %s %s failed: %s (%s)", request.method, request.path,
                    type(exc).__name__, exc.code)
        retry = "; try again later" if status in (502, 503) else ""
        return status, exc.code, "the server could not complete the request" + retry
    if isinstance(exc, UnknownProfile):
        return status, exc.code, "no such profile"
    return status, exc.code, exc.message


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class UploadAPI:
    """The handler behind :func:`wsgi_app` and :func:`asgi_app` (``api(request)``)."""

    def __init__(self, app: AppContext, *, authorize: Authorize | None = None,
                 development_only: bool = False, expires_in: int = 3600,
                 multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
                 max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
                 events: str | None = None) -> None:
        self.app = app
        if events is not None and not app.settings.secret_key:
            raise ConfigError("the upload API's events option needs secret_key (it signs "
                              "the subscribe token in events_url)")
        self.events = events.rstrip("/") if events is not None else None
        self.authorize = require_authorize(authorize, development_only, "the upload API")
        if expires_in <= 0 or multipart_threshold < 0 or max_json_bytes <= 0:
            raise ConfigError("the upload API needs expires_in > 0, multipart_threshold >= 0 "
                              "and max_json_bytes > 0")
        self.expires_in = expires_in
        self.multipart_threshold = multipart_threshold
        self.max_json_bytes = max_json_bytes

    # --- plumbing ---------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        """Route ``request``; every failure is a JSON error answer."""
        try:
            return self._route(request)
        except Refusal as refusal:
            return refusal.response()
        except RindleError as exc:
            status, code, message = public_error(exc, request)
            return json_error(status, code, message)

    def _route(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if len(parts) == 2 and parts[0] == "static":
            return static.serve(request, parts[1])
        if not parts or parts[0] != "uploads" or len(parts) > 4:
            raise Refusal(404, "not_found", "no such endpoint")
        if len(parts) == 1:
            self._allow(request, "POST")
            return self._create(request)
        sid = parts[1]
        tail = parts[2:]
        if not tail:
            self._allow(request, "DELETE")
            return self._abort(request, sid)
        if tail == ["sign"]:
            self._allow(request, "POST")
            return self._sign(request, sid)
        if tail == ["parts"]:
            self._allow(request, "GET")
            return self._list_parts(request, sid)
        if len(tail) == 2 and tail[0] == "parts":
            self._allow(request, "POST")
            return self._sign_part(request, sid, tail[1])
        if tail == ["complete"]:
            self._allow(request, "POST")
            return self._complete(request, sid)
        if tail == ["verify"]:
            self._allow(request, "POST")
            return self._verify(request, sid)
        raise Refusal(404, "not_found", "no such endpoint")

    @staticmethod
    def _allow(request: Request, method: str) -> None:
        if request.method != method:
            raise Refusal(405, "method_not_allowed", f"this endpoint takes {method}",
                        [("Allow", method)])

    def _body(self, request: Request) -> dict[str, Any]:
        """The JSON object of the request (``{}`` for an empty body)."""
        body = request.body
        if body.error is not None:
            raise Refusal(body.error[0], "invalid_request", body.error[1])
        if body.length is not None and body.length > self.max_json_bytes:
            raise Refusal(413, "request_too_large",
                        f"the JSON body is over {self.max_json_bytes} bytes")
        body.cap = self.max_json_bytes
        try:
            raw = body.read()
        except BodyTooLarge:
            raise Refusal(413, "request_too_large",
                        f"the JSON body is over {self.max_json_bytes} bytes") from None
        except BodyIncomplete:
            raise Refusal(400, "invalid_request", "the body ended early") from None
        if not raw.strip():
            return {}
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            raise Refusal(415, "unsupported_media_type",
                        "send the body as Content-Type: application/json")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise Refusal(400, "invalid_json", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise Refusal(400, "invalid_json", "the body must be a JSON object")
        return data

    def _session(self, request: Request, sid: str) -> tuple[UploadSession, Asset]:
        """The caller's session, else 404 (missing, another actor's, refused caller)."""
        row, asset = direct.load_strategy(self.app, sid, _API_STRATEGIES)
        profile = self.app.profiles.get(asset.profile)
        actor = actor_of(self.authorize, request.native, profile) if profile else None
        if actor is None or row.actor_id != actor:
            raise NotFound("upload session", sid)
        return row, asset

    # --- endpoints ----------------------------------------------------------------------

    def _create(self, request: Request) -> Response:
        data = self._body(request)
        name = data.get("profile")
        filename = data.get("filename")
        content_type = data.get("content_type")
        size = data.get("size")
        strategy = data.get("strategy")
        if not isinstance(name, str) or not name:
            raise Refusal(422, "invalid_upload", "profile must be a profile name")
        if not isinstance(filename, str) or not filename or len(filename) > 1024:
            raise Refusal(422, "invalid_upload", "filename must be a string of 1 to 1024 "
                                               "characters")
        if content_type is not None and (not isinstance(content_type, str)
                                         or len(content_type) > 255):
            raise Refusal(422, "invalid_upload", "content_type must be a media type string")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size > 2**63 - 1:
            raise Refusal(422, "invalid_upload", "size must be a non-negative integer")
        profile, actor = admit(self.authorize, request.native, self.app.profiles, name,
                               unknown_status=422)
        if strategy is None:
            storage = self.app.storage(profile.storage)
            strategy = ("multipart" if storage.supports(Capability.MULTIPART_UPLOAD)
                        and size >= self.multipart_threshold else "presigned_put")
        if strategy not in _API_STRATEGIES:
            raise Refusal(422, "upload_unsupported",
                        f"strategy must be one of {', '.join(_API_STRATEGIES)}")
        row = direct.initiate(self.app, profile, filename=filename, strategy=strategy,
                              byte_size=size, content_type=content_type,
                              expires_in=self.expires_in, actor_id=actor)
        return json_response(201, {
            "id": str(row.id), "uploadId": str(row.id), "key": row.upload_key,
            "strategy": row.upload_strategy, "state": row.state,
            "asset_id": str(row.asset_id), "expires_at": _iso(row.expires_at)})

    def _sign(self, request: Request, sid: str) -> Response:
        row, _ = self._session(request, sid)
        data = self._body(request)
        expires_in = data.get("expires_in")
        if expires_in is not None and (isinstance(expires_in, bool)
                                       or not isinstance(expires_in, int)
                                       or not 1 <= expires_in <= 7 * 24 * 3600):
            raise Refusal(422, "invalid_upload", "expires_in must be 1..604800 seconds")
        signed = direct.sign(self.app, row.id, expires_in=expires_in)
        return json_response(200, {"method": signed.method, "url": signed.url, "fields": {},
                                   "headers": dict(signed.headers),
                                   "expires_at": _iso(signed.expires_at)})

    def _sign_part(self, request: Request, sid: str, raw: str) -> Response:
        row, _ = self._session(request, sid)
        if not raw.isascii() or not raw.isdigit() or len(raw) > 5 or not 1 <= int(raw) <= 10000:
            raise Refusal(422, "invalid_multipart_parts", "the part number must be 1..10000")
        self._body(request)
        left = (row.expires_at - utcnow()).total_seconds()
        if left <= 0:
            raise UploadRejected("session_expired", "the upload session has expired; start "
                                                    "a new one")
        signed = direct.sign_part(self.app, row.id, int(raw),
                                  expires_in=max(1, math.ceil(left)))
        return json_response(200, {"url": signed.url, "method": signed.method,
                                   "headers": dict(signed.headers),
                                   "expires_at": _iso(signed.expires_at)})

    def _list_parts(self, request: Request, sid: str) -> Response:
        row, asset = self._session(request, sid)
        if row.upload_strategy != "multipart" or not row.multipart_upload_id:
            raise UploadUnsupported("not a multipart session")
        if row.state not in ("initialized", "signed", "uploading"):
            raise InvalidTransition("upload_session", row.state, "uploading",
                                    detail="the multipart upload is closed")
        parts = self.app.storage_for(asset.profile).list_parts(row.upload_key,
                                                               row.multipart_upload_id)
        return json_response(200, [{"PartNumber": p["part_number"], "Size": p["size"],
                                    "ETag": p["etag"]} for p in parts])

    def _complete(self, request: Request, sid: str) -> Response:
        row, _ = self._session(request, sid)
        data = self._body(request)
        raw_parts = data.get("parts")
        if not isinstance(raw_parts, list) or not raw_parts or len(raw_parts) > 10000:
            raise Refusal(422, "invalid_multipart_parts",
                        "parts must be a list of 1 to 10000 {PartNumber, ETag} objects")
        parts: list[dict[str, Any]] = []
        for item in raw_parts:
            if not isinstance(item, Mapping):
                raise Refusal(422, "invalid_multipart_parts", "each part must be an object")
            number = item.get("PartNumber", item.get("part_number"))
            etag = item.get("ETag", item.get("etag"))
            if (isinstance(number, bool) or not isinstance(number, int)
                    or not 1 <= number <= 10000 or not isinstance(etag, str)
                    or not etag or len(etag) > 1024):
                raise Refusal(422, "invalid_multipart_parts",
                            "each part needs PartNumber 1..10000 and an ETag string")
            parts.append({"part_number": number, "etag": etag})
        if len({p["part_number"] for p in parts}) != len(parts):
            raise Refusal(422, "invalid_multipart_parts", "a part number is listed twice")
        asset = direct.complete_multipart(self.app, row.id, parts)
        return self._verified(row, asset)

    def _verify(self, request: Request, sid: str) -> Response:
        row, _ = self._session(request, sid)
        self._body(request)
        return self._verified(row, direct.verify(self.app, row.id))

    def _verified(self, row: UploadSession, asset: Asset) -> Response:
        answer = {"id": str(row.id), "asset_id": str(asset.id), "state": asset.state,
                  "session_state": "completed"}
        if self.events is not None:
            answer["events_url"] = events_url(
                self.app, self.events, [asset.id],
                expires_in=min(self.expires_in, EVENTS_TOKEN_TTL_LIMIT))
        return json_response(200, answer)

    def _abort(self, request: Request, sid: str) -> Response:
        row, _ = self._session(request, sid)
        fresh = direct.abort(self.app, row.id)
        return json_response(200, {"id": str(fresh.id), "state": fresh.state})


def wsgi_app(app: AppContext, *, authorize: Authorize | None = None,
             development_only: bool = False, mount: str = "", **options: Any) -> WSGIApp:
    """The upload API as a WSGI app (routes in the module docstring).

    ``authorize(environ, profile) -> actor | None`` is required unless
    ``development_only=True`` (:class:`ConfigError` otherwise). ``options``:
    ``expires_in`` (session lifetime, 3600 s), ``multipart_threshold``,
    ``max_json_bytes``, ``events`` (where the live progress stream is mounted: adds
    ``events_url`` to the verify answer).
    """
    return WSGIApp(UploadAPI(app, authorize=authorize, development_only=development_only,
                             **options), mount=mount)


def asgi_app(app: AppContext, *, authorize: Authorize | None = None,
             development_only: bool = False, mount: str = "", **options: Any) -> ASGIApp:
    """The upload API as a native ASGI app; ``authorize`` receives the ASGI scope. Same
    routes, answers and options as :func:`wsgi_app`."""
    return ASGIApp(UploadAPI(app, authorize=authorize, development_only=development_only,
                             **options), mount=mount)
