"""``rindle serve``: the embedded delivery app on a small threaded HTTP server.

Good for development and small single-host deployments; in production mount
``rindle.delivery.wsgi_app(app)`` in the host's WSGI server instead.

HTTP/1.1 requests are answered in HTTP/1.1 and the connection is kept for the next request
(persistent connections: a tus client sends every chunk of an upload on one) only when
that is safe: the request was framed by ``Content-Length`` (never ``Transfer-Encoding``)
and the application read all of its body, the answer's length is known (``Content-Length``
matching the bytes sent, or a ``HEAD``/``204``/``304`` answer, which never carries a
body), no ``Connection: close`` was asked for and the connection has carried fewer than
``max_requests`` requests. Otherwise the answer says ``Connection: close`` and the
connection is closed. HTTP/1.0 requests are answered in HTTP/1.0 and closed, as before.
"""

from __future__ import annotations

import contextlib
import errno
import re
import socket
import threading
from http import HTTPStatus
from io import BufferedIOBase, BufferedReader
from socketserver import ThreadingMixIn
from typing import IO, Any
from wsgiref.headers import Headers
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import WSGIApplication

import click

from rindle.cli._context import CliContext, emit, handle_errors, pass_cli
from rindle.cli._ops_options import json_option
from rindle.delivery.headers import SECURITY_HEADERS
from rindle.errors import AddressInUse

__all__ = ["AccessLogHandler", "ThreadingWSGIServer", "make_threading_server", "serve_command"]

_QUERY = re.compile(r"\?[^\s'\"]*")  # "?..." up to whitespace or a quote


#: Connections served at once by default; one more is answered 503 and closed at once.
MAX_CONNECTIONS = 256

#: A closing connection's unread input is drained (up to this much, for up to this long)
#: so an error answer sent before the whole request was read reaches the client.
_LINGER_BYTES = 1 << 20
_LINGER_SECONDS = 2.0

#: Seconds a kept-alive connection may wait for its next request before the server closes
#: it (at most the idle timeout).
KEEP_ALIVE_TIMEOUT = 5.0
#: Requests one connection may carry; the last one's answer says ``Connection: close``.
MAX_REQUESTS = 1000

_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Length: 5\r\nConnection: close\r\nRetry-After: 1\r\n\r\nbusy\n")


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """A ``wsgiref`` server that handles each request in its own daemon thread, at most
    :attr:`max_connections` at once (one more is answered ``503`` and closed)."""

    daemon_threads = True
    allow_reuse_address = True
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # set before binding: a failed bind calls server_close()
        self._idle: set[socket.socket] = set()  # kept-alive connections between requests
        self._idle_lock = threading.Lock()
        self._closing = False
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def park(self, connection: socket.socket) -> bool:
        """Note ``connection`` as waiting for its next request (so :meth:`server_close`
        can end the wait); ``False`` when the server is closing (the caller closes it)."""
        with self._idle_lock:
            if self._closing:
                return False
            self._idle.add(connection)
            return True

    def unpark(self, connection: socket.socket) -> bool:
        """``connection`` stopped waiting; ``False`` when the server is closing."""
        with self._idle_lock:
            self._idle.discard(connection)
            return not self._closing

    def server_close(self) -> None:
        """Stop listening and end every kept-alive connection waiting for its next request
        (one in the middle of a request finishes it and then closes)."""
        with self._idle_lock:
            self._closing = True
            idle, self._idle = list(self._idle), set()
        for connection in idle:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        super().server_close()

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


class _Body:
    """``wsgi.input`` of a request framed by ``Content-Length``: reads stop at the body's
    end, so an application can never consume the next request of a kept-alive connection.
    ``left`` is what the application has not read (the connection is kept only at 0)."""

    def __init__(self, stream: IO[bytes] | BufferedIOBase, length: int) -> None:
        self._stream, self.left = stream, length

    def _take(self, data: bytes) -> bytes:
        self.left = self.left - len(data) if data else -1  # -1: the client went away
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes of the body (the rest when negative or ``None``)."""
        if self.left <= 0:
            return b""
        return self._take(self._stream.read(
            self.left if size is None or size < 0 else min(size, self.left)))

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` with up to its length of the body's next bytes (no further than
        the body's end); the number of bytes, 0 at the end."""
        if self.left <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        view = view[:min(len(view), self.left)]
        if isinstance(self._stream, BufferedIOBase):
            count = self._stream.readinto(view) or 0
        else:
            data = self._stream.read(len(view))
            view[:len(data)] = data
            count = len(data)
        self.left = self.left - count if count else -1  # -1: the client went away
        return count

    def readline(self, size: int | None = -1) -> bytes:
        """One line of the body, at most ``size`` bytes."""
        if self.left <= 0:
            return b""
        return self._take(self._stream.readline(
            self.left if size is None or size < 0 else min(size, self.left)))

    def readlines(self, hint: int = -1) -> list[bytes]:
        """The body's remaining lines (WSGI's ``readlines``)."""
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


