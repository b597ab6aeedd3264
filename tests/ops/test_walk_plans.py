"""Every page of every Day-2 walk is an index range, never a sort of all matching rows.

SQLite without ``ANALYZE`` statistics (the state of most SQLite databases) used to pick
the single-column state index and sort every matching row for every page: quadratic in
the catalogue. The (state, id) indexes and one-state-at-a-time walks make each page an
index range whatever the statistics say. This test runs every walking verb on a database
that has never been analysed and asks SQLite for the plan of each paged query it ran.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, update

from rindle import Rindle
from rindle.domain.models import UploadSession, utcnow


def test_every_paged_query_is_an_index_range_without_statistics(
        opsapp: Rindle, seed: Callable[..., Any], dialect: str) -> None:
    if dialect != "sqlite":
        pytest.skip("PostgreSQL plans by cost from statistics; SQLite's plan is the one "
                    "that went wrong without them")
    seed(3)
    seed(2, state="failed")
    opsapp.initiate_upload("gallery", filename="x.jpg")
    with opsapp.db.transaction() as s:
        s.execute(update(UploadSession).values(expires_at=utcnow() - dt.timedelta(hours=2)))
    with opsapp.db.engine.connect() as conn:
        assert not conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'").all()

    paged: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "LIMIT" in statement:
            paged.append((statement, parameters))

    event.listen(opsapp.db.engine, "before_cursor_execute", record)
    try:
        opsapp.ops.verify_storage()
        opsapp.ops.regenerate_variants()
        opsapp.ops.abort_incomplete_uploads()
        opsapp.ops.cleanup_orphans(dry_run=False)
        opsapp.ops.backfill_metadata()
    finally:
        event.remove(opsapp.db.engine, "before_cursor_execute", record)

    walks = [(sql, params) for sql, params in paged if "ORDER BY" in sql]
    assert len({sql for sql, _ in walks}) >= 6  # each verb's walk was seen
    with opsapp.db.engine.connect() as conn:
        for sql, params in walks:
            plan = " | ".join(row[-1] for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + sql, params).all())
            assert "TEMP B-TREE" not in plan, f"{plan}\n{sql}"
