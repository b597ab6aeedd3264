"""Keyset pagination: walk a table in id order, one bounded batch per short transaction."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Integer, Select, String, bindparam, type_coerce
from sqlalchemy.orm import Session

__all__ = ["DEFAULT_BATCH", "as_uuid", "keyset_batches", "raw_id", "read_ahead"]

DEFAULT_BATCH = 500
T = TypeVar("T")


def raw_id(column: Any, name: str = "id") -> ColumnElement[Any]:
    """``column`` selected as the driver hands it over, labelled ``name``.

    A UUID column then costs nothing per row (SQLite yields its stored hex text,
    PostgreSQL a ``uuid.UUID``); convert the few values you keep with :func:`as_uuid`.
    """
    return type_coerce(column, String()).label(name)


def as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    """A UUID read through :func:`raw_id` (or already one) as a ``uuid.UUID``."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value)


def keyset_batches(
    connect: Callable[[], AbstractContextManager[Connection | Session]],
    stmt: Select[Any],
    id_column: Any,
    *,
    batch_size: int = DEFAULT_BATCH,
    limit: int | None = None,
    prefetch: bool = False,
) -> Iterator[Sequence[Any]]:
    """Yield lists of rows of ``stmt`` ordered by ``id_column``, ``batch_size`` at a time.

    ``connect`` opens a connection (``engine.connect``: plain rows, no ORM bookkeeping)
    or a session. Each batch is read in its own short connection
    (``WHERE id > :last ORDER BY id LIMIT n``), so no transaction is held while the caller
    does I/O, memory stays flat however large the table is, and rows changed by the caller
    do not disturb the walk. ``stmt`` must select ``id_column`` (plain or through
    :func:`raw_id`); rows expose it as ``.id`` or at index 0. With ``prefetch`` the next
    batch is read on a helper thread while the caller works on the current one.
    """
    pages = _keyset_pages(connect, stmt, id_column, batch_size, limit)
    return read_ahead(pages) if prefetch else pages


def _keyset_pages(connect: Callable[[], AbstractContextManager[Connection | Session]],
                  stmt: Select[Any], id_column: Any, batch_size: int, limit: int | None
                  ) -> Iterator[Sequence[Any]]:
    # built once: the statement's cache key is computed once, not on every page
    first = stmt.order_by(id_column).limit(bindparam("_keyset_size", type_=Integer()))
    after = first.where(id_column > bindparam("_keyset_last", type_=id_column.type))
    last: uuid.UUID | None = None
    seen = 0
    while True:
        size = batch_size if limit is None else min(batch_size, limit - seen)
        if size <= 0:
            return
        with connect() as conn:
            if last is None:
                rows = conn.execute(first, {"_keyset_size": size}).all()
            else:
                rows = conn.execute(after, {"_keyset_size": size, "_keyset_last": last}).all()
        if not rows:
            return
        seen += len(rows)
        tail = rows[-1]
        last = as_uuid(getattr(tail, "id", None) or tail[0])
        yield rows
        if len(rows) < size:
            return


_DONE = object()


def read_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Iterate ``items`` with up to ``depth`` of them produced ahead on a helper thread.

    Order is kept, an exception raised while producing is re-raised here at the point it
    would have surfaced, and abandoning the iteration stops the helper.
    """
    buffer: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((_DONE, exc))

    helper = threading.Thread(target=produce, name="rindle-read-ahead", daemon=True)
    helper.start()
    try:
        while True:
            item, error = buffer.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        helper.join(timeout=5)
