"""attachment collections: ordered slots holding several assets

* ``media_attachments.position`` (integer, 0 for every existing row) orders the assets
  of a collection slot; a single slot keeps its one row at position 0.
* ``media_attachments.collection`` (boolean, false for every existing row) marks the rows
  of a collection slot, so reading a one-asset collection back still gives a list.
* The unique index on (owner_type, owner_id, slot) becomes one on (owner_type, owner_id,
  slot, position), so no two assets share a position, plus one on (owner_type, owner_id,
  slot, asset_id), so an asset is in a collection at most once. A single slot still holds
  one row: the service only ever writes position 0 there.

SQLite runs the change in batch mode (the table is copied); PostgreSQL alters in place.
The downgrade refuses while any slot holds more than one asset (dropping rows here would
leave their assets unreleased); detach those first.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLE = "media_attachments"
_OLD_UNIQUE = "uq_media_attachments_owner_type_owner_id_slot"


def upgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:
        batch.add_column(sa.Column("position", sa.Integer(), nullable=False,
                                   server_default=sa.text("0")))
        batch.add_column(sa.Column("collection", sa.Boolean(), nullable=False,
                                   server_default=sa.text("false")))
        batch.drop_index(_OLD_UNIQUE)
        batch.create_index("uq_media_attachments_owner_slot_position",
                           ["owner_type", "owner_id", "slot", "position"], unique=True)
        batch.create_index("uq_media_attachments_owner_slot_asset",
                           ["owner_type", "owner_id", "slot", "asset_id"], unique=True)


def downgrade() -> None:
    crowded = op.get_bind().execute(sa.text(
        f"SELECT count(*) FROM {_TABLE} WHERE position <> 0")).scalar()
    if crowded:
        raise RuntimeError(
            f"cannot downgrade below 0005: {crowded} attachment(s) sit past position 0 of a "
            "collection slot; detach them (app.detach(owner, slot, asset_id)) first")
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_index("uq_media_attachments_owner_slot_asset")
        batch.drop_index("uq_media_attachments_owner_slot_position")
        batch.create_index(_OLD_UNIQUE, ["owner_type", "owner_id", "slot"], unique=True)
        batch.drop_column("collection")
        batch.drop_column("position")
