"""A real PostgreSQL server in a temporary folder on 127.0.0.1 (run as the `postgres` user,
since PostgreSQL refuses to run as root). Yields an SQLAlchemy URL, or None when PostgreSQL's
binaries are not installed."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers.redis_server import free_port


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server(folder: Path) -> Iterator[str]:
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed")
    as_pg: list[str] = []
    if os.geteuid() == 0:
        # The postgres user cannot enter pytest's root-only folders: use its own under /tmp.
        folder = Path(tempfile.mkdtemp(prefix="publisher-pg-"))
        shutil.chown(folder, "postgres", "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    else:
        folder.mkdir(parents=True, exist_ok=True)
    data = folder / "pgdata"
    port = free_port()
    subprocess.run([*as_pg, str(bindir / "initdb"), "-D", str(data), "-U", "publisher", "-A", "trust",
                    "--no-sync"], check=True, capture_output=True)
    log = folder / "pg.log"
    subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        url = f"postgresql+psycopg://publisher@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 15
        import psycopg

        while True:
            try:
                psycopg.connect(f"host=127.0.0.1 port={port} user=publisher dbname=postgres").close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        if as_pg:
            shutil.rmtree(folder, ignore_errors=True)
