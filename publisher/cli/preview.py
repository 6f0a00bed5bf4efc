"""`preview`: every channel's output for a release, rendered privately before anything is sent."""

from __future__ import annotations

import typer
from rich.markup import escape

from publisher.cli.console import ConsoleReporter, Manifest, Only, app, env, err, out


@app.command()
def preview(ctx: typer.Context, manifest: Manifest, only: Only = None) -> None:
    """Check, encode, and render what each channel would publish into a private folder. Sends nothing."""
    from publisher.engine.preview import preview as render
    from publisher.errors import ExitCode

    e = env(ctx)
    with ConsoleReporter() as reporter:
        result = render(e.engine(reporter), manifest, only)
    out.print(f"preview of {result.release}: {escape(result.title)}")
    for ch in result.channels:
        out.print(f"[bold]{escape(ch.name)}[/] ({ch.kind})" + (f": {escape(ch.url)}" if ch.url else ""))
        if ch.error:
            out.print(f"  [{'red' if ch.failed else 'yellow'}]no preview:[/] {escape(ch.error)}")
        for shown in ch.shown:
            opened = [(result.folder / ch.name / f).as_uri() for f in (shown.page, shown.image) if f]
            out.print(f"  {shown.language}: {escape('  '.join(opened))}")
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", markup=True)
    out.print(f"preview folder (only you can read it): {escape(str(result.folder))}")
    out.print("open the pages above in a browser on this machine, or see them side by side in the web "
              f"console (`publisher serve`) at /previews/{result.release}. Nothing was sent.")
    raise typer.Exit(ExitCode.FAILED if any(ch.failed for ch in result.channels) else ExitCode.OK)
