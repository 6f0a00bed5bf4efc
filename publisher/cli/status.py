"""`status` (table, JSON, CSV, HTML, `--verify`) and `schedule list`: what is where, and what is next.

`status --json` / `--csv` fields (stable): release, channel, kind, state, remote_id, url, checksum,
publish_at, updated_at, error, note — times ISO 8601 in UTC with an offset, "" when unset.
"""

from __future__ import annotations

import csv
import json
import shutil
import textwrap
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from publisher.cli.console import (
    STATE_STYLE,
    ChannelOpt,
    Env,
    app,
    detail_lines,
    env,
    err,
    fit_cells,
    out,
    schedule_app,
    verify_table,
)

if TYPE_CHECKING:
    from publisher.models import Selection, StatusRow

TABLE_LIMIT = 20


@app.command()
def status(
    ctx: typer.Context,
    release_id: Annotated[str | None, typer.Argument(help="Only this release.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list of publications.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report "
                                              "to FILE (- for standard output).")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Ask each channel now and flag drift.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Changed since: 7d, 12h, or a time.")] = None,
    channel: ChannelOpt = None,
    state: Annotated[str | None, typer.Option("--state", help="Only publications in this state.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most N releases, latest first "
                                              f"(table and HTML default {TABLE_LIMIT}; 0 = all).")] = None,
) -> None:
    """Per release and channel: state, remote id, URL, checksum, times, last error."""
    from publisher import report
    from publisher.errors import InputError
    from publisher.models import StatusQuery
    from publisher.store import utcnow

    e = env(ctx)
    if as_json and as_csv:
        raise InputError("--json and --csv: choose one")
    zone = e.config.zone
    now = utcnow()
    query = StatusQuery(release=release_id, channel=channel, state=report.parse_state(state),
                        since=report.parse_since(since, zone, now) if since else None)
    query.limit = limit if limit is not None else (0 if (as_json or as_csv or verify) else TABLE_LIMIT)
    if release_id and not e.store.has_release(release_id):
        e.engine().stored(release_id)  # raises the "no such release" message
    selection = report.select_rows(e.store, query, now)
    if verify:
        _verify(e, selection, "json" if as_json else "csv" if as_csv else "table")
        return
    if html is not None:
        page = report.render_html(e.store, selection, zone, generated=now,
                                  site=e.config.settings.site_name or e.config.dir.name)
        if str(html) == "-":
            out.file.write(page)
            return
        html.write_text(page, encoding="utf-8")
        err.print(f"wrote {html} ({len(selection.releases)} release(s))")
    if as_json:
        out.file.write(report.to_json(selection.rows) + "\n")
    elif as_csv:
        out.file.write(report.to_csv(selection.rows))
    elif html is None:
        for line in _status_blocks(e, selection, zone, now, shutil.get_terminal_size().columns):
            out.print(line)
        _drafts(e, selection.releases)


def _drafts(e: Env, release_ids: list[str]) -> None:
    """A line for each release with machine drafts no person has reviewed."""
    from publisher.store.drafts import drafted

    found = drafted(e.store, release_ids)
    if not found:
        return
    from publisher.engine.drafts import unreviewed

    for rid in sorted(found):
        release = e.store.get_release(rid)
        keys = unreviewed(e.store, release, e.store.release_hashes(rid)) if release else []
        if keys:
            out.print(f"{rid}: machine drafts no person has reviewed: {escape(', '.join(keys))}")


WIDE = 120  # from this width on, a URL goes on its channel's line and is never broken


def _status_blocks(e: Env, selection: Selection, zone: ZoneInfo, now: datetime, width: int) -> list[Text]:
    """One block per release: a heading line (id and title), then a line per channel (name, kind,
    state, time) with its URL, note and error on lines of their own. Ids, channel names and states
    are never broken; a URL is broken only when it is wider than a narrow terminal."""
    from publisher import report
    from publisher.models import State

    titles = {rid: r.text("title") for rid, r in report.stored_releases(e.store, selection.releases).items()}
    lines = [Text(f"publications (times in {zone.key})", style="bold")]
    by_release: dict[str, list[StatusRow]] = {}
    for r in selection.rows:
        by_release.setdefault(r.release, []).append(r)
    for rid, rows in by_release.items():
        lines.append(Text())
        head = Text(rid, style="bold")
        title = " ".join(titles.get(rid, "").split())
        room = width - len(rid) - 2
        if title and room > 4:
            head.append("  " + fit_cells(title, room))
        lines.append(head)
        cw = max(len(r.channel) for r in rows)
        kw = max(len(r.kind) for r in rows)
        sw = max(len(r.state) for r in rows)
        for r in rows:
            when = (f"goes live {report.local(r.publish_at, zone)}" if r.state is State.SCHEDULED
                    and r.publish_at else report.local(r.updated_at, zone))
            line = Text(f"  {r.channel:<{cw}}  {r.kind:<{kw}}  ")
            line.append(f"{r.state:<{sw}}", style=STATE_STYLE.get(r.state, "white"))
            late = " — overdue" if report.overdue(r, now) else ""
            if len(line) + 2 + len(when) + len(late) <= width:
                line.append(f"  {when}")
                line.append(late, style="yellow")
                when = ""
            if width >= WIDE and r.url and len(line) + 2 + len(r.url) <= width:
                line.append(f"  {r.url}")
                url = ""
            else:
                url = r.url
            lines.append(line)
            if when:
                lines += detail_lines("", when + late, width)
            if url:
                lines += detail_lines("", url, width, words=False, whole=width >= WIDE)
            if r.note:
                lines += detail_lines("note: ", r.note, width)
            if r.error:
                lines += detail_lines("error: ", r.error, width, style="red")
    counts = report.summary(selection)
    caption = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing recorded yet"
    if selection.total_releases > len(selection.releases):
        caption += (f" — showing the {len(selection.releases)} most recently changed of "
                    f"{selection.total_releases} releases (--limit 0 for all)")
    if selection.rows:
        caption += "; remote ids and checksums: --json, --csv or --html"
    lines.append(Text())
    lines += [Text(part) for part in textwrap.wrap(caption, width)]
    return lines


def _verify(e: Env, selection: Selection, fmt: str) -> None:
    """Ask each channel now; a table, or the status rows plus ``remote_state`` and ``drift``."""
    from publisher import report
    from publisher.engine import verbs

    wanted = {(r.release, r.channel) for r in selection.rows}
    pubs = [p for rid in selection.releases for p in e.store.publications(rid)
            if (p.release, p.channel) in wanted]
    checked = {(v.release, v.channel): v for v in verbs.verify(e.engine(), pubs)}
    if fmt in ("json", "csv"):
        records: list[dict[str, object]] = []
        for r in selection.rows:
            v = checked.get((r.release, r.channel))
            found = v.drift if v else []
            records.append({**report.record(r), "remote_state": str(v.remote_state or "unknown") if v else "",
                            "drift": found if fmt == "json" else "; ".join(found),
                            "repair": v.repair_command if v else ""})
        if fmt == "json":
            out.file.write(json.dumps(records, ensure_ascii=False, indent=1) + "\n")
        else:
            writer = csv.DictWriter(out.file, fieldnames=[*report.FIELDS, "remote_state", "drift", "repair"],
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)
    else:
        out.print(verify_table(list(checked.values())))
    drifted = [v for v in checked.values() if v.drift]
    if drifted:
        err.print(f"[red]drift on {len(drifted)} publication(s)[/]", markup=True)
        for command in dict.fromkeys(v.repair_command for v in drifted):
            if command:
                err.print(f"repair with: {command}", markup=False)
        raise typer.Exit(1)


@schedule_app.command("list")
def schedule_list(ctx: typer.Context) -> None:
    """Upcoming runs with their times in the operator's zone."""
    from publisher.schedule.planning import plan
    from publisher.store import utcnow
    from publisher.times import local, span

    e = env(ctx)
    zone = e.config.zone
    now = utcnow()
    table = Table(title=f"upcoming runs (times in {zone.key})")
    for col in ("when", "in", "release", "what", "channels"):
        table.add_column(col, overflow="fold")
    planned = plan(e.store, now)
    for j in planned.jobs:
        seconds = (j.next_run - now).total_seconds()
        due = "[yellow]overdue: runs when the service sees it[/]" if seconds < 0 else span(seconds)
        table.add_row(local(j.next_run, zone), due, j.release, escape(j.description), ", ".join(j.channels))
    for rid, why in planned.problems.items():
        table.add_row("—", "[red]cannot be planned[/]", rid, escape(why), "")
    if not table.rows:
        table.caption = "nothing scheduled"
    out.print(table)
