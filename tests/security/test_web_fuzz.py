"""Seeded hostile requests at the tus server and the upload API, under rindle's threading
WSGI server and uvicorn, on SQLite and PostgreSQL: random methods, paths (the routes of a
real session and their neighbours), tus and framing headers with hostile values, and
bodies (binary, deep JSON). Every answer must be below 500, and every refusal the surface
gives (not the HTTP server's own parse errors) JSON with a rindle ``code``."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from rindle import Rindle
from rindle.web import tus_asgi, tus_wsgi, upload_api_asgi, upload_api_wsgi
from tests.web.conftest import header_actor, serve_asgi, serve_wsgi, web_app

__all__ = ["web_app"]  # the fixture

METHODS = ["GET", "POST", "PATCH", "HEAD", "DELETE", "OPTIONS", "PUT", "TRACE", "FOO"]
HEADERS = ["Upload-Offset", "Upload-Length", "Upload-Defer-Length", "Upload-Metadata",
           "Upload-Concat", "Upload-Checksum", "Content-Type", "X-HTTP-Method-Override",
           "Tus-Resumable", "X-Actor", "Last-Event-ID"]
VALUES = ["", "0", "1", "-1", "1.0.0", "final;", "partial", "sha1 AAAA", "md5 ====",
          "application/offset+octet-stream", "application/json", "alice", "PATCH", "9" * 30,
          "a b c", "%00", "\u00e9", "final;http://x/files/" + "0" * 32 + "." + "0" * 32]
BODIES = [b"", b"abcd", b"{}", b'{"parts": [{"PartNumber": 1, "ETag": "x"}]}', b"\xff" * 9,
          b"[" * 5000, b'{"profile": "photo", "filename": "a.jpg", "size": -1}']
#: What an HTTP server answers itself to a request it cannot parse (plain text).
SERVER_ERRORS = (b"Invalid HTTP request received.", b"400 ", b"411 ", b"413 ", b"414 ",
                 b"431 ", b"501 ", b"505 ")
ROUNDS = 100


def _exchange(base: str, data: bytes) -> tuple[int, bytes]:
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80),
                                  timeout=30) as sock:
        sock.sendall(data)  # Connection: close: the server ends the exchange
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _session_path(base: str, prefix: str) -> str:
    if prefix:
        made = requests.post(base + prefix + "/", timeout=30, headers={
            "Tus-Resumable": "1.0.0", "X-Actor": "alice", "Upload-Length": "8",
            "Upload-Metadata": "filename YS5qcGc=,profile cGhvdG8="})
        return str(urlsplit(made.headers["Location"]).path)
    made = requests.post(base + "/uploads", timeout=30, headers={"X-Actor": "alice"},
                         json={"profile": "photo", "filename": "a.jpg", "size": 3})
    return "/uploads/" + str(made.json()["id"])


SURFACES: dict[str, tuple[Callable[..., Any], Callable[..., Any], str]] = {
    "tus-wsgi": (serve_wsgi, tus_wsgi, "/files"), "tus-asgi": (serve_asgi, tus_asgi, "/files"),
    "api-wsgi": (serve_wsgi, upload_api_wsgi, ""), "api-asgi": (serve_asgi, upload_api_asgi, ""),
}


def test_hostile_requests_never_get_a_5xx_or_a_non_json_refusal(web_app: Rindle) -> None:
    wrong = []
    for surface, (serve, make, prefix) in sorted(SURFACES.items()):
        rnd = random.Random(surface)
        with serve(make(web_app, authorize=header_actor, mount=prefix)) as base:
            own = _session_path(base, prefix)
            paths = [prefix + "/", own, own + "/sign", own + "/parts/1", own + "/parts",
                     own + "/verify", own + "/complete", "/uploads", prefix + "/x/../",
                     own + "%00", own.upper(), own + "/", "/static/rindle-upload.js"]
            for _ in range(ROUNDS):
                method, path = rnd.choice(METHODS), rnd.choice(paths)
                body = rnd.choice(BODIES)
                lines = [f"{method} {path} HTTP/1.1", "Host: x", "Connection: close",
                         *(f"{rnd.choice(HEADERS)}: {rnd.choice(VALUES)}"
                           for _ in range(rnd.randint(0, 6)))]
                if rnd.random() < 0.8:
                    lines.append(f"Content-Length: {len(body)}")
                status, answer = _exchange(
                    base, ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body)
                if status >= 500:
                    wrong.append((surface, method, path, status, answer[:200]))
                elif (status >= 400 and method != "HEAD"
                      and not answer.startswith(SERVER_ERRORS)):
                    try:
                        assert isinstance(json.loads(answer)["error"]["code"], str)
                    except (ValueError, KeyError, TypeError, AssertionError):
                        wrong.append((surface, method, path, status, answer[:200]))
    assert wrong == []
