"""Requests and responses of the delivery app, independent of WSGI and ASGI.

A route handler takes a :class:`Request` and the rest of the path after its prefix and
returns a :class:`Response`; :mod:`rindle.delivery.wsgi` and :mod:`rindle.delivery.asgi`
turn them into their protocol's messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import IO

from rindle.delivery.body import RequestBody
from rindle.delivery.headers import SECURITY_HEADERS

__all__ = ["Handler", "Request", "Response", "plain", "status_line"]


@dataclass
class Request:
    """One request as the handlers see it.

    ``path`` is what follows the mount, as PEP 3333 spells ``PATH_INFO`` (the raw bytes
    decoded as Latin-1); ``headers`` have lower-case names; ``open_body()`` frames the
    body (``Content-Length``, chunked, or an error) and is called at most once.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    open_body: Callable[[], RequestBody]


@dataclass
class Response:
    """An answer: ``body`` bytes, or ``length`` bytes of ``file`` from its position (the
    server closes it). ``whole_file`` is True when ``file`` is sent to its end (a WSGI
    server's ``wsgi.file_wrapper`` may then send it)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: IO[bytes] | None = None
    length: int = 0
    whole_file: bool = False

    def close(self) -> None:
        """Close the file, if any (idempotent)."""
        if self.file is not None:
            self.file.close()


Handler = Callable[[Request, str], Response]


def status_line(code: int) -> str:
    """``"404 Not Found"``."""
    return f"{code} {HTTPStatus(code).phrase}"


def plain(code: int, text: str, extra: Iterable[tuple[str, str]] = ()) -> Response:
    """A ``text/plain`` answer carrying :data:`SECURITY_HEADERS` and ``no-store``."""
    body = (text + "\n").encode("utf-8") if text else b""
    return Response(code, [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        *SECURITY_HEADERS,
        *extra,
    ], body)
