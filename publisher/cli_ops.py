"""Operations and reports on the same app: status, run, schedule, retry, update, withdraw, approve.

`status --json` / `--csv` fields (stable): release, channel, kind, state, remote_id, url, checksum,
publish_at, updated_at, error, note — times ISO 8601 in UTC with an offset, "" when unset.
"""

from __future__ import annotations

import csv
import json
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from publisher import operations, report
from publisher.cli import STATE_STYLE, ConsoleReporter, Env, app, env, err, out, results_table
from publisher.errors import InputError
from publisher.orchestrator import Reporter, RunResult
from publisher.store import utcnow

schedule_app = typer.Typer(no_args_is_help=True, help="Upcoming runs of the service, and cancelling them.")
app.add_typer(schedule_app, name="schedule")

ReleaseId = Annotated[str, typer.Argument(help="The release id (see `publisher status`).")]
ChannelOpt = Annotated[str | None, typer.Option("--channel", help="Only this channel.")]
Manifest = Annotated[Path, typer.Argument(help="The release manifest (YAML).")]
TABLE_LIMIT = 20


class LineReporter(Reporter):
    """One line per channel event, for the long-running service (no progress bars)."""

    def channel(self, name: str, state: str, message: str = "") -> None:
        if state != "working":
            err.print(f"[{STATE_STYLE.get(state, 'white')}]{name}: {state}[/] {message}", markup=True)


def _styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


def _finish(result: RunResult) -> None:
    for w in result.warnings:
        err.print(f"[yellow]note:[/] {w}", markup=True)
    out.print(results_table(result))
    raise typer.Exit(result.exit_code)


# --- status -----------------------------------------------------------------------------------
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
    e = env(ctx)
    if as_json and as_csv:
        raise InputError("--json and --csv: choose one")
    zone = e.config.zone
    now = utcnow()
    query = report.Query(release=release_id, channel=channel, state=state,
                         since=report.parse_since(since, zone, now) if since else None)
    query.limit = limit if limit is not None else (0 if (as_json or as_csv or verify) else TABLE_LIMIT)
    if release_id and e.store.get_release(release_id) is None:
        operations.stored(e.orchestrator(), release_id)  # raises the "no such release" message
    selection = report.select_rows(e.store, query)
    if verify:
        _verify(e, selection, "json" if as_json else "csv" if as_csv else "table")
        return
    if html is not None:
        page = report.render_html(e.store, selection, zone, generated=now, site=e.config.path.name)
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
        out.print(_status_table(selection, zone))


def _status_table(selection: report.Selection, zone: ZoneInfo) -> Table:
    table = Table(title=f"publications (times in {zone.key})")
    cols = ("release", "channel", "kind", "state", "remote id", "url", "checksum", "time", "error / note")
    for col in cols:
        table.add_column(col, overflow="fold")
    for r in selection.rows:
        when = (f"at {report.local(r.publish_at, zone)}" if r.state == "scheduled" and r.publish_at
                else report.local(r.updated_at, zone))
        table.add_row(r.release, r.channel, r.kind, _styled(r.state), escape(r.remote_id), escape(r.url),
                      r.checksum[:12], when, escape(report.one_line(r.error or r.note)))
    counts = report.summary(selection)
    table.caption = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing recorded yet"
    if selection.total_releases > len(selection.releases):
        table.caption += (f" — showing the {len(selection.releases)} most recently changed of "
                          f"{selection.total_releases} releases (--limit 0 for all)")
    return table


