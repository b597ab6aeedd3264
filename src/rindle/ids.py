"""Identifiers: time-ordered UUIDv7s the application generates, and parsing ids callers pass."""

from __future__ import annotations

import os
import threading
import time
import uuid

from rindle.errors import NotFound

__all__ = ["parse_id", "uuid7"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """Return a new RFC 9562 UUIDv7, monotonic within this process.

    Ids made later sort after ids made earlier, so primary-key indexes stay local and
    keyset pagination walks rows in creation order.
    """
    global _last_ms, _counter
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last_ms:
            _counter += 1
            if _counter >= 1 << 12:  # 12-bit sequence exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            now = _last_ms
        else:
            _last_ms = now
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave headroom
        seq = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (now & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= seq << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def parse_id(value: uuid.UUID | str, entity: str) -> uuid.UUID:
    """``value`` as a ``uuid.UUID`` (returned as is when it already is one).

    A value that is not a UUID names no row, so it raises :class:`~rindle.errors.NotFound`
    for ``entity`` (``"asset"``, ``"upload session"``, ...) with ``value`` as given.
    """
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(entity, value) from None
