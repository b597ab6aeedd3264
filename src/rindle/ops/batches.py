"""Keyset pagination: walk a table in id order, one bounded batch per short transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    Uuid,
    any_,
    bindparam,
    type_coerce,
)
from sqlalchemy.orm import Session

__all__ = ["DEFAULT_BATCH", "as_uuid", "keyset_batches", "overlapped", "raw_id", "raw_ids_match",
           "walk_states"]

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_BATCH = 500


def raw_id(column: Any, name: str = "id") -> ColumnElement[Any]:
    """``column`` selected as the driver hands it over, labelled ``name``.

    A UUID column then costs nothing per row (SQLite yields its stored hex text,
    PostgreSQL a ``uuid.UUID``); convert the few values you keep with :func:`as_uuid`.
    """
    return type_coerce(column, String()).label(name)


def as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    """A UUID read through :func:`raw_id` (or already one) as a ``uuid.UUID``."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=value)


def raw_ids_match(column: Any, ids: Sequence[Any], dialect: str) -> ColumnElement[bool]:
    """``column`` is one of ``ids``, values read through :func:`raw_id`, bound as they are.

    No id is converted on the way back: SQLite compares its stored hex text, PostgreSQL
    takes the whole list as one ``uuid[]`` parameter (one statement text for every batch).
    """
    if dialect == "postgresql":
        match: ColumnElement[bool] = column == any_(
            bindparam("raw_ids", list(ids), type_=ARRAY(Uuid())))
        return match
    return type_coerce(column, String()).in_(
        bindparam("raw_ids", list(ids), type_=String(), expanding=True))


def overlapped(batches: Iterable[T], work: Callable[[T], R], executor: Executor | None
               ) -> Iterator[tuple[T, R]]:
    """``(batch, work(batch))`` for every batch, in order, with ``work`` running on
    ``executor`` while the next batch is produced (in line when ``executor`` is None).

    A walk thus reads its next page while the storage I/O of the current one is under way.
    At most two batches are in flight. An exception raised by ``work`` surfaces here, at the
    batch it belongs to; abandoning the iteration cancels what has not started.
    """
    if executor is None:
        for batch in batches:
            yield batch, work(batch)
        return
    pending: tuple[T, Future[R]] | None = None
    try:
        for batch in batches:
            future = executor.submit(work, batch)
            if pending is not None:
                done, pending = pending, (batch, future)
                yield done[0], done[1].result()
            else:
                pending = (batch, future)
        if pending is not None:
            done, pending = pending, None
            yield done[0], done[1].result()
    finally:
        if pending is not None:
            pending[1].cancel()


def keyset_batches(
    connect: Callable[[], AbstractContextManager[Connection | Session]],
    stmt: Select[Any],
    id_column: Any,
    *,
    batch_size: int = DEFAULT_BATCH,
    limit: int | None = None,
) -> Iterator[Sequence[Any]]:
    """Yield lists of rows of ``stmt`` ordered by ``id_column``, ``batch_size`` at a time.

    ``connect`` opens a connection (``engine.connect``: plain rows, no ORM bookkeeping) or
    a session, used for the whole walk. Each batch is read in its own short transaction
    (``WHERE id > :last ORDER BY id LIMIT n``), ended before the batch is handed over, so
    no transaction is held while the caller does I/O, memory stays flat however large the
    table is, and rows changed by the caller do not disturb the walk. ``stmt`` must select
    ``id_column`` (plain or through :func:`raw_id`) or be a one-entity select; rows
    expose the id as ``.id``, at index 0, or as the entity's ``id``.
    """
    # built once: the statement's cache key is computed once, not on every page
    first = stmt.order_by(id_column).limit(bindparam("_keyset_size", type_=Integer()))
    after = first.where(id_column > bindparam("_keyset_last", type_=id_column.type))
    last: uuid.UUID | None = None
    seen = 0
    with connect() as conn:  # one connection for the walk; its read transaction ends per page
        while True:
            size = batch_size if limit is None else min(batch_size, limit - seen)
            if size <= 0:
                return
            try:
                if last is None:
                    rows = conn.execute(first, {"_keyset_size": size}).all()
                else:
                    rows = conn.execute(after, {"_keyset_size": size,
                                                "_keyset_last": last}).all()
            finally:
                if isinstance(conn, Session):
                    conn.expunge_all()  # handed-over objects keep their loaded state
                conn.rollback()
            if not rows:
                return
            seen += len(rows)
            last = as_uuid(_row_id(rows[-1]))
            yield rows
            if len(rows) < size:
                return


def walk_states(
    connect: Callable[[], AbstractContextManager[Connection | Session]],
    stmt: Select[Any],
    state_column: Any,
    states: Sequence[str],
    id_column: Any,
    *,
    batch_size: int = DEFAULT_BATCH,
) -> Iterator[Sequence[Any]]:
    """:func:`keyset_batches` over the rows of ``stmt`` in any of ``states``, one state at
    a time: each walk is ``state = :s AND id > :last ORDER BY id``, which a (state, id)
    index answers without sorting, where ``state IN (...)`` would sort every match."""
    for state in states:
        yield from keyset_batches(connect, stmt.where(state_column == state), id_column,
                                  batch_size=batch_size)


def _row_id(row: Any) -> Any:
    """The id of a walked row: its ``id`` column, or the id of the entity it carries."""
    value = getattr(row, "id", None)
    if value is None:
        value = getattr(row[0], "id", row[0])
    return value
