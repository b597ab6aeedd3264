"""Keyset batches and read-ahead: order, completeness, errors and early exit."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from rindle import Rindle
from rindle.domain.models import Asset, utcnow
from rindle.ops.batches import as_uuid, keyset_batches, raw_id, read_ahead


@given(st.lists(st.integers(), max_size=40), st.integers(1, 4))
def test_read_ahead_keeps_order_and_completeness(items: list[int], depth: int) -> None:
    assert list(read_ahead(iter(items), depth=depth)) == items


def test_read_ahead_reraises_the_producers_error_where_it_surfaces() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1]


def test_abandoning_read_ahead_stops_the_helper() -> None:
    produced = []

    def items() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    it = read_ahead(items())
    assert next(it) == 0
    it.close()
    deadline = time.monotonic() + 5
    while any(t.name == "rindle-read-ahead" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "read-ahead helper still running"
        time.sleep(0.01)
    assert len(produced) <= 4  # stopped a batch or two ahead, not at the end


def _seed_assets(app: Rindle, n: int) -> list[uuid.UUID]:
    now = utcnow()
    ids = sorted(uuid.uuid4() for _ in range(n))
    with app.db.engine.begin() as conn:
        conn.execute(insert(Asset.__table__), [
            {"id": i, "state": "ready", "storage_key": f"k/{i}", "profile": "p", "kind": "image",
             "metadata": {}, "inserted_at": now, "updated_at": now} for i in ids])
    return ids


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # rows reset per example
@given(batch=st.integers(1, 7), prefetch=st.booleans())
def test_keyset_walk_sees_every_row_once_in_id_order(app: Rindle, batch: int,
                                                     prefetch: bool) -> None:
    with app.db.engine.begin() as conn:
        conn.execute(Asset.__table__.delete())
    ids = _seed_assets(app, 23)
    stmt = select(raw_id(Asset.id), Asset.storage_key)
    pages = list(keyset_batches(app.db.engine.connect, stmt, Asset.id, batch_size=batch,
                                prefetch=prefetch))
    seen = [as_uuid(row.id) for page in pages for row in page]
    assert seen == ids
    assert all(len(page) <= batch for page in pages)
    assert [row.storage_key for page in pages for row in page] == [f"k/{i}" for i in ids]
