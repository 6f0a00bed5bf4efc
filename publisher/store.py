"""The state store: releases, renditions, publications, approvals and an append-only event log.

SQLite by default (``$PUBLISHER_HOME/state.db``, created 0600), any SQLAlchemy URL otherwise.
Every write commits at once: the core records an intent before each side effect and the result
right after, so a process killed at any instant can be resumed by running the command again.
The store knows only models; it never sees channels, the transcoder or the CLI.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    inspect,
    select,
)
from sqlalchemy import text as sql
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from publisher.errors import StoreError
from publisher.models import Event, MasterInfo, Publication, Release, State


def utcnow() -> datetime:
    return datetime.now(UTC)


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


class EventRow(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    release_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(128), default="")  # who did it; "" for the service


_PUB_FIELDS = {"state", "remote_id", "url", "checksum", "error", "note", "publish_at", "retry_at",
               "attempts", "kind"}


def sqlite_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'state.db'}"


class Store:
    #: the person whose actions this store records (``as_actor``); "" for the service and workers
    actor: str = ""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.engine: Engine = create_engine(url, future=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            Base.metadata.create_all(self.engine)
            _add_actor_column(self.engine)
        except SQLAlchemyError as exc:
            reason = _reason(exc, self.url)
            raise StoreError(f"cannot open the state store {_safe_url(url)}: {reason}") from None

    def as_actor(self, name: str) -> Store:
        """The same store (same engine), recording ``name`` as the actor of every event."""
        other = copy.copy(self)
        other.actor = name
        return other

    @contextmanager
    def session(self) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as s, s.begin():
                yield s
        except OperationalError as exc:
            raise StoreError(f"state store {_safe_url(self.url)}: {_reason(exc, self.url)}") from None

    # --- releases ----------------------------------------------------------------------------
    def save_release(self, release: Release, master: MasterInfo, hashes: dict[str, str]) -> None:
        now = utcnow()
        with self.session() as s:
            row = s.get(ReleaseRow, release.id)
            if row is None:
                row = ReleaseRow(id=release.id, created_at=now)
                s.add(row)
            row.manifest_path = str(release.manifest_path)
            row.master_sha256 = master.sha256
            row.master_json = master.model_dump_json()
            row.hashes = json.dumps(hashes, sort_keys=True)
            row.release_json = release.model_dump_json()
            row.updated_at = now

    def get_release(self, release_id: str) -> Release | None:
        with self.session() as s:
            row = s.get(ReleaseRow, release_id)
            return Release.model_validate_json(row.release_json) if row else None

    def get_master(self, release_id: str) -> MasterInfo | None:
        with self.session() as s:
            row = s.get(ReleaseRow, release_id)
            return MasterInfo.model_validate_json(row.master_json) if row and row.master_json else None

    def release_hashes(self, release_id: str) -> dict[str, str]:
        with self.session() as s:
            row = s.get(ReleaseRow, release_id)
            return dict(json.loads(row.hashes)) if row else {}

    def release_ids(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(ReleaseRow.id).order_by(ReleaseRow.created_at)))

    # --- publications ------------------------------------------------------------------------
    def get_publication(self, release_id: str, channel: str) -> Publication | None:
        with self.session() as s:
            row = s.get(PublicationRow, (release_id, channel))
            return _publication(row) if row else None

    def ensure_publication(self, release_id: str, channel: str, kind: str,
                           publish_at: datetime | None) -> Publication:
        with self.session() as s:
            row = s.get(PublicationRow, (release_id, channel))
            if row is None:
                now = utcnow()
                row = PublicationRow(release_id=release_id, channel=channel, kind=kind, state="pending",
                                     publish_at=publish_at, journal="{}", created_at=now, updated_at=now,
                                     remote_id="", url="", checksum="", error="", note="", attempts=0)
                s.add(row)
            elif row.publish_at != publish_at:
                row.publish_at = publish_at
            return _publication(row)

    def update_publication(self, release_id: str, channel: str, **fields: Any) -> Publication:
        unknown = set(fields) - _PUB_FIELDS
        if unknown:
            raise ValueError(f"unknown publication fields {unknown}")
        with self.session() as s:
            row = s.get(PublicationRow, (release_id, channel))
            if row is None:
                raise StoreError(f"no publication of {release_id} on {channel}")
            for k, v in fields.items():
                setattr(row, k, v)
            row.updated_at = utcnow()
            return _publication(row)

    def save_journal(self, release_id: str, channel: str, data: dict[str, Any]) -> None:
        with self.session() as s:
            row = s.get(PublicationRow, (release_id, channel))
            if row is None:
                raise StoreError(f"no publication of {release_id} on {channel}")
            row.journal = json.dumps(data, sort_keys=True, default=str)
            row.updated_at = utcnow()

    def publications(self, release_id: str | None = None, *, channel: str | None = None,
                     state: str | None = None, since: datetime | None = None) -> list[Publication]:
        q = select(PublicationRow)
        if release_id:
            q = q.where(PublicationRow.release_id == release_id)
        if channel:
            q = q.where(PublicationRow.channel == channel)
        if state:
            q = q.where(PublicationRow.state == state)
        if since:
            q = q.where(PublicationRow.updated_at >= since)
        q = q.order_by(PublicationRow.release_id, PublicationRow.channel)
        with self.session() as s:
            return [_publication(r) for r in s.scalars(q)]

    # --- renditions, approvals, events -------------------------------------------------------
    def record_rendition(self, key: str, profile: str, folder: Path, release_id: str) -> None:
        with self.session() as s:
            if s.get(RenditionRow, key) is None:
                s.add(RenditionRow(key=key, profile=profile, folder=str(folder), release_id=release_id,
                                   created_at=utcnow()))

    def save_approval(self, release_id: str, approved_by: str, hashes: dict[str, str]) -> None:
        with self.session() as s:
            s.add(ApprovalRow(release_id=release_id, approved_by=approved_by,
                              hashes=json.dumps(hashes, sort_keys=True), at=utcnow()))

    def approval(self, release_id: str) -> tuple[str, datetime, dict[str, str]] | None:
        q = (select(ApprovalRow).where(ApprovalRow.release_id == release_id)
             .order_by(ApprovalRow.id.desc()).limit(1))
        with self.session() as s:
            row = s.scalars(q).first()
            return (row.approved_by, row.at, json.loads(row.hashes)) if row else None

    def add_event(self, release_id: str, action: str, message: str = "", channel: str = "",
                  actor: str | None = None) -> None:
        with self.session() as s:
            s.add(EventRow(at=utcnow(), release_id=release_id, channel=channel, action=action,
                           message=message, actor=self.actor if actor is None else actor))

    def last_actor(self, release_id: str, actions: tuple[str, ...]) -> str:
        """Who recorded the latest of these actions on the release ("" when nobody did)."""
        q = (select(EventRow.actor).where(EventRow.release_id == release_id, EventRow.action.in_(actions))
             .order_by(EventRow.id.desc()).limit(1))
        with self.session() as s:
            return s.scalars(q).first() or ""

    def events(self, release_id: str | None = None, limit: int = 1000) -> list[Event]:
        q = select(EventRow)
        if release_id:
            q = q.where(EventRow.release_id == release_id)
        q = q.order_by(EventRow.id.desc()).limit(limit)
        with self.session() as s:
            rows = list(s.scalars(q))
        return [Event(at=r.at, release=r.release_id, channel=r.channel, action=r.action,
                      message=r.message, actor=r.actor or "") for r in reversed(rows)]


def _publication(row: PublicationRow) -> Publication:
    return Publication(
        release=row.release_id, channel=row.channel, kind=row.kind, state=_state(row.state),
        remote_id=row.remote_id, url=row.url, checksum=row.checksum, error=row.error, note=row.note,
        publish_at=row.publish_at, retry_at=row.retry_at, attempts=row.attempts,
        created_at=row.created_at, updated_at=row.updated_at, journal=json.loads(row.journal or "{}"),
    )


def _state(value: str) -> State:
    return cast(State, value)


def _add_actor_column(engine: Engine) -> None:
    """A store made before events had an actor gets the column (until schema migrations exist)."""
    columns = {c["name"] for c in inspect(engine).get_columns("events")}
    if "actor" not in columns:
        with engine.begin() as conn:
            conn.execute(sql("ALTER TABLE events ADD COLUMN actor VARCHAR(128) NOT NULL DEFAULT ''"))


def _sqlite_pragmas(conn: Any, _record: Any) -> None:
    cur = conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _safe_url(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


def _reason(exc: Exception, url: str = "") -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig or exc).splitlines()[0]
    if url.startswith("sqlite:///") and ("disk" in text or "full" in text):
        folder = Path(url.removeprefix("sqlite:///")).parent
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(folder).free
            if free < 1024 * 1024:
                return (f"{text}: the disk holding {folder} is full ({free // 1024} kB free); "
                        "free some space and run the same command again")
    return text
