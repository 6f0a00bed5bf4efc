"""The command line. The only module that prints.

Verbs here: init, check, plan, release, channels, auth. Operations and reports (status, run,
schedule, retry, update, withdraw, approve) live in ``publisher.cli_ops`` on the same app.
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from typer.core import TyperGroup

from publisher.checks import prepare
from publisher.context import Context
from publisher.contract import RedactingFilter, redact
from publisher.errors import InputError, PublisherError
from publisher.orchestrator import Orchestrator, Reporter, RunResult

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _Group(TyperGroup):
    """Turns publisher's errors into a message on stderr and their exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except PublisherError as exc:
            err.print(f"[red]error:[/] {escape(redact(str(exc)))}", markup=True)
            ctx.exit(exc.exit_code)


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True,
                  help="Release one master video to every channel, on time and intact.")
STATE_STYLE = {"live": "green", "scheduled": "cyan", "processing": "blue", "pending": "white",
               "deferred": "yellow", "failed": "red", "withdrawn": "magenta", "cancelled": "dim"}


class Env(Context):
    """What every command needs."""

    def orchestrator(self, reporter: Reporter | None = None) -> Orchestrator:
        store = self.store.as_actor(getpass.getuser())  # the Unix user is who acts on the CLI
        return Orchestrator(self.config, store, self.state_dir, reporter=reporter)


def env(ctx: typer.Context) -> Env:
    obj = ctx.find_root().obj
    assert isinstance(obj, Env)
    return obj


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[Path, typer.Option("--config", envvar="PUBLISHER_CONFIG",
                                         help="Site config file.")] = Path("publisher.yaml"),
    state_dir: Annotated[Path, typer.Option("--state-dir", envvar="PUBLISHER_HOME",
                                            help="State store, rendition cache and logs.")]
    = Path("~/.local/share/publisher"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details to stderr.")] = False,
) -> None:
    state = Path(os.path.expanduser(str(state_dir)))
    ctx.obj = Env(config_path=Path(os.path.expanduser(str(config))), state_dir=state)
    setup_logging(state, verbose)


def setup_logging(state_dir: Path, verbose: bool) -> None:
    root = logging.getLogger("publisher")
    root.setLevel(logging.DEBUG)
    for h in list(root.handlers):
        root.removeHandler(h)
    handlers: list[logging.Handler] = []
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        logfile = state_dir / "publisher.log"
        os.close(os.open(logfile, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))
        handlers.append(logging.FileHandler(logfile, encoding="utf-8"))
    except OSError:
        pass
    stream = logging.StreamHandler(sys.stderr)
    stream.setLevel(logging.DEBUG if verbose else logging.WARNING)
    handlers.append(stream)
    for h in handlers:
        h.addFilter(RedactingFilter())
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(h)


class ConsoleReporter(Reporter):
    """A transcode progress bar with ETA (only on a terminal) and a line per channel event."""

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        if err.is_terminal:
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

    def channel(self, name: str, state: str, message: str = "") -> None:
        if state != "working":
            extra = "" if message == state else f" {escape(message)}"
            err.print(f"[{STATE_STYLE.get(state, 'white')}]{name}: {state}[/]{extra}", markup=True)


def results_table(result: RunResult) -> Table:
    table = Table(title=f"release {result.release}")
    for col in ("channel", "kind", "state", "remote id", "url", "error"):
        table.add_column(col, overflow="fold")
    for r in result.results:
        table.add_row(r.channel, r.kind, f"[{STATE_STYLE.get(r.state, 'white')}]{r.state}[/]",
                      escape(r.remote_id), escape(r.url), escape(r.error or r.note))
    return table


Manifest = Annotated[Path, typer.Argument(help="The release manifest (YAML).")]
Only = Annotated[list[str] | None, typer.Option("--only", help="Only this channel (repeatable).")]


@app.command()
def check(ctx: typer.Context, manifest: Manifest, only: Only = None) -> None:
    """Validate manifest, config, master, captions and thumbnail. No network, no writes."""
    e = env(ctx)
    prep = prepare(e.config, manifest, e.state_dir, only)  # not e.orchestrator(): it opens the store
    m = prep.master
    out.print(f"OK {prep.release.id}: {m.path.name} {m.width}x{m.height} {m.fps:g} fps "
              f"{m.duration:.1f} s {m.video_codec}/{m.audio_codec or 'no audio'}, sha256 {m.sha256[:16]}…")
    out.print(f"channels: {', '.join(f'{n} ({c.kind})' for n, c in prep.channels.items())}")
    for w in prep.warnings:
        out.print(f"[yellow]warning:[/] {w}")


