"""SQLAlchemy 2 models for rindle's tables.

Ids are application-generated UUIDv7; timestamps are timezone-aware UTC on every
dialect. Columns follow the reference schema; the only state writes allowed outside
inserts go through the entity's FSM module (:mod:`rindle.domain.fsm`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from rindle.ids import uuid7

__all__ = [
    "Asset",
    "Attachment",
    "Base",
    "Job",
    "ProcessingRun",
    "ProviderAsset",
    "UploadSession",
    "Variant",
    "WebhookEvent",
    "WorkerHeartbeat",
    "table_of",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def table_of(model: type[Base]) -> Table:
    """Return the Core :class:`~sqlalchemy.Table` a declarative model is mapped to.

    SQLAlchemy types ``__table__`` as the wider ``FromClause``; every rindle model is
    mapped to a plain ``Table``, and this narrows to it so Core code can reach ``.c``
    columns and build guarded UPDATEs with precise types.

    Raises:
        TypeError: the model is mapped to something other than a ``Table``.
    """
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a Table (got {type(table).__name__})")
    return table


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use rindle.domain.utcnow()")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
Key = String(1024)


class Base(DeclarativeBase):
    """Declarative base carrying rindle's deterministic constraint names."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        uuid.UUID: Uuid(),
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[str]: JSONType,
    }


