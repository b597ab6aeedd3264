"""The embedded delivery web app: signed GETs and presigned PUTs of local-storage objects.

:func:`wsgi_app` returns a plain PEP 3333 callable (no web framework), so it runs under
``rindle serve`` or mounted in Django, Flask or any WSGI server;
:func:`rindle.delivery.asgi_app` serves the same routes, with the same answers, as a
native ASGI 3 app. Both run one request-handling core (:mod:`rindle.delivery.core`).
Routes, matched on ``PATH_INFO`` (after ``mount`` is stripped), longest prefix first:

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

from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, cast
from wsgiref.types import StartResponse, WSGIEnvironment

from rindle.delivery.body import (
    BLOCK_SIZE,
    DRAIN_SMALL,
    BodyIncomplete,
    BodyTooLarge,
    RequestBody,
)
from rindle.delivery.core import (
    ALREADY_STORED,
    DEFAULT_MAX_PUT_BYTES,
    DeliveryCore,
    Route,
    delivery_core,
)
from rindle.delivery.headers import SECURITY_HEADERS
from rindle.delivery.messages import Request, Response, status_line
from rindle.delivery.ranges import ByteRangeDecision, parse_range

if TYPE_CHECKING:
    from rindle.delivery.core import DeliveryHost

__all__ = [
    "ALREADY_STORED",
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


def wsgi_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request headers of ``environ`` as a lower-case ``name -> value`` dict."""
    out: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out[key[5:].replace("_", "-").lower()] = str(value)
    if environ.get("CONTENT_TYPE"):
        out["content-type"] = str(environ["CONTENT_TYPE"])
    return out


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


class DeliveryApp:
    """The WSGI callable :func:`wsgi_app` returns; ``routes`` lists what it serves."""

    def __init__(self, core: DeliveryCore) -> None:
        self.core = core
        self.routes = core.routes
        self.mount = core.mount

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        request = Request(method, environ.get("PATH_INFO") or "/",
                          str(environ.get("QUERY_STRING", "")), wsgi_headers(environ),
                          lambda: RequestBody.from_environ(environ))
        response = self.core.handle(request)
        start_response(status_line(response.status), response.headers)
        return _body(environ, method, response)


def _body(environ: WSGIEnvironment, method: str, response: Response) -> Iterable[bytes]:
    f = response.file
    if f is None:
        return [] if method == "HEAD" else [response.body]
    if method == "HEAD":
        f.close()
        return []
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None and response.whole_file:  # a wrapper may send to EOF
        return cast(Iterable[bytes], wrapper(f, BLOCK_SIZE))
    return _FileSlice(f, response.length)


def wsgi_app(app: DeliveryHost, *, mount: str = "", max_put_bytes: int | None = None
             ) -> DeliveryApp:
    """The delivery app for ``app``'s local storages (see the module docstring for routes).

    ``mount`` is a path prefix that every request's ``PATH_INFO`` carries and that is
    stripped before routing (for hosts that do not set ``SCRIPT_NAME``); ``max_put_bytes``
    caps every presigned PUT on top of the token's own cap (default: the app's
    ``[delivery] max_put_bytes``, else :data:`DEFAULT_MAX_PUT_BYTES`, 5 GiB). Raises
    :class:`~rindle.errors.ConfigError` when two local storages share a URL prefix (tokens
    bind keys, not storages).
    """
    return DeliveryApp(delivery_core(app, mount=mount, max_put_bytes=max_put_bytes))
