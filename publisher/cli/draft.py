"""`draft`: Simplified Chinese drafted from Traditional (or back), for a person to review."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from publisher.cli.console import Manifest, app, env, out

if TYPE_CHECKING:
    from rich.table import Table

    from publisher.inputs.drafting import DraftResult


@app.command()
def draft(ctx: typer.Context, manifest: Manifest,
          to: Annotated[str, typer.Option("--to", help="The language to draft: zh-Hans (from zh-Hant) or "
                                          "zh-Hant (from zh-Hans).")],
          force: Annotated[bool, typer.Option("--force", help="Replace texts and caption files that "
                                              "exist.")] = False) -> None:
    """Fill the missing title, description, tags and captions of one Chinese script from the other
    (OpenCC, Hong Kong phrasing); each is marked a machine draft until edited or approved."""
    from publisher.inputs.drafting import draft as make_drafts
    from publisher.store.drafts import record_draft

    e = env(ctx)
    result = make_drafts(manifest, to, force=force)
    store = e.store.as_actor(getpass.getuser())
    for d in result.written:
        record_draft(store, result.release_id, d.key, d.sha256, result.how)
    if result.written:
        out.print(side_by_side(result))
        out.print(f"wrote {len(result.written)} machine draft(s) into {result.manifest.name}"
                  + "".join(f" and {d.path.name}" for d in result.written if d.path) + "; they stay "
                  "drafts until a person edits them or approves the release (`publisher approve`)",
                  markup=False)
    for kept in result.kept:
        out.print(f"kept {kept}: it exists (--force replaces it)", markup=False)
    if not result.written and not result.kept:
        out.print(f"nothing to draft: no {result.source} text or captions")


def side_by_side(result: DraftResult) -> Table:
    from rich.table import Table
    from rich.text import Text

    from publisher.inputs.cues import parse, timestamp

    table = Table(title=f"drafted {result.target} from {result.how}", show_lines=True)
    table.add_column("what", no_wrap=True)
    table.add_column(result.source, overflow="fold")
    table.add_column(f"{result.target} (draft)", overflow="fold")
    for d in result.written:
        if d.path is None:
            table.add_row(d.key, Text(d.source.rstrip("\n")), Text(d.text.rstrip("\n")))
            continue
        source = parse(Path(d.source).read_bytes().decode("utf-8-sig"))
        drafted = parse(d.text)
        assert source is not None and drafted is not None
        for a, b in zip(source.cues, drafted.cues, strict=True):
            table.add_row(Text(f"{d.key} {timestamp(a.start)}"), Text(a.text), Text(b.text))
    return table
