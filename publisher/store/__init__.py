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
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import create_engine, delete, event, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from publisher.errors import StoreError
from publisher.models import (
    Event,
    MasterInfo,
    Publication,
    Release,
    Selection,
    State,
    StatusQuery,
    StatusRow,
)
from publisher.store.migrate import upgrade
from publisher.store.rows import (
    AccountRow,
    ApprovalRow,
    EventRow,
    HeartbeatRow,
    PublicationRow,
    ReleaseRow,
    RenditionRow,
    RepeatRunRow,
)

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


_PUB_FIELDS = {"state", "remote_id", "url", "checksum", "error", "note", "publish_at", "retry_at",
               "attempts", "kind"}


def sqlite_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'state.db'}"


def sqlite_has_release(url: str, release_id: str) -> bool:
    """Whether the SQLite store at ``url`` holds ``release_id``, read without creating or changing
    anything (for `check`, which writes nothing)."""
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            return db.execute("select 1 from releases where id = ?", (release_id,)).fetchone() is not None
    except sqlite3.Error:
        return False


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
            upgrade(self.engine)
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
            row.repeats = bool(release.repeat)
            row.updated_at = now

    def forget_release(self, release_id: str) -> None:
        """Remove a release recorded by a run that was then refused (its master did not decode),
        with its publications and events, as if it had never been recorded."""
        with self.session() as s:
            for table in (PublicationRow, EventRow, RenditionRow):
                s.execute(delete(table).where(table.release_id == release_id))
            s.execute(delete(ReleaseRow).where(ReleaseRow.id == release_id))

    def get_release(self, release_id: str) -> Release | None:
        with self.session() as s:
            row = s.get(ReleaseRow, release_id)
            text = row.release_json if row else None
        return _parse(Release, text, release_id, "release") if text is not None else None

    def get_master(self, release_id: str) -> MasterInfo | None:
        with self.session() as s:
            row = s.get(ReleaseRow, release_id)
            text = row.master_json if row else None
        return _parse(MasterInfo, text, release_id, "master facts") if text else None

    def has_release(self, release_id: str) -> bool:
        with self.session() as s:
            return s.get(ReleaseRow, release_id) is not None

    def release_hashes(self, release_id: str) -> dict[str, str]:
        with self.session() as s:
            row = s.get(ReleaseRow, release_id)
            return dict(json.loads(row.hashes)) if row else {}

    def release_ids(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(ReleaseRow.id).order_by(ReleaseRow.created_at)))

    def release_created(self, release_id: str) -> datetime | None:
        with self.session() as s:
            return s.scalar(select(ReleaseRow.created_at).where(ReleaseRow.id == release_id))

    def releases(self, ids: list[str]) -> dict[str, Release | None]:
        """The stored releases by id (None for one whose record cannot be read)."""
        if not ids:
            return {}
        with self.session() as s:
            q = select(ReleaseRow.id, ReleaseRow.release_json).where(ReleaseRow.id.in_(ids))
            rows = list(s.execute(q))
        out: dict[str, Release | None] = {}
        for rid, text in rows:
            try:
                out[rid] = Release.model_validate_json(text)
            except ValidationError:
                out[rid] = None
        return out

    def repeating(self) -> list[tuple[str, str, datetime]]:
        """(id, stored release JSON, first recorded) of every release with repeat rules; the JSON
        is parsed by the caller, so one damaged record cannot hide the others."""
        q = select(ReleaseRow.id, ReleaseRow.release_json, ReleaseRow.created_at).where(ReleaseRow.repeats)
        with self.session() as s:
            return [(rid, text, created) for rid, text, created in s.execute(q)]

    def last_repeat(self, release_id: str, rule: int) -> datetime | None:
        """When the rule last ran."""
        with self.session() as s:
            row = s.get(RepeatRunRow, (release_id, rule))
            return row.at if row else None

    def record_repeat(self, release_id: str, rule: int, at: datetime, message: str) -> None:
        """A run of a repeat rule: remembered for the rule, and told in the event log."""
        with self.session() as s:
            row = s.get(RepeatRunRow, (release_id, rule))
            if row is None:
                s.add(RepeatRunRow(release_id=release_id, rule=rule, at=at))
            else:
                row.at = at
            s.add(EventRow(at=utcnow(), release_id=release_id, channel="", action="repeat", message=message,
                           actor=self.actor))

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
                     state: State | None = None, since: datetime | None = None,
                     error_prefix: str = "") -> list[Publication]:
        q = select(PublicationRow)
        if release_id:
            q = q.where(PublicationRow.release_id == release_id)
        if channel:
            q = q.where(PublicationRow.channel == channel)
        if state:
            q = q.where(PublicationRow.state == state)
        if since:
            q = q.where(PublicationRow.updated_at >= since)
        if error_prefix:
            q = q.where(PublicationRow.error.startswith(error_prefix, autoescape=True))
        q = q.order_by(PublicationRow.release_id, PublicationRow.channel)
        with self.session() as s:
            return [_publication(r) for r in s.scalars(q)]

    def status(self, query: StatusQuery) -> Selection:
        """Publications matching ``query``, grouped by release, the most recently changed first.
        Plain column reads (no journals): a report reads tens of thousands of rows."""
        conditions: list[Any] = []
        if query.release:
            conditions.append(PublicationRow.release_id == query.release)
        if query.channel:
            conditions.append(PublicationRow.channel == query.channel)
        if query.state:
            conditions.append(PublicationRow.state == query.state)
        if query.since:
            conditions.append(PublicationRow.updated_at >= query.since)
        with self.session() as s:
            conn = s.connection()
            if not query.limit:
                q = select(*_STATUS).where(*conditions)
                rows = [_status_row(r) for r in conn.execute(q.order_by(PublicationRow.release_id,
                                                                       PublicationRow.channel))]
                ids = list(dict.fromkeys(r.release for r in rows))
                return Selection(rows, ids, len(ids))
            ids = _latest_releases(conn, conditions, query.limit)
            if conditions:
                distinct = func.count(func.distinct(PublicationRow.release_id))
                total = conn.scalar(select(distinct).where(*conditions))
            else:
                total = conn.scalar(select(func.count()).select_from(ReleaseRow))
            q = select(*_STATUS).where(PublicationRow.release_id.in_(ids), *conditions)
            rows = [_status_row(r) for r in conn.execute(q.order_by(PublicationRow.channel))]
        order = {rid: i for i, rid in enumerate(ids)}
        rows.sort(key=lambda r: order[r.release])
        return Selection(rows, ids, int(total or 0))

    # --- renditions, approvals, events -------------------------------------------------------
    def record_rendition(self, key: str, profile: str, folder: Path, release_id: str) -> None:
        """Which release made a cached rendition (the first one, when workers make it at once)."""
        with self.session() as s:
            s.execute(self._insert(RenditionRow).values(
                key=key, profile=profile, folder=str(folder), release_id=release_id, created_at=utcnow(),
            ).on_conflict_do_nothing())

    def renditions(self, release_id: str) -> list[tuple[str, str, str]]:
        """(profile, key, folder) of every rendition made for the release."""
        q = (select(RenditionRow.profile, RenditionRow.key, RenditionRow.folder)
             .where(RenditionRow.release_id == release_id).order_by(RenditionRow.profile))
        with self.session() as s:
            return [(p, k, f) for p, k, f in s.execute(q)]

    def rendition_folders(self, release_id: str, profile: str) -> list[Path]:
        q = select(RenditionRow.folder).where(RenditionRow.release_id == release_id,
                                              RenditionRow.profile == profile)
        with self.session() as s:
            return [Path(folder) for folder in s.scalars(q)]

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

    def _insert(self, table: Any) -> Any:
        """An INSERT that can skip a row that exists (``on_conflict_do_nothing``), for this dialect."""
        from sqlalchemy.dialects import postgresql, sqlite

        return (sqlite.insert if self.engine.dialect.name == "sqlite" else postgresql.insert)(table)

    # --- records adapters share across processes (publisher.contract.AccountState) --------
    @property
    def accounts(self) -> StoreAccounts:
        return StoreAccounts(self)

    def update_account(self, key: str, change: Callable[[dict[str, Any]], T]) -> T:
        """Read, change and write one shared record in a transaction no other process interleaves
        with: the row is written (and so locked, on SQLite the whole database) before it is read."""
        now = utcnow()
        with self.session() as s:
            new = self._insert(AccountRow).values(key=key, data="{}", updated_at=now)
            s.execute(new.on_conflict_do_nothing())
            s.execute(update(AccountRow).where(AccountRow.key == key).values(updated_at=now))
            data = json.loads(s.scalar(select(AccountRow.data).where(AccountRow.key == key)) or "{}")
            result = change(data)
            s.execute(update(AccountRow).where(AccountRow.key == key).values(data=json.dumps(data)))
        return result

    # --- the service's heartbeat -------------------------------------------------------------
    def beat(self, instance: str, poll_seconds: float) -> None:
        """The service ``instance`` is alive now; beats older than a day are dropped."""
        now = utcnow()
        with self.session() as s:
            row = s.get(HeartbeatRow, instance)
            if row is None:
                s.add(HeartbeatRow(instance=instance, at=now, poll_seconds=poll_seconds))
            else:
                row.at, row.poll_seconds = now, poll_seconds
            s.execute(delete(HeartbeatRow).where(HeartbeatRow.at < now - timedelta(days=1)))

    def last_beat(self) -> tuple[datetime, float] | None:
        """When a service last looked at the store, and its polling interval."""
        q = select(HeartbeatRow.at, HeartbeatRow.poll_seconds).order_by(HeartbeatRow.at.desc()).limit(1)
        with self.session() as s:
            row = s.execute(q).first()
        return (row[0], row[1]) if row else None

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


