"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import rindle.domain.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "media_assets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("byte_size", sa.BigInteger(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("recipe_digest", sa.String(length=64), nullable=True),
        sa.Column("profile", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("has_video_track", sa.Boolean(), nullable=True),
        sa.Column("has_audio_track", sa.Boolean(), nullable=True),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("inserted_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_assets")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_media_assets_storage_key")),
    )
    with op.batch_alter_table("media_assets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_assets_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_assets_profile"), ["profile"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_assets_state"), ["state"], unique=False)

    op.create_table(
        "rindle_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=128), nullable=False),
        sa.Column(
            "args",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("unique_key", sa.String(length=512), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_by", sa.String(length=255), nullable=True),
        sa.Column("locked_until", rindle.domain.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("inserted_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rindle_jobs")),
    )
    with op.batch_alter_table("rindle_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rindle_jobs_due",
            ["queue", "run_at"],
            unique=False,
            postgresql_where=sa.text("state IN ('available', 'retryable')"),
            sqlite_where=sa.text("state IN ('available', 'retryable')"),
        )
        batch_op.create_index(
            "ix_rindle_jobs_leased",
            ["locked_until"],
            unique=False,
            postgresql_where=sa.text("state = 'executing'"),
            sqlite_where=sa.text("state = 'executing'"),
        )
        batch_op.create_index("ix_rindle_jobs_state_id", ["state", "id"], unique=False)
        batch_op.create_index(
            "uq_rindle_jobs_unique_key_live",
            ["unique_key"],
            unique=True,
            postgresql_where=sa.text("state IN ('available', 'executing', 'retryable')"),
            sqlite_where=sa.text("state IN ('available', 'executing', 'retryable')"),
        )

    op.create_table(
        "rindle_worker_heartbeats",
        sa.Column("worker_id", sa.String(length=255), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column(
            "queues",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("started_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_rindle_worker_heartbeats")),
    )
    with op.batch_alter_table("rindle_worker_heartbeats", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rindle_worker_heartbeats_last_seen_at"), ["last_seen_at"], unique=False
        )

    op.create_table(
        "media_attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("owner_type", sa.String(length=255), nullable=False),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("slot", sa.String(length=255), nullable=False),
        sa.Column("inserted_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["media_assets.id"],
            name=op.f("fk_media_attachments_asset_id_media_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_attachments")),
    )
    with op.batch_alter_table("media_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_media_attachments_asset_id"), ["asset_id"], unique=False
        )
        batch_op.create_index(
            "uq_media_attachments_owner_type_owner_id_slot",
            ["owner_type", "owner_id", "slot"],
            unique=True,
        )

    op.create_table(
        "media_processing_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("variant_name", sa.String(length=255), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("inserted_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["media_assets.id"],
            name=op.f("fk_media_processing_runs_asset_id_media_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_processing_runs")),
    )
    with op.batch_alter_table("media_processing_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_media_processing_runs_asset_variant", ["asset_id", "variant_name"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_media_processing_runs_state"), ["state"], unique=False)

    op.create_table(
        "media_provider_assets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("profile", sa.String(length=255), nullable=False),
        sa.Column("provider_name", sa.String(length=64), nullable=False),
        sa.Column("provider_asset_id", sa.String(length=255), nullable=True),
        sa.Column(
            "playback_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("playback_policy", sa.String(length=16), nullable=True),
        sa.Column("ingest_mode", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("last_event_id", sa.String(length=255), nullable=True),
        sa.Column("last_event_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_sync_error", sa.Text(), nullable=True),
        sa.Column(
            "raw_provider_metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("mux_passthrough", sa.String(length=255), nullable=True),
        sa.Column("provider_upload_id", sa.String(length=255), nullable=True),
        sa.Column("inserted_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["media_assets.id"],
            name=op.f("fk_media_provider_assets_asset_id_media_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_provider_assets")),
    )
    with op.batch_alter_table("media_provider_assets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_provider_assets_state"), ["state"], unique=False)
        batch_op.create_index(
            "ix_media_provider_assets_state_updated_at", ["state", "updated_at"], unique=False
        )
        batch_op.create_index(
            "uq_media_provider_assets_asset_profile_provider",
            ["asset_id", "profile", "provider_name"],
            unique=True,
        )
        batch_op.create_index(
            "uq_media_provider_assets_passthrough",
            ["provider_name", "mux_passthrough"],
            unique=True,
            postgresql_where=sa.text("mux_passthrough IS NOT NULL"),
            sqlite_where=sa.text("mux_passthrough IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_media_provider_assets_provider_asset",
            ["provider_name", "provider_asset_id"],
            unique=True,
            postgresql_where=sa.text("provider_asset_id IS NOT NULL"),
            sqlite_where=sa.text("provider_asset_id IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_media_provider_assets_upload",
            ["provider_name", "provider_upload_id"],
            unique=True,
            postgresql_where=sa.text("provider_upload_id IS NOT NULL"),
            sqlite_where=sa.text("provider_upload_id IS NOT NULL"),
        )

    op.create_table(
        "media_upload_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("upload_key", sa.String(length=1024), nullable=False),
        sa.Column("expires_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("verified_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("upload_strategy", sa.String(length=32), nullable=False),
        sa.Column("multipart_upload_id", sa.String(length=1024), nullable=True),
        sa.Column(
            "multipart_parts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("session_uri", sa.Text(), nullable=True),
        sa.Column(
            "session_uri_expires_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_known_offset", sa.BigInteger(), nullable=False),
        sa.Column("region_hint", sa.String(length=64), nullable=True),
        sa.Column("resumable_protocol", sa.String(length=32), nullable=True),
        sa.Column("upload_length", sa.BigInteger(), nullable=True),
        sa.Column("expected_size", sa.BigInteger(), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("inserted_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["media_assets.id"],
            name=op.f("fk_media_upload_sessions_asset_id_media_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_upload_sessions")),
    )
    with op.batch_alter_table("media_upload_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_media_upload_sessions_asset_id"), ["asset_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_media_upload_sessions_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            "ix_media_upload_sessions_resumable_expiry",
            ["session_uri_expires_at"],
            unique=False,
            postgresql_where=sa.text("upload_strategy = 'resumable'"),
            sqlite_where=sa.text("upload_strategy = 'resumable'"),
        )
        batch_op.create_index(
            "ix_media_upload_sessions_resumable_protocol",
            ["upload_strategy", "resumable_protocol", "state"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_media_upload_sessions_state"), ["state"], unique=False)

    op.create_table(
        "media_variants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("recipe_digest", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=True),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("generated_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("byte_size", sa.BigInteger(), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("output_kind", sa.String(length=16), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("inserted_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rindle.domain.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["media_assets.id"],
            name=op.f("fk_media_variants_asset_id_media_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_variants")),
    )
    with op.batch_alter_table("media_variants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_media_variants_output_kind"), ["output_kind"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_media_variants_state"), ["state"], unique=False)
        batch_op.create_index("uq_media_variants_asset_id_name", ["asset_id", "name"], unique=True)


def downgrade() -> None:

    with op.batch_alter_table("media_variants", schema=None) as batch_op:
        batch_op.drop_index("uq_media_variants_asset_id_name")
        batch_op.drop_index(batch_op.f("ix_media_variants_state"))
        batch_op.drop_index(batch_op.f("ix_media_variants_output_kind"))

    op.drop_table("media_variants")
    with op.batch_alter_table("media_upload_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_upload_sessions_state"))
        batch_op.drop_index("ix_media_upload_sessions_resumable_protocol")
        batch_op.drop_index(
            "ix_media_upload_sessions_resumable_expiry",
            postgresql_where=sa.text("upload_strategy = 'resumable'"),
            sqlite_where=sa.text("upload_strategy = 'resumable'"),
        )
        batch_op.drop_index(batch_op.f("ix_media_upload_sessions_expires_at"))
        batch_op.drop_index(batch_op.f("ix_media_upload_sessions_asset_id"))

    op.drop_table("media_upload_sessions")
    with op.batch_alter_table("media_provider_assets", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_media_provider_assets_upload",
            postgresql_where=sa.text("provider_upload_id IS NOT NULL"),
            sqlite_where=sa.text("provider_upload_id IS NOT NULL"),
        )
        batch_op.drop_index(
            "uq_media_provider_assets_provider_asset",
            postgresql_where=sa.text("provider_asset_id IS NOT NULL"),
            sqlite_where=sa.text("provider_asset_id IS NOT NULL"),
        )
        batch_op.drop_index(
            "uq_media_provider_assets_passthrough",
            postgresql_where=sa.text("mux_passthrough IS NOT NULL"),
            sqlite_where=sa.text("mux_passthrough IS NOT NULL"),
        )
        batch_op.drop_index("uq_media_provider_assets_asset_profile_provider")
        batch_op.drop_index("ix_media_provider_assets_state_updated_at")
        batch_op.drop_index(batch_op.f("ix_media_provider_assets_state"))

    op.drop_table("media_provider_assets")
    with op.batch_alter_table("media_processing_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_processing_runs_state"))
        batch_op.drop_index("ix_media_processing_runs_asset_variant")

    op.drop_table("media_processing_runs")
    with op.batch_alter_table("media_attachments", schema=None) as batch_op:
        batch_op.drop_index("uq_media_attachments_owner_type_owner_id_slot")
        batch_op.drop_index(batch_op.f("ix_media_attachments_asset_id"))

    op.drop_table("media_attachments")
    with op.batch_alter_table("rindle_worker_heartbeats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rindle_worker_heartbeats_last_seen_at"))

    op.drop_table("rindle_worker_heartbeats")
    with op.batch_alter_table("rindle_jobs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_rindle_jobs_unique_key_live",
            postgresql_where=sa.text("state IN ('available', 'executing', 'retryable')"),
            sqlite_where=sa.text("state IN ('available', 'executing', 'retryable')"),
        )
        batch_op.drop_index("ix_rindle_jobs_state_id")
        batch_op.drop_index("ix_rindle_jobs_leased")
        batch_op.drop_index("ix_rindle_jobs_due")

    op.drop_table("rindle_jobs")
    with op.batch_alter_table("media_assets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_assets_state"))
        batch_op.drop_index(batch_op.f("ix_media_assets_profile"))
        batch_op.drop_index(batch_op.f("ix_media_assets_kind"))

    op.drop_table("media_assets")
