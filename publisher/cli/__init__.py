"""The command line, ``publisher VERB``: the only code that prints.

The shared pieces (the app, consoles, reporters, tables) are in ``console``; each command module
registers its verbs on the app: ``publish`` (check, plan, release, update, approve), ``fix``
(retry, repair, withdraw, schedule cancel), ``preview``, ``status`` (status, schedule list),
``service`` (run, worker), ``start`` (init, demo, channels, auth), ``serve`` (the web console, users)
and ``draft`` (Chinese drafted from the other script).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from publisher.cli import draft, fix, preview, publish, serve, service, start, status
from publisher.cli.console import Env, app

__all__ = ["app", "draft", "fix", "main", "preview", "publish", "serve", "service", "start", "status"]


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
    setup_logging(state, verbose, to_file=ctx.invoked_subcommand not in READ_ONLY)
    ctx.call_on_close(flush_notifications)


def flush_notifications() -> None:
    """Notifications a command queued are sent before it ends (within a bound)."""
    notify = sys.modules.get("publisher.notify")
    if notify is not None:
        notify.flush()


#: commands that write nothing, not even the state folder or its log
READ_ONLY = {"check", "plan", "channels", "init", None}


def setup_logging(state_dir: Path, verbose: bool, *, to_file: bool = True) -> None:
    from publisher.contract import RedactingFilter

    root = logging.getLogger("publisher")
    root.setLevel(logging.DEBUG)
    for h in list(root.handlers):
        root.removeHandler(h)
    handlers: list[logging.Handler] = []
    try:
        if to_file:
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


def main() -> None:
    app()
