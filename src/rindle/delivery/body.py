"""PUT request bodies: a capped, de-chunking ``read(n)`` file object."""

from __future__ import annotations

import re
from typing import IO, cast
from wsgiref.types import WSGIEnvironment

__all__ = ["BLOCK_SIZE", "DRAIN_LIMIT", "DRAIN_SMALL", "MAX_TRAILERS", "BodyIncomplete",
           "BodyTooLarge", "RequestBody"]

BLOCK_SIZE = 64 * 1024
DRAIN_LIMIT = 1024 * 1024
#: A refused request's body is read and discarded (so the client sees the answer) only when
#: it declares at most this many bytes; a larger, chunked or unframed one is never waited
#: for.
DRAIN_SMALL = 64 * 1024
#: The most bytes of chunked trailers read; more is broken framing.
MAX_TRAILERS = 8 * 1024
_MAX_CHUNK_LINE = 4096
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")

class BodyTooLarge(Exception):
    """The request body went past its cap."""


class BodyIncomplete(Exception):
    """The request body ended early or its chunked framing is broken."""


class RequestBody:
    """A PUT body as a capped ``read(n)`` file object, de-chunked when the server did not.

    ``length`` is the declared ``Content-Length`` (``None`` when chunked); ``error`` is a
    ``(status, message)`` pair when the framing is unacceptable (411 or 400).
    """

    def __init__(self, stream: IO[bytes], *, length: int | None, chunked: bool,
                 error: tuple[int, str] | None = None) -> None:
        self.stream, self.length, self.chunked, self.error = stream, length, chunked, error
        self.cap: int | None = None
        self._left = length  # bytes still declared (length mode)
        self._chunk_left = 0
        self._done = error is not None or length == 0
        self._total = 0

    @classmethod
    def from_environ(cls, environ: WSGIEnvironment) -> RequestBody:
        """Frame the body of ``environ``: chunked, ``Content-Length``, or an error."""
        return cls.from_headers(cast(IO[bytes], environ["wsgi.input"]),
                                transfer_encoding=str(environ.get("HTTP_TRANSFER_ENCODING", "")),
                                content_length=str(environ.get("CONTENT_LENGTH") or ""),
                                terminated=bool(environ.get("wsgi.input_terminated")))

    @classmethod
    def from_headers(cls, stream: IO[bytes], *, transfer_encoding: str, content_length: str,
                     terminated: bool) -> RequestBody:
        """Frame a body from its ``Transfer-Encoding`` and ``Content-Length`` values ("" when
        absent): chunked, ``Content-Length``, or an error (501 another coding, 400 both
        headers or a bad length, 411 neither). ``terminated``: the server already
        de-chunked ``stream`` (read it to EOF), as ASGI servers always do."""
        coding = transfer_encoding.strip().lower()
        if coding:
            if coding != "chunked":  # gzip, "chunked, identity", "xchunked": not ours
                return cls(stream, length=None, chunked=False,
                           error=(501, "not implemented: only Transfer-Encoding: chunked is "
                                       "accepted"))
            if content_length.strip():
                return cls(stream, length=None, chunked=False,
                           error=(400, "bad request: Content-Length and Transfer-Encoding "
                                       "together"))
            return cls(stream, length=None, chunked=not terminated)
        raw = content_length.strip()
        if not raw:
            return cls(stream, length=None, chunked=False,
                       error=(411, "length required: send Content-Length or a chunked body"))
        if not raw.isascii() or not raw.isdigit():
            return cls(stream, length=None, chunked=False, error=(400, "bad Content-Length"))
        return cls(stream, length=int(raw), chunked=False)

    @property
    def received(self) -> int:
        """Bytes of the body read so far."""
        return self._total

    @property
    def finished(self) -> bool:
        """True once the whole body has been read (or the framing failed)."""
        return self._done

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all when negative); raises :class:`BodyTooLarge` past the cap."""
        if n < 0:
            return b"".join(iter(lambda: self.read(BLOCK_SIZE), b""))
        data = self._read_chunked(n) if self.chunked else self._read_plain(n)
        self._count(len(data))
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` with up to its length of the body's next bytes, with the same
        framing and cap as :meth:`read` (raising what it raises); the number of bytes
        read, 0 at the body's end."""
        view = memoryview(buffer).cast("B")
        reader = getattr(self.stream, "readinto", None)
        if self.chunked or reader is None or self._done or not len(view):
            data = self.read(len(view)) if len(view) else b""
            view[:len(data)] = data
            return len(data)
        count = reader(view[:self._want(len(view))]) or 0
        self._took(count)
        self._count(count)
        return count

    def _count(self, count: int) -> None:
        """Add ``count`` bytes read; :class:`BodyTooLarge` past the cap."""
        self._total += count
        if self.cap is not None and self._total > self.cap:
            raise BodyTooLarge(f"body exceeds {self.cap} bytes")

    def discard(self) -> None:
        """Before a refusal: read and drop a small declared body (at most
        :data:`DRAIN_SMALL` bytes) so the client sees the answer; never wait for a larger,
        chunked or unframed one (the server closes the connection). Never raises."""
        if not self._done and self.length is not None and self.length <= DRAIN_SMALL:
            self.drain()

    def drain(self) -> None:
        """Read and discard what is left, up to :data:`DRAIN_LIMIT` bytes; never raises."""
        self.cap, self._total = None, 0
        try:
            while self._total < DRAIN_LIMIT and self.read(BLOCK_SIZE):
                pass
        except (BodyIncomplete, OSError, ValueError):
            self._done = True

    def _read_plain(self, n: int) -> bytes:
        if self._done or n == 0:
            return b""
        data = self.stream.read(self._want(n))
        self._took(len(data))
        return data

    def _want(self, n: int) -> int:
        """At most ``n`` bytes, never past the declared length."""
        return n if self._left is None else min(n, self._left)

    def _took(self, count: int) -> None:
        """Account ``count`` bytes of a plain body just read: without a declared length
        (de-chunked by the server) EOF ends the body; with one, an early EOF is
        :class:`BodyIncomplete`."""
        if self._left is None:
            self._done = not count
        elif not count:
            self._done = True
            raise BodyIncomplete(f"body ended {self._left} bytes short of Content-Length")
        else:
            self._left -= count
            self._done = self._left == 0

    def _line(self) -> bytes:
        line = self.stream.readline(_MAX_CHUNK_LINE)
        if not line.endswith(b"\n"):
            self._done = True
            raise BodyIncomplete("broken chunked framing")
        return line.rstrip(b"\r\n")

    def _read_chunked(self, n: int) -> bytes:
        while self._chunk_left == 0:
            if self._done or n == 0:
                return b""
            size_text = self._line().split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                self._done = True
                raise BodyIncomplete("broken chunked framing")
            self._chunk_left = int(size_text, 16)
            if self._chunk_left == 0:
                trailers = 0
                while line := self._line():  # trailers, up to the blank line
                    trailers += len(line) + 2
                    if trailers > MAX_TRAILERS:
                        self._done = True
                        raise BodyIncomplete("chunked trailers too large")
                self._done = True
                return b""
        data = self.stream.read(min(n, self._chunk_left))
        if not data:
            self._done = True
            raise BodyIncomplete("body ended inside a chunk")
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and self.stream.read(2) != b"\r\n":
            self._done = True
            raise BodyIncomplete("broken chunked framing")
        return data
