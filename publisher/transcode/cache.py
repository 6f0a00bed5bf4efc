"""The rendition cache: ``<cache_dir>/<key>/`` folders with a ``manifest.json`` of file checksums.

A folder is built under ``<cache_dir>/.tmp-<pid>-<random>/`` and renamed into place only after its
outputs passed their checks, so a failed or killed encode never leaves a cache entry. An entry is
verified (sizes and sha256) before use; one that fails is deleted and rebuilt, never trusted.

The cache holds renditions of embargoed releases, so it is owner-only (folders 0700, files 0600),
the root too; machines that share it run their workers under one service account.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from publisher.contract import sha256_file
from publisher.errors import TranscodeError
from publisher.inputs.snapshots import alive
from publisher.models import FileInfo, Rendition

MANIFEST = "manifest.json"
TMP_PREFIX = ".tmp-"
LOCK = ".lock"


def file_list(folder: Path) -> list[FileInfo]:
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        files.append(FileInfo(name=path.relative_to(folder).as_posix(), bytes=path.stat().st_size,
                              sha256=sha256_file(path)))
    return files


def make_private(folder: Path) -> None:
    """Owner-only, whatever the umask was when ffmpeg wrote it: folders 0700, files 0600."""
    folder.chmod(0o700)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o700 if path.is_dir() else 0o600)


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = root  # created on the first write: planning writes nothing
        self._cleaned = False

    def path(self, key: str) -> Path:
        return self.root / key

    def private_root(self) -> Path:
        """The cache root, made if missing and owner-only (also a ``cache_dir`` made by someone else)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.root.stat().st_mode & 0o077:
            try:
                self.root.chmod(0o700)
            except OSError as e:
                raise TranscodeError(
                    f"the rendition cache {self.root} is readable by others and cannot be made "
                    f"owner-only ({e.strerror}); run publisher as the account that owns it") from None
        return self.root

    def clean_stale(self) -> None:
        """Remove work folders left by a process that was killed (its pid no longer runs)."""
        self._cleaned = True
        if not self.root.is_dir():
            return
        for entry in self.root.glob(TMP_PREFIX + "*"):
            try:
                pid = int(entry.name[len(TMP_PREFIX):].split("-")[0])
            except ValueError:
                continue
            if pid != os.getpid() and not alive(pid):
                shutil.rmtree(entry, ignore_errors=True)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One encoding process per cache at a time (several workers may share it); the lock
        goes away with the process, so a killed worker never blocks the others."""
        fd = os.open(self.private_root() / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def work_dir(self) -> Path:
        if not self._cleaned:
            self.clean_stale()
        path = self.private_root() / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        path.mkdir(mode=0o700)
        return path

    def _read(self, key: str) -> Rendition | None:
        folder = self.path(key)
        try:
            data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            rendition = Rendition.model_validate({**data, "folder": str(folder)})
        except (OSError, ValueError, ValidationError):
            return None
        return rendition if rendition.key == key else None

    def peek(self, key: str) -> bool:
        """Cheap check for planning: the manifest reads and every file has its recorded size."""
        rendition = self._read(key)
        if rendition is None:
            return False
        try:
            return all((rendition.folder / f.name).stat().st_size == f.bytes for f in rendition.files)
        except OSError:
            return False

    def load(self, key: str) -> Rendition | None:
        """The cached rendition if every file matches its checksum; a bad entry is removed."""
        rendition = self._read(key)
        if rendition is not None:
            recorded = {f.name: f for f in rendition.files}
            try:
                found = {f.name: f for f in file_list(rendition.folder)}
            except OSError:
                found = {}
            if found == recorded:
                return rendition
        if self.path(key).exists():
            self.discard(key)
        return None

    def discard(self, key: str) -> None:
        folder = self.path(key)
        if folder.exists():
            # rename first, so a reader never sees a half-deleted entry
            trash = self.root / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-trash"
            folder.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    def commit(self, folder: Path, rendition: Rendition) -> Rendition:
        """Record checksums of ``folder`` and rename it to ``<root>/<key>``.

        If another process committed the same key meanwhile, a good entry is kept (readers may be
        using it) and ours is dropped; a bad one is replaced.
        """
        done = rendition.model_copy(update={"files": file_list(folder), "folder": self.path(rendition.key)})
        data = done.model_dump(mode="json", exclude={"folder"})
        (folder / MANIFEST).write_text(json.dumps(data, indent=1), encoding="utf-8")
        make_private(folder)
        for _ in range(3):
            try:
                folder.rename(self.path(rendition.key))  # atomic; fails if the key exists
                return done
            except OSError:
                existing = self.load(rendition.key)  # removes a bad entry
                if existing is not None:
                    shutil.rmtree(folder, ignore_errors=True)
                    return existing
        raise OSError(f"cannot move {folder} into the rendition cache at {self.path(rendition.key)}")
