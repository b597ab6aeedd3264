"""Keyset batches: every row once, in id order, in bounded pages."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from rindle import Rindle
from rindle.domain.models import Asset, utcnow
from rindle.ops.batches import as_uuid, keyset_batches, raw_id


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
