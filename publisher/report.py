"""Status reports: rows for the table, JSON and CSV, and the self-contained HTML report.

The JSON and CSV fields are a documented, stable interface (``FIELDS``); their times are ISO 8601
in UTC with an offset. The table and the HTML page show times in the operator's zone. Queries
here read only the columns a report needs (no journals), so `publisher status` stays fast on a
store of tens of thousands of publications.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, select_autoescape
from pydantic import ValidationError
from sqlalchemy import func, select

from publisher.errors import InputError
from publisher.models import Event, Release, State
from publisher.store import PublicationRow, ReleaseRow, RenditionRow, Store, utcnow
from publisher.times import local, span

#: the documented fields of `publisher status --json` / `--csv`, in this order
FIELDS = ("release", "channel", "kind", "state", "remote_id", "url", "checksum", "publish_at",
          "updated_at", "error", "note")
#: the colour of each state, shared by the HTML report (the CLI has its own rich styles)
STATE_COLOURS = {"live": "#1e7b34", "scheduled": "#0a6c8f", "processing": "#2a4db3", "pending": "#6b6b6b",
                 "deferred": "#a86400", "failed": "#b3261e", "withdrawn": "#7b2a8f", "cancelled": "#8a8a8a"}
MAX_EMBED = 4 * 1024 * 1024  # a bigger poster is linked as a local file instead of embedded


@dataclass
class StatusRow:
    release: str
    channel: str
    kind: str
    state: str
    remote_id: str
    url: str
    checksum: str
    publish_at: datetime | None
    updated_at: datetime | None
    error: str
    note: str

    def record(self) -> dict[str, str]:
        """The stable JSON/CSV form: every field a string, times ISO 8601 UTC ("" when unset)."""
        return {"release": self.release, "channel": self.channel, "kind": self.kind, "state": self.state,
                "remote_id": self.remote_id, "url": self.url, "checksum": self.checksum,
                "publish_at": _iso(self.publish_at), "updated_at": _iso(self.updated_at),
                "error": self.error, "note": self.note}


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else ""


@dataclass
class Query:
    release: str | None = None
    channel: str | None = None
    state: str | None = None
    since: datetime | None = None
    #: at most this many releases, the most recently changed first; 0 means all
    limit: int = 0
    #: the time against which a scheduled publication is overdue (default: now)
    now: datetime | None = None


@dataclass
class Selection:
    rows: list[StatusRow]
    releases: list[str]  # in display order
    total_releases: int  # how many releases matched before the limit


_COLUMNS = (PublicationRow.release_id, PublicationRow.channel, PublicationRow.kind, PublicationRow.state,
            PublicationRow.remote_id, PublicationRow.url, PublicationRow.checksum, PublicationRow.publish_at,
            PublicationRow.updated_at, PublicationRow.error, PublicationRow.note)


def select_rows(store: Store, query: Query) -> Selection:
    """Publications matching ``query``, grouped by release (most recently changed release first)."""
    if query.state and query.state not in list(State):
        raise InputError(f"--state {query.state}: not a state; use one of {', '.join(State)}")
    conditions = []
    if query.release:
        conditions.append(PublicationRow.release_id == query.release)
    if query.channel:
        conditions.append(PublicationRow.channel == query.channel)
    if query.state:
        conditions.append(PublicationRow.state == query.state)
    if query.since:
        conditions.append(PublicationRow.updated_at >= query.since)
    # Core (not ORM) queries: a report reads tens of thousands of plain rows
    with store.session() as s:
        conn = s.connection()
        if not query.limit:
            q = (select(*_COLUMNS).where(*conditions)
                 .order_by(PublicationRow.release_id, PublicationRow.channel))
            rows = [StatusRow(*r) for r in conn.execute(q)]
            mark_overdue(rows, query.now or utcnow())
            ids = list(dict.fromkeys(r.release for r in rows))
            return Selection(rows, ids, len(ids))
        ids = _latest_releases(conn, conditions, query.limit)
        if conditions:
            distinct = func.count(func.distinct(PublicationRow.release_id))
            total = conn.scalar(select(distinct).where(*conditions))
        else:
            total = conn.scalar(select(func.count()).select_from(ReleaseRow))
        q = select(*_COLUMNS).where(PublicationRow.release_id.in_(ids), *conditions)
        rows = [StatusRow(*r) for r in conn.execute(q.order_by(PublicationRow.channel))]
    order = {rid: i for i, rid in enumerate(ids)}
    rows.sort(key=lambda r: order[r.release])
    mark_overdue(rows, query.now or utcnow())
    return Selection(rows, ids, int(total or 0))


def _latest_releases(conn: Any, conditions: list[Any], limit: int) -> list[str]:
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


def parse_since(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """``--since``: an age (``90m``, ``12h``, ``7d``, ``2w``) or a date/time; no zone means the operator's."""
    m = re.fullmatch(r"(\d+)([mhdw])", text.strip())
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return now - timedelta(**{unit: int(m.group(1))})
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--since {text}: not an age or a time; write e.g. 7d, 12h or "
                         "2026-12-01T10:00 (operator's zone) or 2026-12-01T10:00+08:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


