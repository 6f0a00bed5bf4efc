"""`init`, `demo`, `channels` and `auth`: getting started and signing in."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from publisher.cli.console import ConsoleReporter, app, env, err, out, results_table


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


@app.command()
def demo(ctx: typer.Context,
         folder: Annotated[Path, typer.Argument(help="Where to put the demo.")] = Path("publisher-demo"),
         ) -> None:
    """Make a short demo master with captions in three languages and release it to a local folder."""
    from publisher.cli.demo import make_demo
    from publisher.engine import release as verbs

    e = env(ctx)
    config, manifest = make_demo(folder.resolve())
    e.config_path = config
    with ConsoleReporter() as reporter:
        result = verbs.release(e.engine(reporter), manifest)
    out.print(results_table(result))
    out.print(f"website folder: {config.parent / 'www' / 'videos'}")
    out.print("see every release with `publisher status` (set PUBLISHER_CONFIG and PUBLISHER_HOME "
              "as above, or pass --config and --state-dir)")
    raise typer.Exit(result.exit_code)


@app.command()
def channels(ctx: typer.Context) -> None:
    """List configured channels, their kinds, and whether their credentials are present."""
    from publisher.errors import PublisherError

    e = env(ctx)
    table = Table(title=str(e.config.path))
    for col in ("channel", "kind", "credentials"):
        table.add_column(col)
    for name in e.config.options:
        try:
            present = e.config.channel(name, e.state_dir).credentials_present()
        except PublisherError as exc:
            present, note = False, f" ({escape(str(exc))})"
        else:
            note = ""
        mark = "[green]present[/]" if present else "[red]missing[/]"
        table.add_row(name, e.config.options[name].kind, mark + note)
    out.print(table)


@app.command()
def auth(ctx: typer.Context, channel: Annotated[str, typer.Argument(help="A youtube channel name.")]) -> None:
    """Run the OAuth consent flow for a channel and write its credentials file (mode 0600)."""
    from publisher.errors import InputError

    e = env(ctx)
    if channel not in e.config.options:
        raise InputError(f"no channel '{channel}' in {e.config.path}")
    adapter = e.config.channel(channel, e.state_dir)
    authorize = getattr(adapter, "authorize", None)
    if authorize is None:
        raise InputError(f"channel '{channel}' ({adapter.kind}) has no interactive sign-in; "
                         "its secrets come from files or environment variables")
    out.print(f"credentials written to {authorize(show=lambda text: err.print(escape(text)))}")
