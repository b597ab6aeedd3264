"""Reading a stream in blocks through a reused buffer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

__all__ = ["BLOCK", "Readable", "read_blocks"]

#: Bytes read from a stream at a time.
BLOCK = 1024 * 1024
#: Buffers kept for the next reads (one per read in progress is taken; more are made
#: when more reads run at once, and at most this many are kept).
_KEPT = 8

_pool: list[bytearray] = []
_pool_lock = threading.Lock()


def _take(size: int) -> bytearray:
    with _pool_lock:
        for index, buffer in enumerate(_pool):
            if len(buffer) == size:
                return _pool.pop(index)
    return bytearray(size)


def _give_back(buffer: bytearray) -> None:
    with _pool_lock:
        if len(_pool) < _KEPT:
            _pool.append(buffer)


class Readable(Protocol):
    """A stream: ``read(n)`` returns up to ``n`` bytes, ``b""`` at its end (``readinto``,
    when it has one, is used instead)."""

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes."""


def read_blocks(source: Readable, size: int = BLOCK) -> Iterator[memoryview]:
    """The bytes of ``source``, in order, as blocks of at most ``size`` bytes until it
    ends.

    A source with ``readinto`` (files, sockets, request bodies) fills one buffer that
    every block of this read reuses (taken from a small pool and given back when the
    iterator ends or is closed, so a request allocates none), so a block is only valid
    until the next one is asked for; any other source's blocks are its own
    ``read(size)`` results. Errors of the source propagate unchanged.
    """
    readinto = getattr(source, "readinto", None)
    if readinto is None:
        while data := source.read(size):
            yield memoryview(data)
        return
    buffer = _take(size)
    view = memoryview(buffer)
    try:
        while count := readinto(view):
            yield view[:count]
    finally:
        view.release()
        _give_back(buffer)
