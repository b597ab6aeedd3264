"""``rindle serve``: the embedded delivery app on a small threaded HTTP server.

Good for development and small single-host deployments; in production mount
``rindle.delivery.wsgi_app(app)`` in the host's WSGI server instead.
"""

from __future__ import annotations

import re
import socket
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import WSGIApplication

import click

from rindle.cli._context import CliContext, handle_errors, pass_cli

__all__ = ["AccessLogHandler", "ThreadingWSGIServer", "make_threading_server", "serve_command"]

_QUERY = re.compile(r"\?[^\s'\"]*")  # "?..." up to whitespace or a quote


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """A ``wsgiref`` server that handles each request in its own daemon thread."""

    daemon_threads = True
    allow_reuse_address = True


class _ThreadingWSGIServerV6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class AccessLogHandler(WSGIRequestHandler):
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


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


#: Seconds a connection may stay silent (while sending headers or body) before the server
#: drops it: a client that opens connections and sends nothing cannot pin threads.
IDLE_TIMEOUT = 60.0


def make_threading_server(application: WSGIApplication, host: str = "127.0.0.1",
                          port: int = 0, *, quiet: bool = False,
                          idle_timeout: float = IDLE_TIMEOUT) -> ThreadingWSGIServer:
    """Bind a threaded server for ``application`` on ``host:port`` (``0``: any free port).

    The server is bound but not serving: call ``serve_forever()`` (and ``shutdown()`` plus
    ``server_close()`` from another thread to stop it). ``quiet`` drops the access log;
    otherwise :class:`AccessLogHandler` writes it to stderr, without query strings. A
    connection silent for ``idle_timeout`` seconds is closed. Raises :class:`OSError` when
    the address cannot be bound.
    """
    if not idle_timeout > 0:
        raise ValueError(f"idle_timeout must be > 0 seconds, not {idle_timeout}")
    server_class = _ThreadingWSGIServerV6 if ":" in host else ThreadingWSGIServer
    base = _QuietHandler if quiet else AccessLogHandler
    handler = type(base.__name__, (base,), {"timeout": idle_timeout})
    server = make_server(host, port, application, server_class=server_class,
                         handler_class=handler)
    assert isinstance(server, ThreadingWSGIServer)
    return server


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@pass_cli
@handle_errors
def serve_command(ctx: CliContext, host: str, port: int) -> None:
    """Serve signed local-storage URLs and presigned uploads until Ctrl-C.

    Each local storage's base_url should point at this address.
    """
    from rindle.delivery import wsgi_app

    application = wsgi_app(ctx.app())
    try:
        server = make_threading_server(application, host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                                   ) from None
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"rindle serving on http://{shown}:{server.server_port} (Ctrl-C to stop)",
               err=True)
    for route in application.routes:
        click.echo(f"  {route.prefix}/...  {route.name}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()
