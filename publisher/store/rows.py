"""The store's tables (SQLAlchemy ORM rows). Only ``publisher.store`` reads and writes them; the
schema changes through the Alembic migrations in ``publisher/store/migrations``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no zones), always handed back UTC-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    pass


class ReleaseRow(Base):
    __tablename__ = "releases"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    manifest_path: Mapped[str] = mapped_column(Text)
    master_sha256: Mapped[str] = mapped_column(String(64))
    hashes: Mapped[str] = mapped_column(Text, default="{}")  # content hashes, JSON
    master_json: Mapped[str] = mapped_column(Text, default="")  # MasterInfo, JSON
    release_json: Mapped[str] = mapped_column(Text)
    #: the manifest has repeat rules (so the service need not read every release to find them)
    repeats: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PublicationRow(Base):
    __tablename__ = "publications"
    release_id: Mapped[str] = mapped_column(ForeignKey("releases.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    remote_id: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(Text, default="")
    checksum: Mapped[str] = mapped_column(String(64), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    journal: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_publications_state", "state"),
        Index("ix_publications_channel", "channel"),
        Index("ix_publications_updated", "updated_at"),
    )


class RenditionRow(Base):
    __tablename__ = "renditions"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    profile: Mapped[str] = mapped_column(String(32))
    folder: Mapped[str] = mapped_column(Text)
    release_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApprovalRow(Base):
    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    release_id: Mapped[str] = mapped_column(String(64), index=True)
    approved_by: Mapped[str] = mapped_column(Text)
    hashes: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class HeartbeatRow(Base):
    """One running `publisher run` (host and process) and when it last looked at the store."""

    __tablename__ = "service_heartbeats"
    instance: Mapped[str] = mapped_column(String(128), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    poll_seconds: Mapped[float] = mapped_column(Float)


class AccountRow(Base):
    """A small JSON record an adapter shares with every process using the same account."""

    __tablename__ = "account_state"
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    data: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EventRow(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    release_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(128), default="", server_default="")  # "" for the service


class RepeatRunRow(Base):
    """The last run of each repeat rule of a release, so missed runs are counted across restarts."""

    __tablename__ = "repeat_runs"
    release_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it ran (the next run counts from it)