@app.command()
def plan(ctx: typer.Context, manifest: Manifest, only: Only = None) -> None:
    """Show what would be encoded, what each channel would receive, and API quota costs."""
    e = env(ctx)
    orch = e.orchestrator()
    prep = orch.prepare(manifest, only)
    requests = {n: orch.requests_for(c, prep.release) for n, c in prep.channels.items()}
    tplan = orch.transcoder().plan(prep.release, prep.master, requests)
    table = Table(title=f"renditions for {prep.release.id}")
    for col in ("rendition", "key", "status", "used by"):
        table.add_column(col)
    for item in tplan.items:
        table.add_row(item.description, item.key[:12], "cached" if item.cached else "[yellow]to encode[/]",
                      ", ".join(item.channels))
    out.print(table)
    chan = Table(title="channels")
    for col in ("channel", "kind", "sends", "quota units"):
        chan.add_column(col, overflow="fold")
    for name, ch in prep.channels.items():
        p = ch.plan(prep.release)
        quota = ", ".join(f"{k} {v}" for k, v in p.quota.items()) or "-"
        chan.add_row(name, ch.kind, "; ".join(p.sends), quota)
    out.print(chan)


@app.command()
def release(ctx: typer.Context, manifest: Manifest, only: Only = None) -> None:
    """Check, transcode once, publish to every channel, record everything."""
    e = env(ctx)
    with ConsoleReporter() as reporter:
        orch = e.orchestrator(reporter)
        if e.config.settings.broker:
            from publisher.worker import enqueue

            result = enqueue(orch, manifest, only)
        else:
            result = orch.release(manifest, only)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {w}")
    out.print(results_table(result))
    raise typer.Exit(result.exit_code)


@app.command()
def worker(ctx: typer.Context,
           threads: Annotated[int, typer.Option(help="Steps this process runs at once.")] = 1) -> None:
    """Run a Dramatiq worker on the config's Redis broker until SIGTERM (scale-out)."""
    e = env(ctx)
    if not e.config.settings.broker:
        raise InputError(f"{e.config.path}: no `broker:` set; add e.g. broker: redis://127.0.0.1:6379/0")
    from publisher.worker import run_worker

    err.print(f"worker on {e.config.settings.broker.split('@')[-1]} ({threads} thread(s))")
    run_worker(e.config.path, e.state_dir, threads)


@app.command()
def channels(ctx: typer.Context) -> None:
    """List configured channels, their kinds, and whether their credentials are present."""
    e = env(ctx)
    table = Table(title=str(e.config.path))
    for col in ("channel", "kind", "credentials"):
        table.add_column(col)
    for name in e.config.options:
        try:
            present = e.config.channel(name, e.state_dir).credentials_present()
        except PublisherError as exc:
            present, note = False, f" ({exc})"
        else:
            note = ""
        mark = "[green]present[/]" if present else "[red]missing[/]"
        table.add_row(name, e.config.options[name].kind, mark + note)
    out.print(table)


@app.command()
def auth(ctx: typer.Context, channel: Annotated[str, typer.Argument(help="A youtube channel name.")]) -> None:
    """Run the OAuth consent flow for a channel and write its credentials file (mode 0600)."""
    e = env(ctx)
    if channel not in e.config.options:
        raise InputError(f"no channel '{channel}' in {e.config.path}")
    adapter = e.config.channel(channel, e.state_dir)
    authorize = getattr(adapter, "authorize", None)
    if authorize is None:
        raise InputError(f"channel '{channel}' ({adapter.kind}) has no interactive sign-in; "
                         "its secrets come from files or environment variables")
    out.print(f"credentials written to {authorize(show=lambda text: err.print(escape(text)))}")


@app.command()
def init(folder: Annotated[Path, typer.Argument(help="Where to write the examples.")] = Path(".")) -> None:
    """Write a commented example publisher.yaml and release.yaml to start from."""
    folder.mkdir(parents=True, exist_ok=True)
    templates = files("assets") / "templates"
    for name in ("publisher.yaml", "release.yaml"):
        target = folder / name
        if target.exists():
            err.print(f"{target} exists; left as it is")
            continue
        target.write_text((templates / f"init-{name}").read_text(encoding="utf-8"), encoding="utf-8")
        out.print(f"wrote {target}")


def main() -> None:
    app()



@app.command()
def demo(ctx: typer.Context,
         folder: Annotated[Path, typer.Argument(help="Where to put the demo.")] = Path("publisher-demo"),
         ) -> None:
    """Make a short demo master with captions in three languages and release it to a local folder."""
    from publisher.demo import make_demo

    e = env(ctx)
    config, manifest = make_demo(folder.resolve())
    e.config_path = config
    with ConsoleReporter() as reporter:
        result = e.orchestrator(reporter).release(manifest)
    from publisher.cli_ops import status

    status(ctx)
    out.print(f"website folder: {config.parent / 'www' / 'videos'}")
    raise typer.Exit(result.exit_code)


from publisher import cli_console  # noqa: E402,F401,I001  (registers `serve` and `user` on `app`)
from publisher import cli_ops  # noqa: E402,F401  (registers the operations verbs on `app`)
