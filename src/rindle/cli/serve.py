"""``rindle serve``: the embedded delivery app on a small threaded HTTP server.

Good for development and small single-host deployments; in production mount
``rindle.delivery.wsgi_app(app)`` in the host's WSGI server instead.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import WSGIApplication

import click

from rindle.cli._context import CliContext, emit, handle_errors, pass_cli
from rindle.cli._ops_options import json_option
from rindle.delivery.headers import SECURITY_HEADERS

__all__ = ["AccessLogHandler", "ThreadingWSGIServer", "make_threading_server", "serve_command"]

_QUERY = re.compile(r"\?[^\s'\"]*")  # "?..." up to whitespace or a quote


#: Connections served at once by default; one more is answered 503 and closed at once.
MAX_CONNECTIONS = 256

#: A closing connection's unread input is drained (up to this much, for up to this long)
#: so an error answer sent before the whole request was read reaches the client.
_LINGER_BYTES = 1 << 20
_LINGER_SECONDS = 2.0

_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Length: 5\r\nConnection: close\r\nRetry-After: 1\r\n\r\nbusy\n")


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """A ``wsgiref`` server that handles each request in its own daemon thread, at most
    :attr:`max_connections` at once (one more is answered ``503`` and closed)."""

    daemon_threads = True
    allow_reuse_address = True
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start a handler thread if a slot is free; else answer 503 and close."""
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
                request.shutdown(socket.SHUT_WR)
                # Read what already arrived, without waiting: closing a socket with
                # unread input sends RST, which can destroy the 503 before it is read.
                request.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    request.recv(65536)
            self.close_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def shutdown_request(self, request: Any) -> None:
        """Close a served connection gracefully: stop writing, then read and discard
        what the client still sends (at most :data:`_LINGER_BYTES`, waiting at most
        :data:`_LINGER_SECONDS`) so the answer is not destroyed by a reset, then close."""
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
            request.settimeout(_LINGER_SECONDS)
            left = _LINGER_BYTES
            while left > 0 and (chunk := request.recv(min(left, 65536))):
                left -= len(chunk)
        self.close_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection in its thread, then free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _ThreadingWSGIServerV6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _SafeErrors(WSGIRequestHandler):
    """Errors the HTTP layer answers itself (bad request line, header too long) go out as
    short plain text with rindle's security headers, never echoing the request.

    A request with more than one ``Content-Length`` or ``Transfer-Encoding`` header is
    refused (400): WSGI shows the application only one of each, and a proxy in front may
    have framed the body by the other (request smuggling).
    """

    def parse_request(self) -> bool:
        """The standard parse, then refuse repeated framing headers."""
        if not super().parse_request():
            return False
        for name in ("Content-Length", "Transfer-Encoding"):
            if len(self.headers.get_all(name, [])) > 1:
                self.send_error(400)
                return False
        return True

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Answer ``code`` with its standard phrase only (the request line, which may carry
        a signed token, is neither logged nor echoed)."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self.log_error("code %d, message %s", code, phrase)
        self.request_version = "HTTP/1.0"  # headers even for a request that never said
        self.close_connection = True
        body = f"{code} {phrase}\n".encode("ascii")
        self.send_response(code, phrase)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in SECURITY_HEADERS:
            self.send_header(name, value)
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)


class AccessLogHandler(_SafeErrors):
    """``wsgiref``'s handler with an access log that never shows a query string.

    Signed URLs carry their token (for a presigned PUT, a reusable upload credential) in
    the query string, so each request is logged as client, time, ``"METHOD /path"``,
    status and size; every other server message (bad request lines, errors) has any
    ``?...`` stripped as well.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log one answered request: method, path without its query string, status, size."""
        if isinstance(code, HTTPStatus):
            code = code.value
        method = getattr(self, "command", None) or "-"
        target = getattr(self, "path", None) or "-"
        path = target.partition("?")[0].partition("#")[0]
        self.log_message('"%s %s" %s %s', method, path, str(code), str(size))

    def log_message(self, format: str, *args: Any) -> None:
        """Write one line to stderr, with any query string removed from the arguments."""
        super().log_message(format, *(_QUERY.sub("", a) if isinstance(a, str) else a
                                      for a in args))


class _QuietHandler(_SafeErrors):
    def log_message(self, format: str, *args: Any) -> None:
        pass


#: Seconds a connection may stay silent (while sending headers or body) before the server
#: drops it: a client that opens connections and sends nothing cannot pin threads.
IDLE_TIMEOUT = 60.0


def make_threading_server(application: WSGIApplication, host: str = "127.0.0.1",
                          port: int = 0, *, quiet: bool = False,
                          idle_timeout: float = IDLE_TIMEOUT,
                          max_connections: int = MAX_CONNECTIONS) -> ThreadingWSGIServer:
    """Bind a threaded server for ``application`` on ``host:port`` (``0``: any free port).

    The server is bound but not serving: call ``serve_forever()`` (and ``shutdown()`` plus
    ``server_close()`` from another thread to stop it). ``quiet`` drops the access log;
    otherwise :class:`AccessLogHandler` writes it to stderr, without query strings. A
    connection silent for ``idle_timeout`` seconds is closed; past ``max_connections``
    open connections a new one is answered 503. Raises :class:`OSError` when the address
    cannot be bound.
    """
    if not idle_timeout > 0:
        raise ValueError(f"idle_timeout must be > 0 seconds, not {idle_timeout}")
    if max_connections < 1:
        raise ValueError(f"max_connections must be >= 1, not {max_connections}")
    family_class = _ThreadingWSGIServerV6 if ":" in host else ThreadingWSGIServer
    server_class: type[ThreadingWSGIServer] = type(
        family_class.__name__, (family_class,), {"max_connections": max_connections})
    base = _QuietHandler if quiet else AccessLogHandler
    handler = type(base.__name__, (base,), {"timeout": idle_timeout})
    server = make_server(host, port, application, server_class=server_class,
                         handler_class=handler)
    assert isinstance(server, ThreadingWSGIServer)
    return server


@click.command("serve", epilog="Example: rindle serve --host 127.0.0.1 --port 8765")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@json_option
@pass_cli
@handle_errors
def serve_command(ctx: CliContext, host: str, port: int) -> None:
    """Serve signed local-storage URLs and presigned uploads until Ctrl-C.

    Each local storage's base_url should point at this address. With --json the address
    and routes are one JSON object on stdout once listening; the access log stays on stderr.
    """
    from rindle.delivery import wsgi_app

    application = wsgi_app(ctx.app())
    try:
        server = make_threading_server(application, host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                                   ) from None
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{server.server_port}"
    if ctx.json:
        emit(ctx, {"url": base, "host": host, "port": server.server_port,
                   "routes": [{"prefix": r.prefix, "name": r.name}
                              for r in application.routes]}, "")
    else:
        click.echo(f"rindle serving on {base} (Ctrl-C to stop)", err=True)
        for route in application.routes:
            click.echo(f"  {route.prefix}/...  {route.name}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()