def _verify(e: Env, selection: report.Selection, fmt: str) -> None:
    """Ask each channel now; a table, or the status rows plus ``remote_state`` and ``drift``."""
    wanted = {(r.release, r.channel) for r in selection.rows}
    pubs = [p for rid in selection.releases for p in e.store.publications(rid)
            if (p.release, p.channel) in wanted]
    checked = {(v.release, v.channel): v for v in operations.verify(e.orchestrator(), pubs)}
    if fmt in ("json", "csv"):
        records: list[dict[str, object]] = []
        for r in selection.rows:
            v = checked.get((r.release, r.channel))
            found = v.drift if v else []
            records.append({**r.record(), "remote_state": v.remote_state if v else "",
                            "drift": found if fmt == "json" else "; ".join(found)})
        if fmt == "json":
            out.file.write(json.dumps(records, ensure_ascii=False, indent=1) + "\n")
        else:
            writer = csv.DictWriter(out.file, fieldnames=[*report.FIELDS, "remote_state", "drift"],
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(records)
    else:
        table = Table(title="verify: what each channel says now")
        for col in ("release", "channel", "store", "channel says", "drift"):
            table.add_column(col, overflow="fold")
        for v in checked.values():
            drift = "; ".join(v.drift) if v.drift else "[green]none[/]"
            table.add_row(v.release, v.channel, _styled(v.stored_state), _styled(v.remote_state),
                          f"[red]{drift}[/]" if v.drift else drift)
        out.print(table)
    drifted = [v for v in checked.values() if v.drift]
    if drifted:
        err.print(f"[red]drift on {len(drifted)} publication(s)[/]", markup=True)
        raise typer.Exit(1)


# --- the service and the schedule ---------------------------------------------------------------
@app.command()
def run(ctx: typer.Context,
        poll: Annotated[float, typer.Option("--poll", help="Seconds between looks at the store.")] = 2.0,
        ) -> None:
    """Run the scheduler in the foreground (embargoes, deferred retries, repeats) until SIGTERM/Ctrl-C."""
    from publisher.leader import Leadership
    from publisher.scheduler import Service, planned_jobs

    e = env(ctx)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        err.print(f"received {signal.Signals(signum).name}; stopping after running jobs finish")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    zone = e.config.zone
    jobs = planned_jobs(e.store)
    out.print(f"publisher service: {len(jobs)} job(s) planned; times in {zone.key}")
    for j in jobs[:10]:
        out.print(f"  {report.local(j.next_run, zone)}  {j.release}  {j.description}")

    def notify(text: str) -> None:
        out.print(f"{report.local(utcnow(), zone)}  {text}", markup=False)

    leadership = Leadership(e.store, e.state_dir)
    try:
        Service(e.config, e.store, e.state_dir, poll=poll, notify=notify, reporter=LineReporter(),
                leader=leadership.try_acquire).serve(stop)
    finally:
        leadership.release()


@schedule_app.command("list")
def schedule_list(ctx: typer.Context) -> None:
    """Upcoming runs with their times in the operator's zone."""
    from publisher.scheduler import planned_jobs

    e = env(ctx)
    zone = e.config.zone
    now = utcnow()
    table = Table(title=f"upcoming runs (times in {zone.key})")
    for col in ("when", "in", "release", "what", "channels"):
        table.add_column(col, overflow="fold")
    for j in planned_jobs(e.store, now):
        seconds = (j.next_run - now).total_seconds()
        due = "[yellow]overdue: runs when the service sees it[/]" if seconds < 0 else _duration(seconds)
        table.add_row(report.local(j.next_run, zone), due, j.release, j.description, ", ".join(j.channels))
    if not table.rows:
        table.caption = "nothing scheduled"
    out.print(table)


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else (f"{mins} min" if mins else f"{int(seconds)} s")


@schedule_app.command("cancel")
def schedule_cancel(ctx: typer.Context, release_id: ReleaseId, channel: ChannelOpt = None) -> None:
    """Cancel what has not gone live yet (embargoed, pending, deferred)."""
    _finish(operations.cancel(env(ctx).orchestrator(LineReporter()), release_id, channel))


# --- operations ---------------------------------------------------------------------------------
@app.command()
def retry(ctx: typer.Context, release_id: ReleaseId, channel: ChannelOpt = None) -> None:
    """Continue failed or deferred publications from where they stopped."""
    with ConsoleReporter() as reporter:
        result = operations.retry(env(ctx).orchestrator(reporter), release_id, channel)
    _finish(result)


@app.command()
def update(ctx: typer.Context, manifest: Manifest) -> None:
    """Push changed titles, descriptions, captions and thumbnail to every channel where it is live."""
    with ConsoleReporter() as reporter:
        result = operations.update(env(ctx).orchestrator(reporter), manifest)
    _finish(result)


@app.command()
def withdraw(ctx: typer.Context, release_id: ReleaseId, channel: ChannelOpt = None,
             keep_private: Annotated[bool, typer.Option(
                 "--keep-private", help="Make it private where the channel can (YouTube), not delete it.")]
             = False) -> None:
    """Take the release down everywhere (or on one channel) by its stored remote ids."""
    _finish(operations.withdraw(env(ctx).orchestrator(LineReporter()), release_id, channel, keep_private))


@app.command()
def approve(ctx: typer.Context, manifest: Manifest,
            by: Annotated[str | None, typer.Option("--by", help="A label for the approver (you are "
                                                   "recorded by your login).")] = None) -> None:
    """Approve exactly this content (sha256 of master, captions, thumbnail and manifest); a release
    awaiting this approval is released then."""
    e = env(ctx)
    orch = e.orchestrator()
    a = operations.approve(orch, manifest, by)
    table = Table(title=f"{a.release} approved by {a.approved_by}")
    table.add_column("content")
    table.add_column("sha256")
    table.add_column("since last approval")
    for name, digest in sorted(a.hashes.items()):
        before = a.previous.get(name)
        change = "" if not a.previous else ("same" if before == digest else "[yellow]changed[/]")
        table.add_row(name, digest, change)
    out.print(table)
    if a.submitted and a.prep is not None:
        with ConsoleReporter() as reporter:
            orch.reporter = reporter
            if e.config.settings.broker:
                from publisher.worker import enqueue_prepared

                result = enqueue_prepared(orch, a.prep)
            else:
                result = orch.launch(a.prep)
        _finish(result)
