"""Migrations: one head, upgrade/downgrade round trip, no drift between models and history."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from rindle.database import Database
from rindle.domain.models import Base

TABLES = {
    "media_assets",
    "media_variants",
    "media_upload_sessions",
    "media_attachments",
    "media_processing_runs",
    "media_provider_assets",
    "rindle_jobs",
    "rindle_worker_heartbeats",
}


def test_single_head() -> None:
    db = Database("sqlite://")
    heads = ScriptDirectory.from_config(db._alembic_config()).get_heads()
    assert len(heads) == 1


def test_migrated_schema_has_every_table_and_no_drift(db_url: str) -> None:
    db = Database(db_url)
    assert db.current_revision() == db.head_revision()
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    db.ensure_schema_current()
    db.dispose()


def test_downgrade_to_base_and_back(db_url: str) -> None:
    db = Database(db_url)
    db.downgrade("base")
    assert not TABLES & set(inspect(db.engine).get_table_names())
    assert db.current_revision() is None
    db.migrate()
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    db.dispose()
