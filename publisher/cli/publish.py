"""`check`, `plan`, `release`, `update` and `approve`: the verbs that start from a manifest."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from publisher.cli.console import ConsoleReporter, Env, Manifest, Only, app, detail_lines, env, finish, out

if TYPE_CHECKING:
    from publisher.inputs.checks import Prepared


def _checked(e: Env, manifest: Path, only: list[str] | None) -> Prepared:
    """Everything checked, nothing written: the embedded store is read, never opened, to know
    whether a release is recorded; a database server is not asked."""
    from publisher.inputs.checks import prepare
    from publisher.inputs.manifest import PastCheck
    from publisher.store import sqlite_has_release, sqlite_url, utcnow
    from publisher.times import local

    url = e.config.settings.store or sqlite_url(e.state_dir)
    embedded = url.startswith("sqlite:///")
    past = PastCheck(e.config.zone, lambda rid: sqlite_has_release(url, rid)) if embedded else None
    prep = prepare(e.config, manifest, e.state_dir, only, past)
    at = prep.release.publish_at
    if not embedded and at is not None and at < utcnow():
        prep.warnings.append(f"publish_at {local(at, e.config.zone)} has passed: `publisher release` "
                             "refuses it unless this release is recorded already (or with --now)")
    return prep


@app.command()
def check(ctx: typer.Context, manifest: Manifest, only: Only = None,
          strict: Annotated[bool, typer.Option("--strict", help="Caption quality warnings are errors "
                                               "(exit 2).")] = False) -> None:
    """Validate manifest, config, master, captions and thumbnail. No network, no writes."""
    from publisher.errors import InputError
    from publisher.inputs.config import notify_problems

    e = env(ctx)
    prep = _checked(e, manifest, only)
    problems = notify_problems(e.config) + (prep.quality if strict else [])
    if problems:
        raise InputError(problems)
    m = prep.master
    out.print(f"OK {prep.release.id}: {m.path.name} {m.width}x{m.height} {m.fps:g} fps "
              f"{m.duration:.1f} s {m.video_codec}/{m.audio_codec or 'no audio'}, sha256 {m.sha256[:16]}…",
              markup=False)
    out.print(f"channels: {', '.join(f'{n} ({c.kind})' for n, c in prep.channels.items())}")
    for w in prep.warnings:
        out.print(f"[yellow]warning:[/] {escape(w)}")


@app.command()
def plan(ctx: typer.Context, manifest: Manifest, only: Only = None) -> None:
    """Show what would be encoded, what each channel would receive, and API quota costs. No writes."""
    from publisher.engine.engine import Engine
    from publisher.times import local
    from publisher.transcode import Transcoder

    e = env(ctx)
    prep = _checked(e, manifest, only)
    requests = {n: Engine.requests_for(c, prep.release) for n, c in prep.channels.items()}
    tplan = Transcoder(e.config.cache_dir(e.state_dir)).plan(prep.release, prep.master, requests)
    table = Table(title=f"renditions for {prep.release.id}")
    for col in ("rendition", "key", "status", "used by"):
        table.add_column(col)
    for item in tplan.items:
        table.add_row(item.description, item.key[:12], "cached" if item.cached else "[yellow]to encode[/]",
                      ", ".join(item.channels))
    out.print(table)
    zone = e.config.zone
    at = prep.release.publish_at
    width = shutil.get_terminal_size().columns
    out.print(Text(f"channels (times in {zone.key})", style="italic"))
    for name, ch in prep.channels.items():
        p = ch.plan(prep.release)
        when = f"goes live {local(at, zone)}" if at else "goes live when released"
        out.print(Text(f"  {name}  {ch.kind}  {when}" + (f" ({p.live})" if p.live else "")))
        for line in detail_lines("at ", p.url or "known once sent", width, words=False, whole=width >= 120):
            out.print(line)
        quota = ", ".join(f"{k} {v}" for k, v in p.quota.items())
        for line in detail_lines("sends ", ", ".join(p.sends) + (f"; quota units: {quota}" if quota else ""),
                                 width):
            out.print(line)


@app.command()
def release(ctx: typer.Context, manifest: Manifest, only: Only = None,
            now: Annotated[bool, typer.Option("--now", help="Publish at once although publish_at has "
                                              "passed.")] = False) -> None:
    """Check, transcode once, publish to every channel, record everything. Run again after editing
    the manifest: the edits go to every channel where it is out."""
    from publisher.engine import release as verbs

    e = env(ctx)
    with ConsoleReporter() as reporter:
        engine = e.engine(reporter)
        if e.config.settings.broker:
            from publisher.scale.worker import to_workers

            result = verbs.release(engine, manifest, only, now=now, dispatch=to_workers(engine))
        else:
            result = verbs.release(engine, manifest, only, now=now)
    finish(result, label="warning")


@app.command()
def update(ctx: typer.Context, manifest: Manifest) -> None:
    """Push changed titles, descriptions, captions and thumbnail to every channel where it is live."""
    from publisher.engine import release as verbs

    with ConsoleReporter() as reporter:
        result = verbs.update(env(ctx).engine(reporter), manifest)
    finish(result)


@app.command()
def approve(ctx: typer.Context, manifest: Manifest,
            by: Annotated[str | None, typer.Option("--by", help="A label for the approver (you are "
                                                   "recorded by your login).")] = None) -> None:
    """Approve exactly this content (sha256 of master, captions, thumbnail and manifest); a release
    awaiting this approval is released then."""
    from publisher.engine import release as verbs

    e = env(ctx)
    engine = e.engine()
    a = verbs.approve(engine, manifest, by)
    table = Table(title=f"{a.release} approved by {a.approved_by}")
    table.add_column("content")
    table.add_column("sha256")
    table.add_column("since last approval")
    for name, digest in sorted(a.hashes.items()):
        before = a.previous.get(name)
        change = "" if not a.previous else ("same" if before == digest else "[yellow]changed[/]")
        table.add_row(name, digest, change)
    out.print(table)
    if a.drafts:
        out.print(f"machine drafts reviewed by this approval: {escape(', '.join(a.drafts))}")
    if a.submitted and a.prep is not None:
        with ConsoleReporter() as reporter:
            engine.reporter = reporter
            dispatch = None
            if e.config.settings.broker:
                from publisher.scale.worker import to_workers

                dispatch = to_workers(engine)
            result = verbs.launch(engine, a.prep, on_approval=True, dispatch=dispatch)
        finish(result)
