"""The delivery app's request handling, shared by the WSGI and the ASGI servers.

A route handler takes a :class:`Request` (method, path, query, lower-case headers and a
way to open the body) and returns a :class:`Response` (status, headers, and either bytes or
an open file to stream ``length`` bytes from). It is synchronous: it reads the database and
the local storage directly. :mod:`rindle.delivery.wsgi` calls it in the server's thread;
:mod:`rindle.delivery.asgi` calls it in a worker thread and streams the file from there.
The routes and every decision are described in :mod:`rindle.delivery.wsgi`.
"""

from __future__ import annotations

import email.utils
import logging
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast
from urllib.parse import parse_qs, quote

from rindle import defaults
from rindle.delivery.body import BodyIncomplete, BodyTooLarge, RequestBody
from rindle.delivery.disposition import content_disposition, parse_disposition
from rindle.delivery.headers import SECURITY_HEADERS
from rindle.delivery.lookup import Servable, UploadGate, servable, upload_gate
from rindle.delivery.messages import Handler, Request, Response, plain, status_line
from rindle.delivery.ranges import parse_range
from rindle.delivery.webhooks import webhook_handler
from rindle.errors import ConfigError, StorageError
from rindle.media.mime import ACTIVE_CONTENT
from rindle.signing import NEVER, SignedClaims, TokenInvalid, verify
from rindle.storage.local import LocalStorage, ObjectExists

if TYPE_CHECKING:
    from rindle.config import DeliverySettings
    from rindle.context import AppContext
    from rindle.database import Database
    from rindle.delivery.webhooks import WebhookHost

    class DeliveryHost(AppContext, WebhookHost, Protocol):
        """The app as the delivery web app sees it (a :class:`rindle.Rindle` is one)."""

__all__ = ["ALREADY_STORED", "DEFAULT_MAX_PUT_BYTES", "DeliveryCore", "Handler", "Request",
           "Response", "Route", "delivery_core", "plain", "status_line"]

log = logging.getLogger(__name__)

ALLOW = "GET, HEAD, PUT"
IMMUTABLE = "public, max-age=31536000, immutable"
WEBHOOK_PREFIX = "/webhooks"
#: The 412 answer to a PUT whose key already holds an object (create-only).
ALREADY_STORED = ("precondition failed: an object is already stored at this key and is "
                  "never replaced")
#: Types a browser would run as a document: never served inline.
ACTIVE_TYPES = ACTIVE_CONTENT
#: The cap on any presigned PUT body when the app sets none (``[delivery] max_put_bytes``).
DEFAULT_MAX_PUT_BYTES = defaults.DELIVERY_MAX_PUT_BYTES


@dataclass(frozen=True)
class Route:
    """``prefix`` (no trailing slash) serves ``<prefix>/<rest>`` through ``handler``."""

    prefix: str
    handler: Handler
    name: str


class DeliveryCore:
    """Routes a :class:`Request` (its path already stripped of the mount) to a handler."""

    def __init__(self, routes: Iterable[Route], *, mount: str = "") -> None:
        self.routes = sorted(routes, key=lambda r: len(r.prefix), reverse=True)
        self.mount = mount.rstrip("/")

    def strip_mount(self, path: str) -> str | None:
        """``path`` without the mount, or None when it is outside the mount."""
        if not self.mount:
            return path
        if path != self.mount and not path.startswith(self.mount + "/"):
            return None
        return path[len(self.mount):]

    def handle(self, request: Request) -> Response:
        """The answer to ``request`` (404 when no route matches)."""
        path = self.strip_mount(request.path)
        if path is not None:
            for route in self.routes:
                if path.startswith(route.prefix + "/"):
                    return route.handler(request, path[len(route.prefix) + 1:])
        return plain(404, "not found")


def delivery_core(app: DeliveryHost, *, mount: str = "", max_put_bytes: int | None = None
                  ) -> DeliveryCore:
    """The routes for ``app``'s local storages and webhooks (what both servers serve).

    ``max_put_bytes`` defaults to the app's ``[delivery] max_put_bytes``; negative is a
    ValueError; two local storages sharing a URL prefix (or one using ``/webhooks``) is a
    :class:`ConfigError`.
    """
    if max_put_bytes is None:
        max_put_bytes = app.settings.delivery.max_put_bytes  # validated by Settings
    if max_put_bytes < 0:
        raise ValueError(f"max_put_bytes must be >= 0, not {max_put_bytes}")
    routes: dict[str, Route] = {}
    for name, table in app.settings.storages.items():
        if table.get("backend") != "local":
            continue
        storage = app.storage(name)
        if not isinstance(storage, LocalStorage):
            continue
        prefix = storage.url_prefix.rstrip("/")
        if prefix == WEBHOOK_PREFIX:
            raise ConfigError(f"local storage {name!r}: url_prefix {prefix!r} is reserved for "
                              "webhooks; choose another url_prefix")
        if prefix in routes:
            raise ConfigError(
                f"local storages {routes[prefix].name!r} and {name!r} both use url_prefix "
                f"{prefix or '/'!r}; give each local storage its own url_prefix")
        routes[prefix] = Route(prefix, _media_handler(app, storage, max_put_bytes), name)
    if app.settings.delivery.accel_redirect is not None and len(routes) > 1:
        raise ConfigError(
            f"[delivery] accel_redirect hands files to one nginx location, but local storages "
            f"{', '.join(repr(r.name) for r in routes.values())} are served; serve one local "
            "storage per delivery app (one app per storage, each with its accel_redirect)")
    routes[WEBHOOK_PREFIX] = Route(WEBHOOK_PREFIX, webhook_handler(app), "webhooks")
    return DeliveryCore(routes.values(), mount=mount)


