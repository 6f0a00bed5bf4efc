"""`run` (the service: embargoes, retries, repeats) and `worker` (scale-out on a Redis broker)."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from publisher.cli.console import LineReporter, app, env, err, out


@app.command()
def run(ctx: typer.Context,
        poll: Annotated[float, typer.Option("--poll", help="Seconds between looks at the store.")] = 2.0,
        ) -> None:
    """Run the scheduler in the foreground (embargoes, deferred retries, repeats) until SIGTERM/Ctrl-C."""
    from publisher.scale.leader import Leadership
    from publisher.schedule.planning import plan
    from publisher.schedule.service import Service
    from publisher.store import utcnow
    from publisher.times import local

    e = env(ctx)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT and stop.is_set():
            err.print("second Ctrl-C: stopping at once; running jobs resume when the service starts again")
            os._exit(130)
        err.print(f"received {signal.Signals(signum).name}; stopping after running jobs finish"
                  + (" (Ctrl-C again to stop at once)" if signum == signal.SIGINT else ""))
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    zone = e.config.zone
    planned = plan(e.store)
    out.print(f"publisher service: {len(planned.jobs)} job(s) planned; times in {zone.key}")
    for j in planned.jobs[:10]:
        out.print(f"  {local(j.next_run, zone)}  {j.release}  {j.description}", markup=False)

    def notify(text: str) -> None:
        out.print(f"{local(utcnow(), zone)}  {text}", markup=False)

    leadership = Leadership(e.store, e.state_dir)
    try:
        Service(e.config, e.store, e.state_dir, poll=poll, notify=notify, reporter=LineReporter(),
                leader=leadership.try_acquire).serve(stop)
    finally:
        leadership.release()


@app.command()
def worker(ctx: typer.Context,
           threads: Annotated[int, typer.Option(help="Steps this process runs at once.")] = 1) -> None:
    """Run a Dramatiq worker on the config's Redis broker until SIGTERM (scale-out)."""
    from publisher.errors import InputError

    e = env(ctx)
    if not e.config.settings.broker:
        raise InputError(f"{e.config.path}: no `broker:` set; add e.g. broker: redis://127.0.0.1:6379/0")
    from publisher.scale.worker import run_worker

    err.print(f"worker on {e.config.settings.broker.split('@')[-1]} ({threads} thread(s))")
    run_worker(e.config.path, e.state_dir, threads)
