"""Status reports: rows for the table, JSON and CSV, and the self-contained HTML report.

The JSON and CSV fields are a documented, stable interface (``FIELDS``); their times are ISO 8601
in UTC with an offset. The table and the HTML page show times in the operator's zone. Queries
here read only the columns a report needs (no journals), so `publisher status` stays fast on a
store of tens of thousands of publications.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from publisher.errors import InputError
from publisher.models import Event, Release, Selection, State, StatusQuery, StatusRow
from publisher.store import Store, utcnow
from publisher.times import local, span

if TYPE_CHECKING:
    from jinja2 import Environment

#: the documented fields of `publisher status --json` / `--csv`, in this order
FIELDS = ("release", "channel", "kind", "state", "remote_id", "url", "checksum", "publish_at",
          "updated_at", "error", "note")
#: the colour of each state, shared by the HTML report (the CLI has its own rich styles)
STATE_COLOURS = {"live": "#1e7b34", "scheduled": "#0a6c8f", "processing": "#2a4db3", "pending": "#6b6b6b",
                 "deferred": "#a86400", "failed": "#b3261e", "withdrawn": "#7b2a8f", "cancelled": "#5c6773"}
MAX_EMBED = 4 * 1024 * 1024  # a bigger poster is linked as a local file instead of embedded


def record(row: StatusRow) -> dict[str, str]:
    """The stable JSON/CSV form: every field a string, times ISO 8601 UTC ("" when unset)."""
    return {"release": row.release, "channel": row.channel, "kind": row.kind, "state": str(row.state),
            "remote_id": row.remote_id, "url": row.url, "checksum": row.checksum,
            "publish_at": _iso(row.publish_at), "updated_at": _iso(row.updated_at),
            "error": row.error, "note": row.note}


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    try:
        return value.astimezone(UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError):
        return value.replace(tzinfo=None).isoformat(timespec="seconds") + "+00:00"


def select_rows(store: Store, query: StatusQuery, now: datetime | None = None) -> Selection:
    """Publications matching ``query``, grouped by release (most recently changed release first),
    with "overdue" in the note of every scheduled one whose time has passed."""
    selection = store.status(query)
    mark_overdue(selection.rows, now or utcnow())
    return selection


def parse_state(text: str | None) -> State | None:
    """``--state``: one of the publication states."""
    if text is None:
        return None
    try:
        return State(text)
    except ValueError:
        raise InputError(f"--state {text}: not a state; use one of {', '.join(State)}") from None


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
    return "[\n" + ",\n".join(json.dumps(record(r), ensure_ascii=False) for r in rows) + "\n]"


def to_csv(rows: list[StatusRow]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(record(r))
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
    title_lang: str = ""  # the language the title is in (the release's default)


def stored_releases(store: Store, ids: list[str]) -> dict[str, Release]:
    """The stored releases that can be read; a damaged record is left out (its rows still show)."""
    return {rid: r for rid, r in store.releases(ids).items() if r is not None}


def poster_source(store: Store, release: Release | None, release_id: str) -> str:
    """The release's poster as a data: URI: the cached poster rendition, else the manifest thumbnail."""
    candidates: list[Path] = []
    for folder in store.rendition_folders(release_id, "poster"):
        candidates += sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".png"))
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
            events=[_event(e, zone, rel.text("title") if rel else "") for e in store.events(rid, limit=200)],
            errors=[c for c in cells.values() if c.error], title_lang=rel.default_language if rel else "",
        ))
    template = _environment().from_string(
        (files("assets") / "templates" / "report.html.j2").read_text(encoding="utf-8"))
    return template.render(
        releases=views, channels=channels, colours=STATE_COLOURS, states=list(State), zone=zone.key,
        generated=local(generated, zone), site=site, total=selection.total_releases,
        local=lambda v: local(v, zone),
    )


#: how a release event named the release before it named it by title
_BY_HASH = re.compile(r"^release of [0-9a-f]{12} to ")


def _event(e: Event, zone: ZoneInfo, title: str) -> dict[str, str]:
    """An event for the page; a release title quoted in its message is split out (``title``, between
    ``message`` and ``rest``) so the page can mark the title's language."""
    title = " ".join(title.split())
    message = _BY_HASH.sub(f"release of “{title}” to ", e.message) if title else e.message
    before, quoted, rest = message.partition(f"“{title}”") if title else (message, "", "")
    return {"at": local(e.at, zone), "channel": e.channel, "action": e.action, "message": before,
            "title": title if quoted else "", "rest": rest}


def _environment() -> Environment:
    from jinja2 import Environment, select_autoescape

    return Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                       trim_blocks=True, lstrip_blocks=True)


def summary(selection: Selection) -> dict[str, Any]:
    """Counts per state, for the line under the table."""
    counts: dict[str, int] = {}
    for row in selection.rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    return counts