_STATUS = (PublicationRow.release_id, PublicationRow.channel, PublicationRow.kind, PublicationRow.state,
           PublicationRow.remote_id, PublicationRow.url, PublicationRow.checksum, PublicationRow.publish_at,
           PublicationRow.updated_at, PublicationRow.error, PublicationRow.note)


def _status_row(r: Any) -> StatusRow:
    return StatusRow(r[0], r[1], r[2], _state(r[3]), *r[4:])


def _latest_releases(conn: Connection, conditions: list[Any], limit: int) -> list[str]:
    """The ``limit`` releases changed most recently, walking the updated_at index newest first."""
    ids: dict[str, None] = {}
    batch = max(limit * 25, 500)
    offset = 0
    while len(ids) < limit:
        q = (select(PublicationRow.release_id).where(*conditions)
             .order_by(PublicationRow.updated_at.desc()).limit(batch).offset(offset))
        got = list(conn.scalars(q))
        for rid in got:
            ids.setdefault(rid, None)
        if len(got) < batch:
            break
        offset += batch
    return list(ids)[:limit]


def _publication(row: PublicationRow) -> Publication:
    return Publication(
        release=row.release_id, channel=row.channel, kind=row.kind, state=_state(row.state),
        remote_id=row.remote_id, url=row.url, checksum=row.checksum, error=row.error, note=row.note,
        publish_at=row.publish_at, retry_at=row.retry_at, attempts=row.attempts,
        created_at=row.created_at, updated_at=row.updated_at, journal=json.loads(row.journal or "{}"),
    )


def _parse(model: Any, text: str, release_id: str, what: str) -> Any:
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise StoreError(f"the stored {what} of {release_id} cannot be read ({exc.error_count()} "
                         f"error(s), first: {exc.errors()[0]['msg']}); release it again from its "
                         "manifest to record it afresh") from None


def _state(value: str) -> State:
    try:
        return State(value)
    except ValueError:
        raise StoreError(f"the store holds an unknown publication state {value!r}") from None


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


class StoreAccounts:
    """The store as the ``AccountState`` adapters are given."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def update(self, key: str, change: Callable[[dict[str, Any]], T]) -> T:
        return self.store.update_account(key, change)
