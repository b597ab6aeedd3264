"""The embedded delivery web app: signed GETs and presigned PUTs of local-storage objects.

:func:`wsgi_app` returns a plain PEP 3333 callable (no web framework), so it runs under
``rindle serve`` or mounted in Django, Flask or any WSGI server. Routes, matched on
``PATH_INFO`` (after ``mount`` is stripped), longest prefix first:

* ``<url_prefix>/<key>`` for each storage of backend ``local`` (default prefix ``/media``;
  two local storages need two prefixes): ``GET``/``HEAD``/``PUT``, anything else is 405;
* ``/webhooks/<provider>``: provider webhooks, ``POST`` only
  (:mod:`rindle.delivery.webhooks`; 404 for a provider with no ``[streaming.NAME]``);
* anything else: 404.

Decisions: a bad, tampered or wrong-request token is 403 ``forbidden: <reason>``; an
expired one is 403 ``forbidden: expired``; a key that could leave the storage root is 400.
``Range``: one range -> 206, unsatisfiable -> 416, several or malformed -> 200 full body.

A valid token is necessary, not sufficient (:mod:`rindle.delivery.lookup`):

* ``GET``/``HEAD`` serve only the original of an asset that passed promotion, or one of its
  variants; anything else is 404, including keys of staged and quarantined assets and URLs
  signed before an asset was quarantined. ``Content-Type`` is the type recorded for the row
  (sniffed from the bytes at promotion), never guessed from the key. ``text/html``,
  ``application/xhtml+xml`` and ``image/svg+xml`` always go out as ``attachment``.
* ``PUT`` is create-only: 201 when created, 412 when an object is already at the key (a
  checked original is never replaced). When an upload session names the key it must still
  be ``signed``/``uploading`` and unexpired, else 409 (``session_closed``) or 403
  (``expired``). Its body is capped at the smallest of the token's ``max_bytes``, the
  app's ``max_put_bytes`` and :data:`DEFAULT_MAX_PUT_BYTES` unless the app sets its own
  (413, never a partial object); a ``Content-Type`` other than the token's is 415; a body
  with neither ``Content-Length`` nor chunked framing is 411; a body cut short is 400.
* A refused request whose body is larger than :data:`DRAIN_SMALL` is answered at once;
  its body is never waited for.

Every response carries ``Content-Security-Policy: default-src 'none'; sandbox``,
``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``
(:data:`SECURITY_HEADERS`).
"""

from __future__ import annotations

import email.utils
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import IO, TYPE_CHECKING, BinaryIO, Protocol, cast
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

from rindle import defaults
from rindle.delivery.body import (
    BLOCK_SIZE,
    DRAIN_SMALL,
    BodyIncomplete,
    BodyTooLarge,
    RequestBody,
)
from rindle.delivery.disposition import content_disposition, parse_disposition
from rindle.delivery.headers import SECURITY_HEADERS
from rindle.delivery.lookup import Servable, UploadGate, servable, upload_gate
from rindle.delivery.ranges import ByteRangeDecision, parse_range
from rindle.delivery.webhooks import webhook_handler
from rindle.errors import ConfigError, StorageError
from rindle.media.mime import ACTIVE_CONTENT
from rindle.signing import NEVER, SignedClaims, TokenInvalid, verify
from rindle.storage.local import LocalStorage, ObjectExists

if TYPE_CHECKING:
    from rindle.context import AppContext
    from rindle.database import Database
    from rindle.delivery.webhooks import WebhookHost

    class DeliveryHost(AppContext, WebhookHost, Protocol):
        """The app as the delivery web app sees it (a :class:`rindle.Rindle` is one)."""

__all__ = [
    "DEFAULT_MAX_PUT_BYTES",
    "DRAIN_SMALL",
    "SECURITY_HEADERS",
    "BodyIncomplete",
    "BodyTooLarge",
    "ByteRangeDecision",
    "DeliveryApp",
    "RequestBody",
    "Route",
    "parse_range",
    "wsgi_app",
]

log = logging.getLogger(__name__)

Handler = Callable[[WSGIEnvironment, StartResponse, str], Iterable[bytes]]

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


class DeliveryApp:
    """The WSGI callable :func:`wsgi_app` returns; ``routes`` lists what it serves."""

    def __init__(self, routes: Iterable[Route], *, mount: str = "") -> None:
        self.routes = sorted(routes, key=lambda r: len(r.prefix), reverse=True)
        self.mount = mount.rstrip("/")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if self.mount:
            if path != self.mount and not path.startswith(self.mount + "/"):
                return _plain(environ, start_response, 404, "not found")
            path = path[len(self.mount):]
        for route in self.routes:
            if path.startswith(route.prefix + "/"):
                return route.handler(environ, start_response, path[len(route.prefix) + 1:])
        return _plain(environ, start_response, 404, "not found")