class _Timestamps:
    inserted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Asset(_Timestamps, Base):
    """An uploaded original and its probe-owned facts; one row per stored object."""

    __tablename__ = "media_assets"
    # (state, id): the Day-2 verbs walk one state in id order, and the planner needs no
    # statistics to see that this index answers both the filter and the order
    __table_args__ = (Index("ix_media_assets_state_id", "state", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    state: Mapped[str] = mapped_column(String(32), default="staged")
    storage_key: Mapped[str] = mapped_column(Key, unique=True)
    content_type: Mapped[str | None] = mapped_column(String(255))
    byte_size: Mapped[int | None] = mapped_column(BigInteger)
    filename: Mapped[str | None] = mapped_column(String(255))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    recipe_digest: Mapped[str | None] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="image", index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    has_video_track: Mapped[bool | None] = mapped_column(Boolean)
    has_audio_track: Mapped[bool | None] = mapped_column(Boolean)
    error_reason: Mapped[str | None] = mapped_column(Text)
    #: The original's identity pinned at verify (the backend's ETag or generation) and its
    #: sha256 computed at promotion; every later read of the original must match both.
    original_etag: Mapped[str | None] = mapped_column(String(255))
    original_sha256: Mapped[str | None] = mapped_column(String(64))

    variant_rows: Mapped[list[Variant]] = relationship(
        back_populates="asset", order_by="Variant.name", passive_deletes=True
    )

    @property
    def variants(self) -> dict[str, Variant]:
        """This asset's variants by name."""
        return {v.name: v for v in self.variant_rows}

    def __repr__(self) -> str:
        return f"<Asset {self.id} {self.profile} {self.state}>"


class Variant(_Timestamps, Base):
    """A derived rendition of an asset (thumbnail, transcode, waveform)."""

    __tablename__ = "media_variants"
    __table_args__ = (
        Index("uq_media_variants_asset_id_name", "asset_id", "name", unique=True),
        Index("ix_media_variants_state_id", "state", "id"),
        Index("ix_media_variants_storage_key", "storage_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("media_assets.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(32), default="planned")
    recipe_digest: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(Key)
    error_reason: Mapped[str | None] = mapped_column(Text)
    generated_at: Mapped[dt.datetime | None] = mapped_column()
    byte_size: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(String(255))
    output_kind: Mapped[str] = mapped_column(String(16), default="image", index=True)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)

    asset: Mapped[Asset] = relationship(back_populates="variant_rows")

    def __repr__(self) -> str:
        return f"<Variant {self.name} of {self.asset_id} {self.state}>"


class UploadSession(_Timestamps, Base):
    """A direct upload in progress; ``session_uri`` is a bearer secret and never shown."""

    __tablename__ = "media_upload_sessions"
    __table_args__ = (
        Index(
            "ix_media_upload_sessions_resumable_expiry",
            "session_uri_expires_at",
            postgresql_where=text("upload_strategy = 'resumable'"),
            sqlite_where=text("upload_strategy = 'resumable'"),
        ),
        Index(
            "ix_media_upload_sessions_resumable_protocol",
            "upload_strategy",
            "resumable_protocol",
            "state",
        ),
        Index("ix_media_upload_sessions_state_id", "state", "id"),
        Index("ix_media_upload_sessions_upload_key", "upload_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("media_assets.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(32), default="initialized")
    upload_key: Mapped[str] = mapped_column(Key)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    verified_at: Mapped[dt.datetime | None] = mapped_column()
    failure_reason: Mapped[str | None] = mapped_column(Text)
    upload_strategy: Mapped[str] = mapped_column(String(32), default="presigned_put")
    multipart_upload_id: Mapped[str | None] = mapped_column(String(1024))
    multipart_parts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    session_uri: Mapped[str | None] = mapped_column(Text)
    session_uri_expires_at: Mapped[dt.datetime | None] = mapped_column()
    last_known_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    region_hint: Mapped[str | None] = mapped_column(String(64))
    resumable_protocol: Mapped[str | None] = mapped_column(String(32))
    upload_length: Mapped[int | None] = mapped_column(BigInteger)
    expected_size: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(String(255))
    #: Who started the session through the upload HTTP API or the tus server (the id the
    #: host's ``authorize`` returned); ``None`` for sessions started in code.
    actor_id: Mapped[str | None] = mapped_column(String(255), index=True)
    #: A server-side upload protocol's state between requests (tus: metadata,
    #: concatenation, parts and buffered tail); ``None`` for other strategies.
    protocol_state: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    #: A short lease held while a request appends bytes (one writer at a time).
    locked_until: Mapped[dt.datetime | None] = mapped_column()

    asset: Mapped[Asset] = relationship()

    def __repr__(self) -> str:
        uri = "[REDACTED]" if self.session_uri else None
        return f"<UploadSession {self.id} {self.upload_strategy} {self.state} uri={uri}>"


class Attachment(_Timestamps, Base):
    """Links an owner's slot (``("user", "42"), "avatar"``) to an asset.

    A single slot holds one row at ``position`` 0. A collection slot (``collection``
    true on every one of its rows) holds an ordered list: positions ``0 .. n-1`` without
    gaps, each asset at most once. Both rules are unique indexes.
    """

    __tablename__ = "media_attachments"
    __table_args__ = (
        Index(
            "uq_media_attachments_owner_slot_position",
            "owner_type",
            "owner_id",
            "slot",
            "position",
            unique=True,
        ),
        Index(
            "uq_media_attachments_owner_slot_asset",
            "owner_type",
            "owner_id",
            "slot",
            "asset_id",
            unique=True,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("media_assets.id", ondelete="CASCADE"), index=True
    )
    owner_type: Mapped[str] = mapped_column(String(255))
    owner_id: Mapped[str] = mapped_column(String(255))
    slot: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    collection: Mapped[bool] = mapped_column(Boolean, default=False,
                                             server_default=text("false"))

    asset: Mapped[Asset] = relationship()

    def __repr__(self) -> str:
        where = f"[{self.position}]" if self.collection else ""
        return (f"<Attachment {self.owner_type}:{self.owner_id}/{self.slot}{where} -> "
                f"{self.asset_id}>")


class ProcessingRun(_Timestamps, Base):
    """One attempt at producing one variant (audit trail)."""

    __tablename__ = "media_processing_runs"
    __table_args__ = (Index("ix_media_processing_runs_asset_variant", "asset_id", "variant_name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media_assets.id", ondelete="CASCADE"))
    variant_name: Mapped[str] = mapped_column(String(255))
    worker: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(32), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    error_reason: Mapped[str | None] = mapped_column(Text)


class ProviderAsset(_Timestamps, Base):
    """Mirror of an asset at a streaming provider; ids and raw metadata are secrets."""

    __tablename__ = "media_provider_assets"
    __table_args__ = (
        Index(
            "uq_media_provider_assets_provider_asset",
            "provider_name",
            "provider_asset_id",
            unique=True,
            postgresql_where=text("provider_asset_id IS NOT NULL"),
            sqlite_where=text("provider_asset_id IS NOT NULL"),
        ),
        Index(
            "uq_media_provider_assets_asset_profile_provider",
            "asset_id",
            "profile",
            "provider_name",
            unique=True,
        ),
        Index("ix_media_provider_assets_state_updated_at", "state", "updated_at"),
        Index(
            "uq_media_provider_assets_passthrough",
            "provider_name",
            "mux_passthrough",
            unique=True,
            postgresql_where=text("mux_passthrough IS NOT NULL"),
            sqlite_where=text("mux_passthrough IS NOT NULL"),
        ),
        Index(
            "uq_media_provider_assets_upload",
            "provider_name",
            "provider_upload_id",
            unique=True,
            postgresql_where=text("provider_upload_id IS NOT NULL"),
            sqlite_where=text("provider_upload_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    asset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media_assets.id", ondelete="CASCADE"))
    profile: Mapped[str] = mapped_column(String(255))
    provider_name: Mapped[str] = mapped_column(String(64))
    provider_asset_id: Mapped[str | None] = mapped_column(String(255))
    playback_ids: Mapped[list[str]] = mapped_column(default=list)
    playback_policy: Mapped[str | None] = mapped_column(String(16))
    ingest_mode: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32), default="pending", index=True)
    last_event_id: Mapped[str | None] = mapped_column(String(255))
    last_event_at: Mapped[dt.datetime | None] = mapped_column()
    last_sync_error: Mapped[str | None] = mapped_column(Text)
    raw_provider_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    mux_passthrough: Mapped[str | None] = mapped_column(String(255))
    provider_upload_id: Mapped[str | None] = mapped_column(String(255))

    def __repr__(self) -> str:
        from rindle.telemetry import redact_id

        return (
            f"<ProviderAsset {self.provider_name} {redact_id(self.provider_asset_id)} "
            f"{self.state}>"
        )


class WebhookEvent(Base):
    """A provider event id seen by the webhook endpoint, kept for the replay window so a
    replayed event is recognised even after the job that applied it is gone."""

    __tablename__ = "rindle_webhook_events"
    __table_args__ = (Index("ix_rindle_webhook_events_received_at", "received_at"),)

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    occurred_at: Mapped[dt.datetime | None] = mapped_column()


#: Job states that still have work to do; a unique key is unique among these.
LIVE_JOB_STATES = ("available", "executing", "retryable")


class Job(Base):
    """A durable background job, enqueued in the same transaction as the state it serves."""

    __tablename__ = "rindle_jobs"
    __table_args__ = (
        Index(
            "uq_rindle_jobs_unique_key_live",
            "unique_key",
            unique=True,
            postgresql_where=text("state IN ('available', 'executing', 'retryable')"),
            sqlite_where=text("state IN ('available', 'executing', 'retryable')"),
        ),
        Index(
            "ix_rindle_jobs_due",
            "queue",
            "run_at",
            postgresql_where=text("state IN ('available', 'retryable')"),
            sqlite_where=text("state IN ('available', 'retryable')"),
        ),
        Index(
            "ix_rindle_jobs_leased",
            "locked_until",
            postgresql_where=text("state = 'executing'"),
            sqlite_where=text("state = 'executing'"),
        ),
        Index("ix_rindle_jobs_state_id", "state", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    queue: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(128))
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    unique_key: Mapped[str | None] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16), default="available")
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(255))
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    inserted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.queue}/{self.kind} {self.state} attempt={self.attempt}>"


class WorkerHeartbeat(Base):
    """One row per running worker process, refreshed while it runs (read by ``doctor``)."""

    __tablename__ = "rindle_worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
