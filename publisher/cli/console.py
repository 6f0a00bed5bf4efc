"""What every command shares: the typer app, the two consoles, state colours, progress reporters
and the results table. Command modules import this module, never each other.

Only the CLI prints. Everything below it is imported inside the commands that use it, so
`publisher --help` loads neither the engine, the store nor any channel.
"""

from __future__ import annotations

import getpass
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from publisher.engine.context import Context

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from publisher.engine.engine import Engine
    from publisher.engine.results import Reporter, RunResult
    from publisher.engine.verbs import Verified
    from publisher.models import State

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
STATE_STYLE = {"live": "green", "scheduled": "cyan", "processing": "blue", "pending": "white",
               "deferred": "yellow", "failed": "red", "withdrawn": "magenta", "cancelled": "dim"}

DEFAULT_STATE = Path("~/.local/share/publisher")
Manifest = Annotated[Path, typer.Argument(help="The release manifest (YAML).")]
Only = Annotated[list[str] | None, typer.Option("--only", help="Only this channel (repeatable).")]
ReleaseId = Annotated[str, typer.Argument(help="The release id (see `publisher status`).")]
ChannelOpt = Annotated[str | None, typer.Option("--channel", help="Only this channel.")]


class _Group(TyperGroup):
    """Turns publisher's errors into a message on stderr and their exit code."""

    ORDER = ("check", "plan", "preview", "draft", "release", "approve", "update", "status", "retry",
             "repair", "withdraw", "schedule", "run", "worker", "serve", "user", "channels", "auth",
             "init", "demo")

    def list_commands(self, ctx: Any) -> list[str]:
        """The commands in the order of a release, not in the order their modules load."""
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: (self.ORDER.index(n) if n in self.ORDER else len(self.ORDER), n))

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        from publisher.contract import redact
        from publisher.errors import PublisherError

        try:
            return super().invoke(ctx)
        except PublisherError as exc:
            err.print(f"[red]error:[/] {escape(redact(str(exc)))}", markup=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            ctx.exit(130)


# Plain help: typer's rich help costs a tenth of a second of imports on every start and shows
# a `<bool>` type on flags.
PLAIN: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False}
app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True, **PLAIN,
                  help="Release one master video to every channel, on time and intact.")
schedule_app = typer.Typer(cls=_Group, no_args_is_help=True, **PLAIN,
                           help="Upcoming runs of the service, and cancelling them.")
app.add_typer(schedule_app, name="schedule")


class Env(Context):
    """What a command needs: the site config and state store (opened when first used), and an
    engine acting for the Unix user."""

    def engine(self, reporter: Reporter | None = None) -> Engine:
        from publisher.engine.engine import Engine

        store = self.store.as_actor(getpass.getuser())
        return Engine(self.config, store, self.state_dir, reporter=reporter)


def env(ctx: typer.Context) -> Env:
    obj = ctx.find_root().obj
    assert isinstance(obj, Env)
    return obj


def styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


class ConsoleReporter:
    """A transcode progress bar with ETA (only on a terminal) and a line per channel event."""

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        if err.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
                                console=err, transient=True)

    def __enter__(self) -> ConsoleReporter:
        if self.bar:
            self.bar.start()
            self.task = self.bar.add_task("transcode", total=1.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()

    def progress(self, fraction: float, text: str) -> None:
        if self.bar and self.task is not None:
            self.bar.update(self.task, completed=fraction, description=text or "transcode")

    def working(self, name: str, text: str) -> None:
        pass

    def channel(self, name: str, state: State, message: str = "") -> None:
        extra = "" if message == state else f" {escape(message)}"
        err.print(f"[{STATE_STYLE.get(state, 'white')}]{name}: {state}[/]{extra}", markup=True)


class LineReporter(ConsoleReporter):
    """One line per channel event, for the long-running service (no progress bars)."""

    def __init__(self) -> None:
        self.bar = None
        self.task = None


def results_table(result: RunResult) -> Table:
    table = Table(title=f"release {result.release}")
    table.add_column("channel", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for col in ("url", "note", "error"):
        table.add_column(col, overflow="fold")
    for r in result.results:
        note = "" if r.note == r.state else r.note
        table.add_row(r.channel, styled(r.state), escape(r.url or r.remote_id), escape(note), escape(r.error))
    return table


def fit_cells(text: str, room: int) -> str:
    """``text`` cut to ``room`` terminal columns (a wide character takes two), ending in "…" if cut."""
    from rich.cells import cell_len, set_cell_size

    return text if cell_len(text) <= room else set_cell_size(text, room - 1).rstrip() + "…"


def detail_lines(label: str, text: str, width: int, *, words: bool = True, whole: bool = False,
                 style: str = "", most: int = 3) -> list[Text]:
    """A labelled text indented under a channel's line, wrapped at words (up to ``most`` lines) or,
    for a URL (``words=False``), broken only when it is wider than the room (never when ``whole``)."""
    from rich.cells import cell_len, chop_cells, set_cell_size

    indent = "      "
    room = max(width - len(indent) - len(label), 20)
    flat = " ".join(text.split())
    if whole or cell_len(flat) <= room:
        parts = [flat]
    elif words and cell_len(flat) == len(flat):
        parts = textwrap.wrap(flat, room, break_on_hyphens=False, max_lines=most, placeholder=" …")
    elif words:  # Chinese breaks between any two characters; a wide one takes two columns
        parts = [line.rstrip() for line in chop_cells(flat, room)]
        if len(parts) > most:
            parts = parts[:most - 1] + [set_cell_size(parts[most - 1], room - 2).rstrip() + " …"]
    else:
        parts = chop_cells(flat, room)
    pad = " " * len(label)
    return [Text(indent + (label if i == 0 else pad)) + Text(part, style=style)
            for i, part in enumerate(parts)]


def finish(result: RunResult, *, label: str = "note") -> NoReturn:
    """Warnings, the results table, and the exit status the results call for."""
    if result.changes:
        err.print(f"changed since the last release: {escape(', '.join(result.changes))}")
    for w in result.warnings:
        err.print(f"[yellow]{label}:[/] {escape(w)}", markup=True)
    out.print(results_table(result))
    raise typer.Exit(result.exit_code)


def verify_table(checked: list[Verified]) -> Table:
    table = Table(title="verify: what each channel says now")
    for col in ("release", "channel", "store", "channel says", "drift"):
        table.add_column(col, overflow="fold")
    for v in checked:
        drift = escape("; ".join(v.drift)) if v.drift else "[green]none[/]"
        table.add_row(v.release, v.channel, styled(v.stored_state),
                      styled(v.remote_state or "unknown"), f"[red]{drift}[/]" if v.drift else drift)
    return table