def wsgi_app(app: DeliveryHost, *, mount: str = "", max_put_bytes: int | None = None
             ) -> DeliveryApp:
    """The delivery app for ``app``'s local storages (see the module docstring for routes).

    ``mount`` is a path prefix that every request's ``PATH_INFO`` carries and that is
    stripped before routing (for hosts that do not set ``SCRIPT_NAME``); ``max_put_bytes``
    caps every presigned PUT on top of the token's own cap (default: the app's
    ``[delivery] max_put_bytes``, else :data:`DEFAULT_MAX_PUT_BYTES`, 5 GiB). Raises
    :class:`ConfigError` when two local storages share a URL prefix (tokens bind keys, not
    storages).
    """
    if max_put_bytes is None:
        max_put_bytes = _configured_max_put_bytes(app)
    if max_put_bytes < 0:
        raise ValueError(f"max_put_bytes must be >= 0, not {max_put_bytes}")
    return DeliveryApp(_routes(app, max_put_bytes), mount=mount)


def _configured_max_put_bytes(app: DeliveryHost) -> int:
    return app.settings.delivery.max_put_bytes  # validated by Settings


def _routes(app: DeliveryHost, max_put_bytes: int) -> list[Route]:
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
    routes[WEBHOOK_PREFIX] = Route(WEBHOOK_PREFIX, webhook_handler(app), "webhooks")
    return list(routes.values())


# --- responses -------------------------------------------------------------------------------