# --- helpers ---------------------------------------------------------------------------------

def _etag(st: os.stat_result) -> str:
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison of an ``If-None-Match`` list against ``etag``."""
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _token(query: str) -> str:
    try:
        values = parse_qs(query, max_num_fields=32).get("token", [])
    except ValueError:
        raise TokenInvalid("malformed") from None
    if len(values) != 1:
        raise TokenInvalid("missing_token" if not values else "malformed")
    return values[0]


def _refuse(body: RequestBody | None, code: int, text: str,
            extra: Iterable[tuple[str, str]] = ()) -> Response:
    """Answer ``code`` without storing anything.

    A small declared body (at most :data:`~rindle.delivery.body.DRAIN_SMALL` bytes) is read
    and discarded, so a client still sending sees this answer rather than a reset. A larger,
    chunked or unframed one is never waited for: the answer goes out at once and the server
    closes the connection, so a client that declares 10 GB and sends nothing cannot hold a
    thread.
    """
    if body is not None:
        body.discard()
    return plain(code, text, extra)


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _disposition_header(key: str, claim: str | None) -> str | None:
    """The header for a token's disposition claim, always rebuilt from its parts.

    A claim is a type (``attachment``/``inline``) or a complete value; either way only its
    type and filename are kept, and the filename is sanitised, so a signed value can
    never carry quotes, control characters, non-Latin-1 text or extra parameters.
    """
    if not claim:
        return None
    kind, filename = parse_disposition(claim)
    return content_disposition(key, disposition=kind, filename=filename)


# --- the media handler -----------------------------------------------------------------------

def _media_handler(app: DeliveryHost, storage: LocalStorage, max_put_bytes: int) -> Handler:
    secret = app.settings.secret_key or ""

    def handle(request: Request, rest: str) -> Response:
        method = request.method  # methods are case-sensitive
        if method not in ("GET", "HEAD", "PUT"):
            return plain(405, "method not allowed", [("Allow", ALLOW)])
        body = request.open_body() if method == "PUT" else None
        try:
            key = rest.encode("latin-1").decode("utf-8")  # PEP 3333: bytes-as-latin1
            storage.path_for(key)
        except (UnicodeError, StorageError):
            return _refuse(body, 400, "invalid storage key")
        try:
            claims = verify(secret, _token(request.query), method="PUT" if body else "GET",
                            key=key)
        except TokenInvalid as exc:
            return _refuse(body, 403, f"forbidden: {exc.reason}")
        if body is not None:
            gate = upload_gate(app.db, key)
            if gate.reason == "expired":
                return _refuse(body, 403, "forbidden: expired")
            if not gate.allowed:
                return _refuse(body, 409, f"conflict: the upload session is "
                                          f"{gate.session_state}; start a new upload")
            return _put(request, storage, key, claims, body, max_put_bytes, db=app.db,
                        gate=gate if gate.session_state is not None else None)
        served = servable(app.db, key)
        if served is None:
            return plain(404, "not found")
        return _get(app, request, storage, key, claims, served)

    return handle


def _cache_headers(claims: SignedClaims) -> list[tuple[str, str]]:
    """How long a served object may be cached: a public URL (never expires) for a year,
    immutably; a signed one privately (never by a shared cache), and never past its
    token's expiry (``max-age`` counts down to it, ``Expires`` names it)."""
    if claims.expires == NEVER:
        return [("Cache-Control", IMMUTABLE)]
    return [("Cache-Control", f"private, max-age={max(0, claims.expires - int(time.time()))}"),
            ("Expires", email.utils.formatdate(claims.expires, usegmt=True))]


def _typed_headers(key: str, claims: SignedClaims, served: Servable) -> list[tuple[str, str]]:
    """Content-Type (the recorded one) and Content-Disposition (the token's, rebuilt; always
    ``attachment`` for a type a browser would run as a page on this origin)."""
    content_type = _media_type(served.content_type) or "application/octet-stream"
    headers = [("Content-Type", content_type)]
    disposition = _disposition_header(key, claims.disposition)
    if content_type in ACTIVE_TYPES:
        disposition = content_disposition(key, disposition="attachment")
    if disposition:
        headers.append(("Content-Disposition", disposition))
    return headers


#: Key characters a front server would read differently once percent-decoded (nginx
#: decodes an ``X-Accel-Redirect`` URI, then decodes again and splits at ``?``): such a key
#: is streamed by the app itself, never handed over.
_NOT_HANDED_OVER = frozenset("%?")


