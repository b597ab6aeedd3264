"""trust gate: pinned original identity, key lookups for delivery, seen webhook events

* ``media_assets.original_etag`` / ``original_sha256``: the identity of the original that
  verify checked (the backend's ETag or generation) and its sha256 computed at promotion.
  Every later read of the original compares against them; a mismatch quarantines the
  asset with ``original_changed``.
* Indexes on ``media_variants.storage_key`` and ``media_upload_sessions.upload_key``: the
  embedded delivery app looks up the row behind each requested key (its state and its
  sniffed content type) instead of trusting the key's extension.
* ``rindle_webhook_events``: provider event ids seen within the replay window, so a
  replayed event is dropped even after the job that applied it is gone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rindle.domain.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media_assets") as batch:
        batch.add_column(sa.Column("original_etag", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("original_sha256", sa.String(length=64), nullable=True))
    op.create_index("ix_media_variants_storage_key", "media_variants", ["storage_key"])
    op.create_index("ix_media_upload_sessions_upload_key", "media_upload_sessions",
                    ["upload_key"])
    op.create_table(
        "rindle_webhook_events",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", rindle.domain.models.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column("occurred_at", rindle.domain.models.UTCDateTime(timezone=True),
                  nullable=True),
        sa.PrimaryKeyConstraint("provider", "event_id", name=op.f("pk_rindle_webhook_events")),
    )
    op.create_index("ix_rindle_webhook_events_received_at", "rindle_webhook_events",
                    ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_rindle_webhook_events_received_at", table_name="rindle_webhook_events")
    op.drop_table("rindle_webhook_events")
    op.drop_index("ix_media_upload_sessions_upload_key", table_name="media_upload_sessions")
    op.drop_index("ix_media_variants_storage_key", table_name="media_variants")
    with op.batch_alter_table("media_assets") as batch:
        batch.drop_column("original_sha256")
        batch.drop_column("original_etag")
