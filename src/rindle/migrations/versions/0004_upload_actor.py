"""upload sessions bound to their actor; server-side (tus) upload state

* ``media_upload_sessions.actor_id``: who started the session through the upload HTTP API
  or the tus server (the id the host's ``authorize`` callable returned). Every later call
  on the session must come from the same actor; another actor is told the session does
  not exist.
* ``media_upload_sessions.protocol_state``: what a server-side upload protocol keeps
  between requests (tus: metadata, concatenation, the parts and buffered tail of a
  multipart-backed upload).
* ``media_upload_sessions.locked_until``: a short lease a request holds while it appends
  bytes, so two processes never write the same upload at once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import rindle.domain.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media_upload_sessions") as batch:
        batch.add_column(sa.Column("actor_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column(
            "protocol_state",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True))
        batch.add_column(sa.Column(
            "locked_until", rindle.domain.models.UTCDateTime(timezone=True), nullable=True))
    op.create_index("ix_media_upload_sessions_actor_id", "media_upload_sessions",
                    ["actor_id"])


def downgrade() -> None:
    op.drop_index("ix_media_upload_sessions_actor_id", table_name="media_upload_sessions")
    with op.batch_alter_table("media_upload_sessions") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("protocol_state")
        batch.drop_column("actor_id")