def _handoff(delivery: DeliverySettings, key: str, path: Path) -> tuple[str, str] | None:
    """The header that hands the file to the front server, or None to stream it here.

    ``X-Accel-Redirect: <accel_redirect><key>`` and ``X-Sendfile: <file path>``, both
    percent-encoded (``/`` kept). ``key`` already passed :meth:`LocalStorage.path_for`
    (no ``..``, ``.``, empty or absolute segment) and ``path`` resolves inside the root.
    """
    if delivery.accel_redirect is None and not delivery.x_sendfile:
        return None
    if _NOT_HANDED_OVER.intersection(key):
        return None
    if delivery.accel_redirect is not None:
        return ("X-Accel-Redirect", delivery.accel_redirect + quote(key, safe="/"))
    return ("X-Sendfile", quote(str(path), safe="/"))


def _get(app: DeliveryHost, request: Request, storage: LocalStorage, key: str,
         claims: SignedClaims, served: Servable) -> Response:
    path = storage.path_for(key)
    try:
        # A link (anywhere on the path) that leads out of the root is never followed.
        if not path.resolve().is_relative_to(storage.root):
            return plain(404, "not found")
        if not stat.S_ISREG(path.stat().st_mode):
            return plain(404, "not found")
        f = open(path, "rb")  # noqa: SIM115 - closed by the server after the response
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, RuntimeError):
        return plain(404, "not found")
    handoff = _handoff(app.settings.delivery, key, path)
    if handoff is not None:  # the front server sends the bytes (Range and 304 included)
        f.close()
        return Response(200, [*_typed_headers(key, claims, served), *_cache_headers(claims),
                              *SECURITY_HEADERS, handoff, ("Content-Length", "0")])
    st = os.fstat(f.fileno())
    size, etag = st.st_size, _etag(st)
    last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
    headers = [("ETag", etag), ("Last-Modified", last_modified), *_cache_headers(claims),
               ("Accept-Ranges", "bytes"), *SECURITY_HEADERS]
    inm = request.headers.get("if-none-match")
    if inm and _etag_matches(inm, etag):
        f.close()
        return Response(304, headers)
    headers += _typed_headers(key, claims, served)
    if_range = request.headers.get("if-range")
    honour = not if_range or if_range.strip() in (etag, last_modified)
    decision = parse_range(request.headers.get("range") if honour else None, size)
    meta = {"profile": "unknown", "adapter": storage.backend_name, "storage": storage.name}
    if decision.kind == "unsatisfiable":
        f.close()
        return plain(416, "range not satisfiable",
                     [("Content-Range", f"bytes */{size}"), ("Accept-Ranges", "bytes")])
    if decision.reason is not None:
        app.telemetry.emit("rindle.delivery.range_fallback",
                           {"system_time": time.time_ns(), "file_size": size},
                           {**meta, "reason": decision.reason})
    if decision.kind == "partial":
        length = decision.end - decision.start + 1
        headers += [("Content-Range", f"bytes {decision.start}-{decision.end}/{size}"),
                    ("Content-Length", str(length))]
        app.telemetry.emit("rindle.delivery.range_request",
                           {"system_time": time.time_ns(), "offset": decision.start,
                            "length": length, "file_size": size}, meta)
        f.seek(decision.start)
        return Response(206, headers, file=f, length=length)
    headers.append(("Content-Length", str(size)))
    return Response(200, headers, file=f, length=size, whole_file=True)


def _put(request: Request, storage: LocalStorage, key: str, claims: SignedClaims,
         body: RequestBody, max_put_bytes: int, *, db: Database, gate: UploadGate | None
         ) -> Response:
    wanted = claims.content_type
    if wanted and _media_type(request.headers.get("content-type")) != _media_type(wanted):
        return _refuse(body, 415,
                       f"unsupported media type: this upload URL requires Content-Type {wanted}")
    if body.error is not None:
        return _refuse(body, body.error[0], body.error[1])
    caps = [c for c in (claims.max_bytes, max_put_bytes) if c is not None]
    body.cap = min(caps) if caps else None
    if body.cap is not None and body.length is not None and body.length > body.cap:
        return _refuse(body, 413, f"payload too large: at most {body.cap} bytes")
    if storage.path_for(key).exists():  # cheap early answer; put_new is the real guard
        return _refuse(body, 412, ALREADY_STORED)
    try:
        storage.put_new(key, cast(BinaryIO, body))
        etag = _etag(storage.path_for(key).stat())  # what a GET will answer
    except ObjectExists:
        return _refuse(body, 412, ALREADY_STORED)
    except BodyTooLarge:
        return _refuse(body, 413, f"payload too large: at most {body.cap} bytes")
    except BodyIncomplete as exc:
        return plain(400, f"bad request body: {exc}")
    except StorageError as exc:
        log.error("local PUT to storage %r failed: %s", storage.name, exc)
        return plain(500, "could not store the object")
    if gate is not None and not upload_gate(db, key).allowed:
        # The session closed (abort, expiry) while the body was arriving: the object must
        # not outlive it as an untracked orphan.
        storage.delete(key)
        return plain(409, "conflict: the upload session closed while the body was arriving; "
                          "start a new upload")
    return plain(201, "stored", [("ETag", etag)])
