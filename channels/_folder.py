"""Folder transport: a local or mounted directory; renames with os.replace, writes fsynced."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import IO

from channels.targets import CHUNK, Target, os_error, sha256_file


class FolderTarget(Target):
    def __init__(self, root: Path, staging: Path | None = None) -> None:
        self.root = root
        self.where = str(root)
        if staging is not None:
            self.staging_root = str(staging)

    def _p(self, remote: str) -> Path:
        return Path(remote) if remote.startswith("/") else self.root / remote

    def _fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write(self, src: IO[bytes] | bytes, remote: str) -> None:
        dst = self._p(remote)
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            with dst.open("wb") as out:
                if isinstance(src, bytes):
                    out.write(src)
                else:
                    shutil.copyfileobj(src, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
        except OSError as e:
            raise os_error(e, f"writing {dst}") from e

    def put_file(self, local: Path, remote: str) -> None:
        with local.open("rb") as f:
            self._write(f, remote)

    def put_bytes(self, data: bytes, remote: str) -> None:
        self._write(data, remote)

    def get_bytes(self, remote: str) -> bytes:
        try:
            return self._p(remote).read_bytes()
        except OSError as e:
            raise os_error(e, f"reading {self._p(remote)}") from e

    def exists(self, remote: str) -> bool:
        return self._p(remote).exists()

    def listdir(self, remote_dir: str) -> list[str]:
        p = self._p(remote_dir)
        return sorted(os.listdir(p)) if p.is_dir() else []

    def move(self, src: str, dst: str) -> None:
        d = self._p(dst)
        try:
            d.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._p(src), d)
            self._fsync_dir(d.parent)
        except OSError as e:
            raise os_error(e, f"renaming {self._p(src)} to {d}") from e

    def delete(self, remote: str) -> None:
        p = self._p(remote)
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
        except OSError as e:
            raise os_error(e, f"deleting {p}") from e

    def mkdir(self, remote_dir: str, private: bool = False) -> None:
        p = self._p(remote_dir)
        try:
            p.mkdir(parents=True, exist_ok=True)
            if private:
                p.chmod(0o700)
        except OSError as e:
            raise os_error(e, f"creating {p}") from e

    def sha256(self, remote: str) -> str:
        try:
            return sha256_file(self._p(remote))
        except OSError as e:
            raise os_error(e, f"reading {self._p(remote)}") from e