#: Statuses whose answer never carries a body.
_BODYLESS = frozenset((204, 304))


class _Exchange(ServerHandler):
    """One request and its answer on a possibly kept-alive connection.

    ``keep`` starts as whether the request allows keeping the connection and ends as
    whether the connection may carry another request: the answer's length must be known
    and honoured, the body read to its end, and the application must not have failed.
    Headers and a small body go out in one send.
    """

    keep: bool
    completed = False
    #: wsgiref copies the whole process environment into every request's environ; an
    #: application gets only the request's CGI variables (no secret of the server's
    #: environment reaches a debug page or a log of the environ).
    os_environ: dict[str, str] = {}
    # wsgiref's state, which its type stubs leave out
    status: str | None
    headers: Headers | None
    headers_sent: bool
    bytes_sent: int
    request_handler: WSGIRequestHandler  # wsgiref's back-pointer for its access log

    def __init__(self, *args: Any, keep: bool, body: _Body | None, method: str,
                 version: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep, self._input, self._method = keep, body, method
        self.http_version = version
        self._pending = bytearray()
        self._limit: int | None = None  # body bytes the answer may carry; None: unframed
        self._sent = 0

    def cleanup_headers(self) -> None:
        """wsgiref's defaults, then decide whether the connection survives this answer
        (``Connection: close`` in an HTTP/1.1 answer when it does not)."""
        super().cleanup_headers()
        assert self.headers is not None and self.status is not None
        code = int(self.status[:3])
        length = (self.headers.get("Content-Length") or "").strip()
        if self._method == "HEAD" or code in _BODYLESS or 100 <= code < 200:
            self._limit = 0
        elif length.isascii() and length.isdigit():
            self._limit = int(length)
        if (self._limit is None or len(self.headers.get_all("Content-Length")) > 1
                or (self._input is not None and self._input.left != 0)
                or any(name in self.headers for name in ("Connection", "Transfer-Encoding",
                                                          "Keep-Alive"))):
            self.keep = False
        if not self.keep and self.http_version == "1.1":
            self.headers["Connection"] = "close"

    def write(self, data: bytes) -> None:
        """PEP 3333 ``write``: the headers first; body bytes past the answer's length
        (any for ``HEAD``, ``204``, ``304``) are dropped, never sent as the next answer."""
        if type(data) is not bytes:
            raise AssertionError("write() argument must be a bytes instance")
        if not self.status:
            raise AssertionError("write() before start_response()")
        if not self.headers_sent:
            self.bytes_sent = len(data)  # wsgiref's Content-Length of a one-block answer
            self.send_headers()
        else:
            self.bytes_sent += len(data)
        if self._limit is not None and len(data) > self._limit - self._sent:
            if self._limit > 0:  # an application sending more than it declared
                self.keep = False
            data = data[:self._limit - self._sent]
        self._sent += len(data)
        if data:
            self._write(data)
        self._flush()

    def finish_content(self) -> None:
        """Send the headers if no body did; a body shorter than its length ends the
        connection."""
        super().finish_content()
        self._flush()
        if self._limit is not None and self._limit and self._sent != self._limit:
            self.keep = False

    def finish_response(self) -> None:
        """wsgiref's, then note that the answer went out whole."""
        super().finish_response()
        self.completed = True

    def handle_error(self) -> None:
        """The application failed: its connection is not kept."""
        self.keep = False
        super().handle_error()

    def _write(self, data: bytes) -> None:
        if len(self._pending) + len(data) <= _COALESCE:
            self._pending += data
            return
        self._flush()
        super()._write(data)

    def _flush(self) -> None:
        if self._pending:
            pending, self._pending = bytes(self._pending), bytearray()
            super()._write(pending)
        assert self.stdout is not None
        self.stdout.flush()


#: Headers and body blocks up to this size are gathered into one send (no small writes
#: for Nagle's algorithm to hold back on a kept-alive connection).
_COALESCE = 64 * 1024


class _SafeErrors(WSGIRequestHandler):
    """Errors the HTTP layer answers itself (bad request line, header too long) go out as
    short plain text with rindle's security headers, never echoing the request.

    A request with more than one ``Content-Length`` or ``Transfer-Encoding`` header is
    refused (400): WSGI shows the application only one of each, and a proxy in front may
    have framed the body by the other (request smuggling).
    """

    keep_alive_timeout = KEEP_ALIVE_TIMEOUT
    max_requests = MAX_REQUESTS

    def handle(self) -> None:
        """Serve the requests of this connection: one, then more while each exchange
        leaves the connection reusable and the next request starts within
        :attr:`keep_alive_timeout`, at most :attr:`max_requests` in all."""
        self.close_connection = True
        served = 0
        while True:
            served += 1
            if not self._handle_one(last=served >= self.max_requests):
                return
            if not self._await_next():
                return

    def _await_next(self) -> bool:
        """Wait for the first byte of the next request (it may already be buffered:
        pipelining); ``False`` when the client closed, stayed silent past the
        keep-alive timeout, or the server is closing."""
        connection = self.connection
        server = self.server
        assert isinstance(server, ThreadingWSGIServer)
        if not server.park(connection):
            return False
        try:
            connection.settimeout(self.keep_alive_timeout if self.timeout is None
                                  else min(self.keep_alive_timeout, self.timeout))
            rfile = self.rfile  # socketserver's buffered reader (rbufsize -1)
            ready = rfile.peek(1) if isinstance(rfile, BufferedReader) else b""
        except OSError:  # TimeoutError included: an idle kept-alive connection ends
            return False
        finally:
            reusable = server.unpark(connection)
        if not ready or not reusable:
            return False
        connection.settimeout(self.timeout)
        return True

    def _handle_one(self, *, last: bool) -> bool:
        """Read and answer one request (wsgiref's ``handle``, with a body bounded by its
        framing); whether the connection may carry another."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return False
        if not self.parse_request():  # an error was answered (or nothing came)
            return False
        keep = self.request_version == "HTTP/1.1" and not last and "close" not in {
            token.strip().lower() for value in self.headers.get_all("Connection", [])
            for token in value.split(",")}
        raw_length = (self.headers.get("Content-Length") or "0").strip()
        stdin: Any = self.rfile
        body: _Body | None = None
        if "Transfer-Encoding" in self.headers or not (raw_length.isascii()
                                                        and raw_length.isdigit()):
            keep = False  # the application frames it, or refuses it: never reused
        else:
            body = stdin = _Body(self.rfile, int(raw_length))
        environ = self.get_environ()
        environ["rindle.socket"] = self.connection  # a stream app checks its client is there
        handler = _Exchange(stdin, self.wfile, self.get_stderr(), environ,
                            multithread=False, keep=keep, body=body, method=self.command,
                            version="1.1" if self.request_version == "HTTP/1.1" else "1.0")
        handler.request_handler = self
        server = self.server
        assert isinstance(server, ThreadingWSGIServer)
        application = server.get_app()
        assert application is not None  # set by make_threading_server before serving
        handler.run(application)
        return handler.keep and handler.completed

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
                          max_connections: int = MAX_CONNECTIONS,
                          keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT,
                          max_requests: int = MAX_REQUESTS) -> ThreadingWSGIServer:
    """Bind a threaded server for ``application`` on ``host:port`` (``0``: any free port).

    The server is bound but not serving: call ``serve_forever()`` (and ``shutdown()`` plus
    ``server_close()`` from another thread to stop it). ``quiet`` drops the access log;
    otherwise :class:`AccessLogHandler` writes it to stderr, without query strings. A
    connection silent for ``idle_timeout`` seconds is closed; past ``max_connections``
    open connections (kept-alive ones count) a new one is answered 503. A kept-alive
    connection waits ``keep_alive_timeout`` seconds (at most ``idle_timeout``) for its next
    request and carries at most ``max_requests`` requests (1: never kept). Raises
    :class:`OSError` when the address cannot be bound and :class:`ValueError` for a
    non-positive timeout or count.
    """
    if not idle_timeout > 0:
        raise ValueError(f"idle_timeout must be > 0 seconds, not {idle_timeout}")
    if not keep_alive_timeout > 0:
        raise ValueError(f"keep_alive_timeout must be > 0 seconds, not {keep_alive_timeout}")
    if max_connections < 1:
        raise ValueError(f"max_connections must be >= 1, not {max_connections}")
    if max_requests < 1:
        raise ValueError(f"max_requests must be >= 1, not {max_requests}")
    family_class = _ThreadingWSGIServerV6 if ":" in host else ThreadingWSGIServer
    server_class: type[ThreadingWSGIServer] = type(
        family_class.__name__, (family_class,), {"max_connections": max_connections})
    base = _QuietHandler if quiet else AccessLogHandler
    handler = type(base.__name__, (base,), {"timeout": idle_timeout,
                                            "keep_alive_timeout": keep_alive_timeout,
                                            "max_requests": max_requests})
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
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(host, port) from None
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
