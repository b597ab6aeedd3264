"""Keyset batches: every row once, in id order, in bounded pages."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from rindle import Rindle
from rindle.domain.models import Asset, utcnow
from rindle.ops.batches import as_uuid, keyset_batches, overlapped, raw_id, raw_ids_match


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
@given(batch=st.integers(1, 7))
def test_keyset_walk_sees_every_row_once_in_id_order(app: Rindle, batch: int) -> None:
    with app.db.engine.begin() as conn:
        conn.execute(Asset.__table__.delete())
    ids = _seed_assets(app, 23)
    stmt = select(raw_id(Asset.id), Asset.storage_key)
    pages = list(keyset_batches(app.db.engine.connect, stmt, Asset.id, batch_size=batch))
    seen = [as_uuid(row.id) for page in pages for row in page]
    assert seen == ids
    assert all(len(page) <= batch for page in pages)
    assert [row.storage_key for page in pages for row in page] == [f"k/{i}" for i in ids]


def test_an_entity_walk_pages_through_and_hands_over_loaded_objects(app: Rindle) -> None:
    ids = _seed_assets(app, 7)
    pages = list(keyset_batches(app.db.sessionmaker, select(Asset), Asset.id, batch_size=3))
    assert [len(page) for page in pages] == [3, 3, 1]
    assets = [asset for page in pages for (asset,) in page]
    assert [a.id for a in assets] == ids
    assert all(a.storage_key == f"k/{a.id}" for a in assets)  # loaded, usable detached


def test_raw_ids_match_selects_exactly_the_ids_read_raw(app: Rindle) -> None:
    ids = _seed_assets(app, 9)
    dialect = app.db.engine.dialect.name
    with app.db.engine.connect() as conn:
        raw = [row.id for row in conn.execute(select(raw_id(Asset.id)).order_by(Asset.id))]
    chosen = raw[1::3]
    with app.db.engine.begin() as conn:
        gone = conn.execute(Asset.__table__.delete().where(
            raw_ids_match(Asset.id, chosen, dialect))).rowcount
    with app.db.engine.connect() as conn:
        left = list(conn.scalars(select(Asset.id).order_by(Asset.id)))
    assert gone == 3
    assert left == [i for i in ids if i not in {ids[1], ids[4], ids[7]}]


def test_overlapped_keeps_order_and_works_ahead_of_the_consumer() -> None:
    produced: list[int] = []
    started = {i: threading.Event() for i in range(5)}

    def batches() -> Iterator[int]:
        for i in range(5):
            produced.append(i)
            yield i

    def work(i: int) -> int:
        started[i].set()
        return i * 10

    with ThreadPoolExecutor(max_workers=1) as pool:
        walk = overlapped(batches(), work, pool)
        first = next(walk)
        # batch 1 was read (and its work submitted) before batch 0 was handed over
        assert first == (0, 0) and produced == [0, 1] and started[1].wait(120)
        assert list(walk) == [(1, 10), (2, 20), (3, 30), (4, 40)]
    assert list(overlapped(iter(range(3)), work, None)) == [(0, 0), (1, 10), (2, 20)]


def test_overlapped_raises_a_work_failure_at_its_own_batch() -> None:
    def work(i: int) -> int:
        if i == 2:
            raise KeyboardInterrupt  # what an interrupted storage call raises
        return i

    with ThreadPoolExecutor(max_workers=1) as pool:
        seen = []
        with pytest.raises(KeyboardInterrupt):
            for batch, result in overlapped(iter(range(5)), work, pool):
                seen.append((batch, result))
    assert seen == [(0, 0), (1, 1)]
