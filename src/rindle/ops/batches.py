"""Keyset pagination: walk a table in id order, one bounded batch per short transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

__all__ = ["DEFAULT_BATCH", "keyset_batches"]

DEFAULT_BATCH = 500
T = TypeVar("T")


def keyset_batches(
    session_factory: Callable[[], Session],
    stmt: Select[Any],
    id_column: Any,
    *,
    batch_size: int = DEFAULT_BATCH,
    limit: int | None = None,
) -> Iterator[Sequence[Any]]:
    """Yield lists of rows of ``stmt`` ordered by ``id_column``, ``batch_size`` at a time.

    Each batch is read in its own short session (``WHERE id > :last ORDER BY id LIMIT n``),
    so no transaction is held while the caller does I/O, memory stays flat however large
    the table is, and rows changed by the caller do not disturb the walk. ``stmt`` must
    select ``id_column`` (rows expose it as ``.id`` or at index 0).
    """
    last: uuid.UUID | None = None
    seen = 0
    while True:
        size = batch_size if limit is None else min(batch_size, limit - seen)
        if size <= 0:
            return
        page = stmt.order_by(id_column).limit(size)
        if last is not None:
            page = page.where(id_column > last)
        with session_factory() as s:
            rows = s.execute(page).all()
        if not rows:
            return
        seen += len(rows)
        yield rows
        tail = rows[-1]
        last = getattr(tail, "id", None) or tail[0]
        if len(rows) < size:
            return
