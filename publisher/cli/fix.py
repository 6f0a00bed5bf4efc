"""`retry`, `repair`, `withdraw` and `schedule cancel`: putting right what is recorded."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from publisher.cli.console import (
    ChannelOpt,
    ConsoleReporter,
    Env,
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

if TYPE_CHECKING:
    from publisher.models import State

Yes = Annotated[bool, typer.Option("--yes", "-y",
                                   help="Do it without asking (needed when not on a terminal).")]


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
             = False, yes: Yes = False) -> None:
    """Take the release down everywhere (or on one channel) by its stored remote ids."""
    from publisher.engine import verbs
    from publisher.models import GONE, State

    e = env(ctx)
    verb = "make private" if keep_private else "withdraw"
    _confirm(e, release_id, channel, verb, [s for s in State if s not in GONE], yes)
    finish(verbs.withdraw(e.engine(), release_id, channel, keep_private))


@schedule_app.command("cancel")
def schedule_cancel(ctx: typer.Context, release_id: ReleaseId, channel: ChannelOpt = None,
                    yes: Yes = False) -> None:
    """Cancel what has not gone live yet (embargoed, pending, deferred)."""
    from publisher.engine import verbs

    e = env(ctx)
    _confirm(e, release_id, channel, "cancel", list(verbs.NOT_LIVE_YET), yes)
    finish(verbs.cancel(e.engine(), release_id, channel))


def _confirm(e: Env, release_id: str, channel: str | None, verb: str, states: list[State],
             yes: bool) -> None:
    """Ask on a terminal; without one, only ``--yes`` goes ahead (exit 2, nothing changed)."""
    from publisher.errors import InputError

    engine = e.engine()
    engine.stored(release_id)
    names = [p.channel for p in engine.publications(release_id, channel) if p.state in states]
    if yes or not names:
        return
    what = f"{verb} {release_id} on {', '.join(names)}"
    if not sys.stdin.isatty():
        raise InputError(f"{what}: not on a terminal, so nothing was done; add --yes to confirm")
    if not typer.confirm(f"{what}?", default=False, err=True):
        err.print("nothing changed")
        raise typer.Exit(1)
