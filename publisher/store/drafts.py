"""Machine drafts (``publisher draft``), kept in the state store by the sha256 of the drafted text:
a text is a machine draft while its hash is unchanged and no approval came after it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from publisher.store import Store, utcnow
from publisher.store.rows import Base, UTCDateTime


class DraftRow(Base):
    __tablename__ = "drafts"
    release_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)  # e.g. title.zh-Hans
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))  # how it was drafted, e.g. "zh-Hant (OpenCC hk2s)"
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))


@dataclass(frozen=True)
class Draft:
    key: str
    sha256: str
    source: str
    at: datetime
    actor: str


def record_draft(store: Store, release_id: str, key: str, sha256: str, source: str) -> None:
    with store.session() as s:
        row = s.get(DraftRow, (release_id, key))
        if row is None:
            s.add(DraftRow(release_id=release_id, key=key, sha256=sha256, source=source, at=utcnow(),
                           actor=store.actor))
        else:
            row.sha256, row.source, row.at, row.actor = sha256, source, utcnow(), store.actor


def drafts(store: Store, release_id: str) -> list[Draft]:
    q = select(DraftRow).where(DraftRow.release_id == release_id).order_by(DraftRow.key)
    with store.session() as s:
        return [Draft(r.key, r.sha256, r.source, r.at, r.actor) for r in s.scalars(q)]


def drafted(store: Store, release_ids: list[str]) -> set[str]:
    """Which of ``release_ids`` have drafts recorded."""
    q = select(DraftRow.release_id).where(DraftRow.release_id.in_(release_ids)).distinct()
    with store.session() as s:
        return set(s.scalars(q))
