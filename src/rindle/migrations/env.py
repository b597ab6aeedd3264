"""Alembic environment for rindle's shipped migrations (run from code by rindle.database)."""

from __future__ import annotations

from alembic import context

from rindle.domain.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable from a hand-run alembic CLI
    raise RuntimeError("rindle migrations run from code: use `rindle migrate` or app.migrate()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