# --- presentation helpers ------------------------------------------------------------------------
def overdue(row: StatusRow, now: datetime) -> bool:
    """Scheduled, and its publish time has passed: nothing has made it live (is `publisher run` up?)."""
    return row.state == "scheduled" and row.publish_at is not None and row.publish_at < now


def mark_overdue(rows: list[StatusRow], now: datetime) -> None:
    """Say "overdue" in the note of every scheduled publication whose time has passed."""
    for row in rows:
        if overdue(row, now):
            assert row.publish_at is not None
            late = f"overdue: its publish time passed {span((now - row.publish_at).total_seconds())} ago"
            row.note = f"{late}; {row.note}" if row.note else late


def one_line(text: str, width: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def to_json(rows: list[StatusRow]) -> str:
    """A JSON list, one publication object per line (compact, and still readable and diffable)."""
    if not rows:
        return "[]"
    return "[\n" + ",\n".join(json.dumps(r.record(), ensure_ascii=False) for r in rows) + "\n]"


def to_csv(rows: list[StatusRow]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(r.record())
    return buf.getvalue()


# --- HTML ----------------------------------------------------------------------------------------
@dataclass
class ReleaseView:
    id: str
    title: str
    publish_at: str
    poster: str  # a data: URI or a file:// URL, "" when none
    cells: dict[str, StatusRow]
    events: list[dict[str, str]] = field(default_factory=list)
    errors: list[StatusRow] = field(default_factory=list)


def stored_releases(store: Store, ids: list[str]) -> dict[str, Release]:
    """The stored releases that can be read; a damaged record is left out (its rows still show)."""
    if not ids:
        return {}
    out = {}
    with store.session() as s:
        rows = list(s.execute(select(ReleaseRow.id, ReleaseRow.release_json).where(ReleaseRow.id.in_(ids))))
    for rid, text in rows:
        with contextlib.suppress(ValidationError):
            out[rid] = Release.model_validate_json(text)
    return out


def poster_source(store: Store, release: Release | None, release_id: str) -> str:
    """The release's poster as a data: URI: the cached poster rendition, else the manifest thumbnail."""
    candidates: list[Path] = []
    with store.session() as s:
        folders = s.scalars(select(RenditionRow.folder).where(RenditionRow.release_id == release_id,
                                                              RenditionRow.profile == "poster"))
        for folder in folders:
            candidates += sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in (".jpg", ".png"))
    if release is not None and release.thumbnail is not None:
        candidates.append(release.thumbnail)
    for path in candidates:
        if path.is_file():
            if path.stat().st_size > MAX_EMBED:
                return path.resolve().as_uri()
            mime = mimetypes.guess_type(path.name)[0] or "image/jpeg"
            return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    return ""


def render_html(store: Store, selection: Selection, zone: ZoneInfo, *, generated: datetime,
                site: str = "") -> str:
    releases = stored_releases(store, selection.releases)
    by_release: dict[str, dict[str, StatusRow]] = {rid: {} for rid in selection.releases}
    for row in selection.rows:
        by_release.setdefault(row.release, {})[row.channel] = row
    channels = sorted({row.channel for row in selection.rows})
    views = []
    for rid, cells in by_release.items():
        rel = releases.get(rid)
        views.append(ReleaseView(
            id=rid, title=rel.text("title") if rel else "",
            publish_at=local(rel.publish_at, zone) if rel and rel.publish_at else "",
            poster=poster_source(store, rel, rid), cells=cells,
            events=[_event(e, zone) for e in store.events(rid, limit=200)],
            errors=[c for c in cells.values() if c.error],
        ))
    template = _environment().from_string(
        (files("assets") / "templates" / "report.html.j2").read_text(encoding="utf-8"))
    return template.render(
        releases=views, channels=channels, colours=STATE_COLOURS, states=list(State), zone=zone.key,
        generated=local(generated, zone), site=site, total=selection.total_releases,
        local=lambda v: local(v, zone),
    )


def _event(e: Event, zone: ZoneInfo) -> dict[str, str]:
    return {"at": local(e.at, zone), "channel": e.channel, "action": e.action, "message": e.message}


def _environment() -> Environment:
    return Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                       trim_blocks=True, lstrip_blocks=True)


def summary(selection: Selection) -> dict[str, Any]:
    """Counts per state, for the line under the table."""
    counts: dict[str, int] = {}
    for row in selection.rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    return counts
