"""(state, id) indexes for keyset walks

The Day-2 verbs walk one state of a table in id order (``WHERE state = :s AND id > :last
ORDER BY id LIMIT n``). A (state, id) index answers the filter and the order together, so
every page costs the same however large the table is, and the plan does not depend on
``ANALYZE`` having run (without statistics SQLite picked the single-column state index
and sorted every matching row for every page). The (state, id) index also serves every
lookup by state alone, so the single-column indexes go.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("media_assets", "media_variants", "media_upload_sessions")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_state_id", table, ["state", "id"], unique=False)
        op.drop_index(f"ix_{table}_state", table_name=table)


def downgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_state", table, ["state"], unique=False)
        op.drop_index(f"ix_{table}_state_id", table_name=table)
