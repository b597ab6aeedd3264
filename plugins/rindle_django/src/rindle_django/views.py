"""Views behind ``path("rindle/", include("rindle_django.urls"))``.

:func:`delivery` hands the request to rindle's own delivery WSGI app
(:func:`rindle.delivery.wsgi.wsgi_app`): signed GET/HEAD (with ``Range``) and presigned
PUT of local-storage objects under each local storage's ``url_prefix`` (``media/...``),
and provider webhooks under ``webhooks/<provider>``. Status, body and every header come
from that app unchanged, the security headers (``Content-Security-Policy: default-src
'none'; sandbox``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``)
included. These requests carry their own proof (a signed token, a provider signature), so
the view is exempt from CSRF.

:func:`direct_initiate` and :func:`direct_complete` are the JSON endpoints of the
direct-upload widget (:class:`rindle_django.forms.RindleDirectUploadInput`); each needs the
signed grant the widget was rendered with, Django's CSRF token, and ``application/json``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable
from typing import Any

from django.core import signing
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rindle.errors import RindleError, UsageError
from rindle_django.conf import get_app
from rindle_django.forms import asset_token, read_grant

__all__ = ["delivery", "direct_complete", "direct_initiate"]

_lock = threading.Lock()
_delivery: tuple[object, Any] | None = None
#: The largest JSON body the direct-upload endpoints read, in bytes.
MAX_JSON_BYTES = 16 * 1024
_SESSION_SALT = "rindle_django.session"


def _wsgi() -> Any:
    """The delivery WSGI app of the current rindle app (rebuilt when the app is)."""
    global _delivery
    from rindle.delivery import wsgi_app

    app = get_app()
    with _lock:
        if _delivery is None or _delivery[0] is not app:
            _delivery = (app, wsgi_app(app))
        return _delivery[1]


@csrf_exempt
def delivery(request: HttpRequest, path: str) -> HttpResponse | StreamingHttpResponse:
    """Serve ``<mount>/<path>`` through rindle's delivery app (see the module docstring)."""
    environ = dict(request.META)
    # the body through Django's own stream (bounded by CONTENT_LENGTH; under ASGI there
    # is no wsgi.input at all)
    environ["wsgi.input"] = request
    environ.setdefault("wsgi.url_scheme", request.scheme)
    environ.setdefault("wsgi.errors", sys.stderr)
    rest = "/" + path
    full = request.path_info
    environ["SCRIPT_NAME"] = request.META.get("SCRIPT_NAME", "") + full[: len(full) - len(rest)]
    environ["PATH_INFO"] = rest
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None
                       ) -> Any:
        answer["status"] = int(status.split(" ", 1)[0])
        answer["headers"] = headers
        return lambda data: None

    body: Iterable[bytes] = _wsgi()(environ, start_response)
    response = StreamingHttpResponse(body, status=answer["status"])
    if not any(k.lower() == "content-type" for k, _ in answer["headers"]):
        del response["Content-Type"]
    for key, value in answer["headers"]:
        response[key] = value
    return response


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise UsageError("send application/json", code="unsupported_media_type")
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > MAX_JSON_BYTES:
        raise UsageError(f"the request body is larger than {MAX_JSON_BYTES} bytes",
                         code="body_too_large")
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        raise UsageError("the request body is not JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise UsageError("the request body must be a JSON object", code="invalid_json")
    return data


def _granted(data: dict[str, Any]) -> str:
    try:
        return read_grant(str(data.get("grant", "")))
    except signing.BadSignature:
        raise PermissionError("the upload grant is missing, tampered with or expired") from None


def _error(exc: Exception) -> JsonResponse:
    if isinstance(exc, PermissionError):
        return JsonResponse({"error": {"code": "forbidden", "message": str(exc)}}, status=403)
    assert isinstance(exc, RindleError)
    status = {"unsupported_media_type": 415, "body_too_large": 413,
              "not_found": 404}.get(exc.code, 400)
    return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=status)


@require_POST
def direct_initiate(request: HttpRequest) -> JsonResponse:
    """``{"grant", "filename", "byte_size", "content_type"}`` -> a presigned request and a
    signed session token: ``{"session", "request": {"method", "url", "headers"}}``."""
    try:
        data = _json_body(request)
        profile = _granted(data)
        app = get_app()
        size = data.get("byte_size")
        session = app.initiate_upload(
            profile, filename=str(data.get("filename") or ""),
            byte_size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            content_type=str(data["content_type"]) if data.get("content_type") else None)
        presigned = app.sign_upload(session.id)
    except (RindleError, PermissionError) as exc:
        return _error(exc)
    token = signing.dumps({"s": str(session.id), "p": profile}, salt=_SESSION_SALT)
    return JsonResponse({"session": token, "request": {
        "method": presigned.method, "url": presigned.url, "headers": dict(presigned.headers)}})


@require_POST
def direct_complete(request: HttpRequest) -> JsonResponse:
    """``{"grant", "session"}`` -> verify the stored object (rindle's trust gate) ->
    ``{"asset": <signed asset token>, "filename", "state"}``."""
    try:
        data = _json_body(request)
        profile = _granted(data)
        try:
            claims = signing.loads(str(data.get("session", "")), salt=_SESSION_SALT,
                                   max_age=6 * 3600)
        except signing.BadSignature:
            raise PermissionError("the upload session token is tampered with or expired"
                                  ) from None
        if not isinstance(claims, dict) or claims.get("p") != profile:
            raise PermissionError("the upload session belongs to another grant")
        asset = get_app().verify_upload(str(claims["s"]))
    except (RindleError, PermissionError) as exc:
        return _error(exc)
    return JsonResponse({"asset": asset_token(asset.id, profile), "filename": asset.filename,
                         "state": asset.state})
