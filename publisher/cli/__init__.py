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
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from publisher.cli import draft, fix, preview, publish, serve, service, start, status
from publisher.cli.console import DEFAULT_STATE, Env, app

__all__ = ["app", "draft", "fix", "main", "preview", "publish", "serve", "service", "start", "status"]


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", envvar="PUBLISHER_CONFIG", show_default=False,
        help="Site config file (default: ./publisher.yaml if present, else the config this state "
             "folder last used).")] = None,
    state_dir: Annotated[Path, typer.Option("--state-dir", envvar="PUBLISHER_HOME",
                                            help="State store, rendition cache and logs.")]
    = DEFAULT_STATE,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details to stderr.")] = False,
) -> None:
    state = Path(os.path.abspath(os.path.expanduser(str(state_dir))))
    ctx.obj = Env(config_path=find_config(config, state), state_dir=state)
    setup_logging(state, verbose, to_file=ctx.invoked_subcommand not in READ_ONLY)
    ctx.call_on_close(flush_notifications)
    if ctx.invoked_subcommand not in SERVICES and threading.current_thread() is threading.main_thread():
        before = signal.signal(signal.SIGINT, _interrupted)
        ctx.call_on_close(lambda: signal.signal(signal.SIGINT, before))


def flush_notifications() -> None:
    """Notifications a command queued are sent before it ends (within a bound)."""
    notify = sys.modules.get("publisher.notify")
    if notify is not None:
        notify.flush()


#: long-running commands with their own graceful shutdown
SERVICES = {"run", "worker", "serve"}
INTERRUPT_GRACE = 1.5  # seconds for the command to unwind before the process ends anyway


def _interrupted(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C on a one-shot command: say how to resume, let the command unwind, and end the
    process within the grace period whatever is still running (every step is recorded as it
    completes, so running the command again continues where this one stopped)."""
    sys.stderr.write("\ninterrupted: stopping now; run the same command again to resume "
                     "(what is done is recorded)\n")
    sys.stderr.flush()
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    timer = threading.Timer(INTERRUPT_GRACE, os._exit, args=(130,))
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def find_config(given: Path | None, state_dir: Path) -> Path:
    """``--config`` (or PUBLISHER_CONFIG), else ./publisher.yaml, else the one the state folder
    last used, so that `publisher status` works from any folder."""
    from publisher.engine.context import recorded_config

    if given is not None:
        return Path(os.path.abspath(os.path.expanduser(str(given))))
    here = Path("publisher.yaml")
    if here.is_file():
        return here.absolute()
    return recorded_config(state_dir, present=False) or here.absolute()


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
