"""The browser module the upload API mount serves: ``GET {prefix}/static/rindle-upload.js``.

:data:`SCRIPTS` names every file served (package data in ``rindle/web/assets``); any other
name under ``static/`` is 404, so no path reaches the file system. A script is answered
``200`` with ``Content-Type: text/javascript; charset=utf-8``, ``X-Content-Type-Options:
nosniff``, ``Cross-Origin-Resource-Policy: same-site``, ``Referrer-Policy: no-referrer``,
a strong ``ETag`` (SHA-256 of the bytes) and ``Cache-Control: public, max-age=3600`` (one
hour: a new rindle version reaches browsers within it); ``If-None-Match`` with that ETag
is ``304``. ``GET`` and ``HEAD`` only (405 with ``Allow`` otherwise). No authorization:
the file is the same public code for everyone.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources

from rindle.web.http import Request, Response

__all__ = ["CACHE_CONTROL", "SCRIPTS", "script_bytes", "serve"]

#: The files served under ``static/`` (name -> package resource in ``rindle.web``).
SCRIPTS = {"rindle-upload.js": "assets/rindle-upload.js"}
#: How long a browser or shared cache may reuse the module without asking again.
CACHE_CONTROL = "public, max-age=3600"


@cache
def script_bytes(name: str) -> tuple[bytes, str]:
    """The bytes of script ``name`` (a key of :data:`SCRIPTS`) and their quoted ETag."""
    data = resources.files("rindle.web").joinpath(SCRIPTS[name]).read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _json_error(status: int, code: str, message: str,
                headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return Response(status, [("Content-Type", "application/json"), *(headers or [])], body)


def serve(request: Request, name: str) -> Response:
    """Answer ``GET``/``HEAD {prefix}/static/<name>`` (see the module docstring)."""
    if name not in SCRIPTS:
        return _json_error(404, "not_found", "no such endpoint")
    if request.method not in ("GET", "HEAD"):
        return _json_error(405, "method_not_allowed", "this endpoint takes GET or HEAD",
                           [("Allow", "GET, HEAD")])
    data, etag = script_bytes(name)
    headers = [("ETag", etag), ("Cache-Control", CACHE_CONTROL),
               ("X-Content-Type-Options", "nosniff"),
               ("Cross-Origin-Resource-Policy", "same-site"),
               ("Referrer-Policy", "no-referrer")]
    tags = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
    if etag in tags or f"W/{etag}" in tags or "*" in tags:
        return Response(304, headers)
    return Response(200, [("Content-Type", "text/javascript; charset=utf-8"),
                          ("Content-Length", str(len(data))), *headers], data)
