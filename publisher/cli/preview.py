"""`preview`: every channel's output for a release, rendered privately before anything is sent."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from publisher.cli.console import ConsoleReporter, Manifest, Only, app, env, err, out


@app.command()
def preview(ctx: typer.Context, manifest: Manifest, only: Only = None) -> None:
    """Check, encode, and render what each channel would publish into a private folder. Sends nothing."""
    from publisher.engine.preview import preview as render
    from publisher.errors import ExitCode

    e = env(ctx)
    with ConsoleReporter() as reporter:
        result = render(e.engine(reporter), manifest, only)
    table = Table(title=f"preview of {result.release}: {escape(result.title)}")
    for col in ("channel", "language", "open"):
        table.add_column(col)
    for ch in result.channels:
        if ch.error:
            table.add_row(f"{ch.name} ({ch.kind})", "", f"[red]no preview:[/] {escape(ch.error)}")
        for shown in ch.shown:
            opened = [result.folder / ch.name / f for f in (shown.page, shown.image) if f]
            table.add_row(f"{ch.name} ({ch.kind})", shown.language,
                          escape("\n".join(p.as_uri() for p in opened)))
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", markup=True)
    out.print(table)
    out.print(f"preview folder (only you can read it): {escape(str(result.folder))}")
    out.print("open the pages above in a browser on this machine, or see them side by side in the web "
              f"console (`publisher serve`) at /previews/{result.release}. Nothing was sent.")
    raise typer.Exit(ExitCode.FAILED if any(ch.error for ch in result.channels) else ExitCode.OK)
