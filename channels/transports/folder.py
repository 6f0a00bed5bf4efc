"""Folder transport: a local or mounted directory; renames with os.replace, writes fsynced."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import IO

from channels.transports.base import CHUNK, Target, os_error
from channels.transports.options import Modes
from publisher.contract import sha256_file


class FolderTarget(Target):
    def __init__(self, root: Path, staging: Path | None = None, modes: Modes | None = None) -> None:
        self.root = root
        self.where = str(root)
        if staging is not None:
            self.staging_root = str(staging)
        self.modes = modes or Modes()

    def _p(self, remote: str) -> Path:
        return Path(remote) if remote.startswith("/") else self.root / remote

    def _fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _makedirs(self, path: Path) -> None:
        """Make ``path`` and its missing parents with the public folder mode (not the umask's)."""
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for folder in reversed(missing):
            folder.mkdir(exist_ok=True)
            self._public(folder)

    def _public(self, path: Path) -> None:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            return
        mode = self.modes.dir if stat.S_ISDIR(st.st_mode) else self.modes.file
        if self.modes.group is not None and st.st_gid != self.modes.group:
            os.chown(path, -1, self.modes.group, follow_symlinks=False)
        if stat.S_IMODE(st.st_mode) != mode:
            os.chmod(path, mode)

    def _write(self, src: IO[bytes] | bytes, remote: str) -> None:
        dst = self._p(remote)
        try:
            self._makedirs(dst.parent)
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
            self._makedirs(d.parent)
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
            if not private:
                self._makedirs(p)
                return
            self._makedirs(p.parent)
            p.mkdir(mode=0o700, exist_ok=True)
            p.chmod(0o700)
        except OSError as e:
            raise os_error(e, f"creating {p}") from e

    def publish_modes(self, remote: str) -> None:
        top = self._p(remote)
        try:
            self._public(top)
            for folder, dirs, files in os.walk(top):  # symlinks are listed, never followed
                for name in dirs + files:
                    self._public(Path(folder, name))
        except OSError as e:
            raise os_error(e, f"making {top} readable for the web server") from e

    def sha256(self, remote: str) -> str:
        try:
            return sha256_file(self._p(remote))
        except OSError as e:
            raise os_error(e, f"reading {self._p(remote)}") from e
