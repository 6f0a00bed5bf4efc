"""`retry`, `repair`, `withdraw` and `schedule cancel`: putting right what is recorded."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from publisher.cli.console import (
    ChannelOpt,
    ConsoleReporter,
    LineReporter,
    ReleaseId,
    app,
    env,
    err,
    finish,
    out,
    results_table,
    schedule_app,
    verify_table,
)


@app.command()
def retry(ctx: typer.Context, release_id: ReleaseId, channel: ChannelOpt = None) -> None:
    """Continue failed or deferred publications from where they stopped."""
    from publisher.engine import verbs

    with ConsoleReporter() as reporter:
        result = verbs.retry(env(ctx).engine(reporter), release_id, channel)
    finish(result)


@app.command()
def repair(ctx: typer.Context, release_id: ReleaseId, channel: ChannelOpt = None,
           reupload: Annotated[bool, typer.Option(
               "--reupload", help="Also send again what was removed from the channel altogether "
               "(e.g. a YouTube video deleted by hand).")] = False) -> None:
    """Send again what `status --verify` finds missing or different on the live channels."""
    from publisher.engine import verbs

    with ConsoleReporter() as reporter:
        result, after = verbs.repair(env(ctx).engine(reporter), release_id, channel, reupload)
    for w in result.warnings:
        err.print(f"[yellow]note:[/] {escape(w)}", markup=True)
    out.print(results_table(result))
    left = [v for v in after if v.drift]
    if left:
        out.print(verify_table(left))
        err.print(f"[red]still drifting: {len(left)} publication(s)[/]", markup=True)
    raise typer.Exit(result.exit_code or (1 if left else 0))


@app.command()
def withdraw(ctx: typer.Context, release_id: ReleaseId, channel: ChannelOpt = None,
             keep_private: Annotated[bool, typer.Option(
                 "--keep-private", help="Make it private where the channel can (YouTube), not delete it.")]
             = False) -> None:
    """Take the release down everywhere (or on one channel) by its stored remote ids."""
    from publisher.engine import verbs

    finish(verbs.withdraw(env(ctx).engine(LineReporter()), release_id, channel, keep_private))


@schedule_app.command("cancel")
def schedule_cancel(ctx: typer.Context, release_id: ReleaseId, channel: ChannelOpt = None) -> None:
    """Cancel what has not gone live yet (embargoed, pending, deferred)."""
    from publisher.engine import verbs

    finish(verbs.cancel(env(ctx).engine(LineReporter()), release_id, channel))
