"""`init`, `demo`, `channels` and `auth`: getting started and signing in."""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from publisher.cli.console import (
    DEFAULT_STATE,
    ConsoleReporter,
    app,
    detail_lines,
    env,
    err,
    out,
    results_table,
)


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
         serve: Annotated[bool, typer.Option("--serve", help="Then serve its website on this machine "
                                             "until Ctrl-C.")] = False,
         port: Annotated[int, typer.Option("--port", help="The port for --serve (and the demo's "
                                           "public_url when it is first made).")] = 8000,
         ) -> None:
    """Make a short demo master with captions in three languages and release it to a local folder."""
    import signal

    from publisher.cli import demo as made
    from publisher.engine import release as verbs

    e = env(ctx)
    config, manifest = made.make_demo(folder.resolve(), port=port)
    e.config_path = config
    with ConsoleReporter() as reporter:
        result = verbs.release(e.engine(reporter), manifest)
    out.print(results_table(result))
    root, www = config.parent, config.parent / "www"
    pages = [r.url for r in result.results if r.url]
    state = "" if e.state_dir == DEFAULT_STATE.expanduser() else f" --state-dir {e.state_dir}"
    out.print(f"\nmade in {root}:", markup=False)
    for path, what in ((config, "the site config (one website channel)"),
                       (manifest, "the release: master, captions in three languages, titles"),
                       (www / "videos", "the website, as a web server would serve it")):
        out.print(f"  {str(path.relative_to(root)):<22}{what}", markup=False)
    site = pages[0] if pages else "its public_url"
    out.print("look at it:", markup=False)
    for command, what in ((f"publisher{state} status", "what went where (from any folder: the state "
                                                        "folder remembers this config)"),
                          (f"publisher{state} status --html report.html", "a report to open in a browser"),
                          (f"publisher{state} demo {folder} --serve", f"the website at {site}")):
        out.print(f"  {command}", markup=False)
        out.print(f"      {what}", markup=False)
    if result.exit_code or not serve:
        raise typer.Exit(result.exit_code)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C just stops serving
    made.serve(www, port, lambda url: out.print(f"serving {www} at {url} (this machine only); "
                                                 "Ctrl-C to stop", markup=False))


@app.command()
def channels(ctx: typer.Context) -> None:
    """List configured channels, their kinds, and exactly what is missing of their credentials
    (an environment variable, a file, a file others can read). Exit 2 when something is."""
    from publisher.errors import PublisherError

    e = env(ctx)
    width = shutil.get_terminal_size().columns
    out.print(Text(f"channels in {e.config.path}", style="italic"))
    names = e.config.options
    nw, kw = max(map(len, names), default=0), max((len(o.kind) for o in names.values()), default=0)
    missing = 0
    for name, options in names.items():
        warnings: list[str] = []
        try:
            channel = e.config.channel(name, e.state_dir)
            problems = [str(p) for p in channel.credential_problems()]
            warnings = [str(w) for w in channel.warnings()]
        except PublisherError as exc:
            problems = [str(exc)]
        missing += len(problems)
        line = Text(f"  {name:<{nw}}  {options.kind:<{kw}}  ")
        line.append("credentials missing:" if problems else "credentials present",
                    style="red" if problems else "green")
        out.print(line)
        for problem in problems:
            for part in detail_lines("", problem, width, most=12):  # what to fix, whole
                out.print(part)
        for warning in warnings:
            for part in detail_lines("warning: ", warning, width, most=12, style="yellow"):
                out.print(part)
    if e.config.settings.notify:
        from publisher.inputs.config import notify_problems

        problems = [str(p) for p in notify_problems(e.config)]
        missing += len(problems)
        line = Text(f"  notify ({len(e.config.settings.notify)})  ")
        line.append("cannot be sent:" if problems else "understood", style="red" if problems else "green")
        out.print(line)
        for problem in problems:
            for part in detail_lines("", problem, width, most=12):  # what to fix, whole
                out.print(part)
    if missing:
        raise typer.Exit(2)


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