def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def _plain(environ: WSGIEnvironment, start_response: StartResponse, code: int, text: str,
           extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    body = (text + "\n").encode("utf-8")
    start_response(_status(code), [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        *SECURITY_HEADERS,
        *extra,
    ])
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


class _FileSlice:
    """Yields ``length`` bytes of an open file from its current position, then closes it."""

    def __init__(self, f: IO[bytes], length: int) -> None:
        self._f = f
        self._length = length

    def __iter__(self) -> Iterator[bytes]:
        left = self._length
        while left > 0:
            data = self._f.read(min(BLOCK_SIZE, left))
            if not data:
                return
            left -= len(data)
            yield data

    def close(self) -> None:
        self._f.close()


def _etag(st: os.stat_result) -> str:
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison of an ``If-None-Match`` list against ``etag``."""
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


# --- the media handler -----------------------------------------------------------------------

def _media_handler(app: DeliveryHost, storage: LocalStorage, max_put_bytes: int) -> Handler:
    secret = app.settings.secret_key or ""

    def handle(environ: WSGIEnvironment, start_response: StartResponse, rest: str
               ) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET"))  # methods are case-sensitive
        if method not in ("GET", "HEAD", "PUT"):
            return _plain(environ, start_response, 405, "method not allowed",
                          [("Allow", ALLOW)])
        body = RequestBody.from_environ(environ) if method == "PUT" else None
        try:
            key = rest.encode("latin-1").decode("utf-8")  # PEP 3333: PATH_INFO is bytes-as-latin1
            storage.path_for(key)
        except (UnicodeError, StorageError):
            return _refuse(environ, start_response, body, 400, "invalid storage key")
        try:
            claims = verify(secret, _token(environ), method="PUT" if body else "GET", key=key)
        except TokenInvalid as exc:
            return _refuse(environ, start_response, body, 403, f"forbidden: {exc.reason}")
        if body is not None:
            gate = upload_gate(app.db, key)
            if gate.reason == "expired":
                return _refuse(environ, start_response, body, 403, "forbidden: expired")
            if not gate.allowed:
                return _refuse(environ, start_response, body, 409,
                               f"conflict: the upload session is {gate.session_state}; "
                               "start a new upload")
            return _put(environ, start_response, storage, key, claims, body, max_put_bytes,
                        db=app.db, gate=gate if gate.session_state is not None else None)
        served = servable(app.db, key)
        if served is None:
            return _plain(environ, start_response, 404, "not found")
        return _get(app, environ, start_response, storage, key, claims, served)

    return handle


def _token(environ: WSGIEnvironment) -> str:
    try:
        query = str(environ.get("QUERY_STRING", ""))
        values = parse_qs(query, max_num_fields=32).get("token", [])
    except ValueError:
        raise TokenInvalid("malformed") from None
    if len(values) != 1:
        raise TokenInvalid("missing_token" if not values else "malformed")
    return values[0]


def _refuse(environ: WSGIEnvironment, start_response: StartResponse, body: RequestBody | None,
            code: int, text: str, extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    """Answer ``code`` without storing anything.

    A small declared body (at most :data:`DRAIN_SMALL` bytes) is read and discarded, so a
    client still sending sees this answer rather than a reset. A larger, chunked or
    unframed one is never waited for: the answer goes out at once, and the server closes
    the connection (``rindle serve`` serves one request per connection; WSGI forbids the
    app to send ``Connection`` itself), so a client that declares 10 GB and sends nothing
    cannot hold the thread.
    """
    if body is not None:
        body.discard()
    return _plain(environ, start_response, code, text, extra)


def _get(app: DeliveryHost, environ: WSGIEnvironment, start_response: StartResponse,
         storage: LocalStorage, key: str, claims: SignedClaims, served: Servable
         ) -> Iterable[bytes]:
    path = storage.path_for(key)
    try:
        # A link (anywhere on the path) that leads out of the root is never followed.
        if not path.resolve().is_relative_to(storage.root):
            return _plain(environ, start_response, 404, "not found")
        if not stat.S_ISREG(path.stat().st_mode):
            return _plain(environ, start_response, 404, "not found")
        f = open(path, "rb")  # noqa: SIM115 - closed by the response iterable
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, RuntimeError):
        return _plain(environ, start_response, 404, "not found")
    st = os.fstat(f.fileno())
    size, etag = st.st_size, _etag(st)
    last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
    if claims.expires == NEVER:
        cache = IMMUTABLE
    else:
        cache = f"private, max-age={max(0, claims.expires - int(time.time()))}"
    headers = [("ETag", etag), ("Last-Modified", last_modified), ("Cache-Control", cache),
               ("Accept-Ranges", "bytes"), *SECURITY_HEADERS]
    inm = environ.get("HTTP_IF_NONE_MATCH")
    if inm and _etag_matches(inm, etag):
        f.close()
        start_response(_status(304), headers)
        return []
    content_type = _media_type(served.content_type) or "application/octet-stream"
    headers.append(("Content-Type", content_type))
    disposition = _disposition_header(key, claims.disposition)
    if content_type in ACTIVE_TYPES:  # never inline: it would run as a page on this origin
        disposition = content_disposition(key, disposition="attachment")
    if disposition:
        headers.append(("Content-Disposition", disposition))
    if_range = environ.get("HTTP_IF_RANGE")
    honour = not if_range or if_range.strip() in (etag, last_modified)
    decision = parse_range(environ.get("HTTP_RANGE") if honour else None, size)
    meta = {"profile": "unknown", "adapter": storage.backend_name, "storage": storage.name}
    if decision.kind == "unsatisfiable":
        f.close()
        return _plain(environ, start_response, 416, "range not satisfiable",
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
        start_response(_status(206), headers)
        f.seek(decision.start)
        return _body(environ, f, length, partial=True)
    headers.append(("Content-Length", str(size)))
    start_response(_status(200), headers)
    return _body(environ, f, size, partial=False)


def _body(environ: WSGIEnvironment, f: IO[bytes], length: int, *, partial: bool
          ) -> Iterable[bytes]:
    if environ.get("REQUEST_METHOD") == "HEAD":
        f.close()
        return []
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None and not partial:  # a wrapper may send to EOF: whole files only
        return cast(Iterable[bytes], wrapper(f, BLOCK_SIZE))
    return _FileSlice(f, length)


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


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _put(environ: WSGIEnvironment, start_response: StartResponse, storage: LocalStorage,
         key: str, claims: SignedClaims, body: RequestBody, max_put_bytes: int, *,
         db: Database, gate: UploadGate | None) -> Iterable[bytes]:
    wanted = claims.content_type
    if wanted and _media_type(environ.get("CONTENT_TYPE")) != _media_type(wanted):
        return _refuse(environ, start_response, body, 415,
                       f"unsupported media type: this upload URL requires Content-Type {wanted}")
    if body.error is not None:
        return _refuse(environ, start_response, body, body.error[0], body.error[1])
    caps = [c for c in (claims.max_bytes, max_put_bytes) if c is not None]
    body.cap = min(caps) if caps else None
    if body.cap is not None and body.length is not None and body.length > body.cap:
        return _refuse(environ, start_response, body, 413,
                       f"payload too large: at most {body.cap} bytes")
    if storage.path_for(key).exists():  # cheap early answer; put_new is the real guard
        return _refuse(environ, start_response, body, 412,
                       ALREADY_STORED)
    try:
        storage.put_new(key, cast(BinaryIO, body))
        etag = _etag(storage.path_for(key).stat())  # what a GET will answer
    except ObjectExists:
        return _refuse(environ, start_response, body, 412,
                       ALREADY_STORED)
    except BodyTooLarge:
        return _refuse(environ, start_response, body, 413,
                       f"payload too large: at most {body.cap} bytes")
    except BodyIncomplete as exc:
        return _plain(environ, start_response, 400, f"bad request body: {exc}")
    except StorageError as exc:
        log.error("local PUT to storage %r failed: %s", storage.name, exc)
        return _plain(environ, start_response, 500, "could not store the object")
    if gate is not None and not upload_gate(db, key).allowed:
        # The session closed (abort, expiry) while the body was arriving: the object must
        # not outlive it as an untracked orphan.
        storage.delete(key)
        return _plain(environ, start_response, 409,
                      "conflict: the upload session closed while the body was arriving; "
                      "start a new upload")
    return _plain(environ, start_response, 201, "stored", [("ETag", etag)])
