"""Snapshots of a release's source files: what was checked is what is published.

A master, caption file or thumbnail may be replaced while a release runs, or between approval
and the encode. So ``publisher release`` copies each source, hashing the bytes as it copies them,
into ``<cache>/sources/<sha256><suffix>`` (folder 0700, files 0400), and from then on probes,
decodes, encodes and uploads only that copy. The hash compared with the approved hashes is the
hash of the copy, and later runs (the embargo, a retry, a repeat) read the copy with the hash the
store recorded.

Cost: a new source is read once and written once (the copy is the hash pass); a source that was
released before is hashed again and its snapshot verified (read) once per process, and nothing is
written. Candidates are found by file size, so the hash pass of a new master is also its copy.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from publisher.contract import sha256_file
from publisher.errors import InputError, PublisherError
from publisher.inputs.media import CHUNK
from publisher.models import Problem

TMP_PREFIX = ".tmp-"
_verified: dict[Path, tuple[int, int, int]] = {}  # snapshot -> (inode, size, mtime) verified here
_lock = threading.Lock()


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (its work folders are not stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Source:
    original: Path  # the author's file
    path: Path  # its read-only snapshot
    sha256: str
    bytes: int


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _unreadable(path: Path, exc: OSError) -> InputError:
    return InputError(Problem(str(path), "", f"cannot read this file ({exc.strerror or exc})",
                              "check that it exists and is readable, then run the command again"))


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class Snapshots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.created: list[Path] = []  # made by this object; ``discard_new`` removes them

    def _ready(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)

    def _path(self, sha256: str, suffix: str) -> Path:
        return self.folder / f"{sha256}{suffix}"

    def valid(self, path: Path, sha256: str) -> bool:
        """True when ``path`` is a regular file with these bytes (hashed once per process)."""
        sig = _signature(path)
        if sig is None:
            return False
        with _lock:
            if _verified.get(path) == sig:
                return True
        try:
            if sha256_file(path) != sha256 or _signature(path) != sig:
                return False
        except OSError:
            return False
        with _lock:
            _verified[path] = sig
        return True

    def take(self, original: Path) -> Source:
        """Snapshot ``original`` as it is now: reuse a verified copy of the same bytes, else copy
        it while hashing what was read."""
        try:
            self._ready()
            known = [(p, _signature(p)) for p in self.folder.iterdir() if not p.name.startswith(TMP_PREFIX)]
        except OSError as exc:
            raise PublisherError(f"cannot use the rendition cache ({self.folder}): {exc.strerror or exc}; "
                                 "check the folder's owner and permissions, or set cache_dir") from None
        suffix = _suffix(original)
        try:
            size = original.stat().st_size
            same_size = [p for p, sig in known if sig and sig[1] == size and p.name.endswith(suffix)]
            digest = sha256_file(original) if same_size else ""
        except OSError as exc:
            raise _unreadable(original, exc) from None
        existing = self._path(digest, suffix)
        if digest and existing in same_size and self.valid(existing, digest):
            return Source(original, existing, digest, size)
        return self._copy(original, suffix)

    def _copy(self, original: Path, suffix: str) -> Source:
        self._clean_stale()
        tmp = self.folder / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{suffix}"
        digest = hashlib.sha256()
        size = 0
        try:
            src = original.open("rb")
        except OSError as exc:
            raise _unreadable(original, exc) from None
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with src, os.fdopen(fd, "wb") as out:
                while True:
                    try:
                        chunk = src.read(CHUNK)
                    except OSError as exc:
                        raise _unreadable(original, exc) from None
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o400)
            final = self._path(digest.hexdigest(), suffix)
            os.replace(tmp, final)  # the same bytes as any copy already there
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise PublisherError(f"cannot copy {original.name} into the rendition cache ({self.folder}): "
                                 f"{exc.strerror or exc}; free some space there or set cache_dir") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        sig = _signature(final)
        with _lock:
            if sig is not None:
                _verified[final] = sig
        self.created.append(final)
        return Source(original, final, digest.hexdigest(), size)

    def find(self, original: Path, sha256: str | None) -> Path:
        """The snapshot holding the bytes recorded as ``sha256`` for ``original``; when it is gone
        (another machine's cache, or removed), the original is taken again if it still holds them."""
        if sha256 is None or not re.fullmatch(r"[0-9a-f]{64}", sha256):  # a record from before snapshots
            return self.take(original).path
        existing = self._path(sha256, _suffix(original))
        if self.valid(existing, sha256):
            return existing
        try:
            source = self.take(original)
        except (OSError, InputError):
            raise InputError(self._changed(original, sha256, "it cannot be read")) from None
        if source.sha256 != sha256:
            if source.path in self.created:  # a copy of bytes nobody checked
                self.created.remove(source.path)
                source.path.unlink(missing_ok=True)
            raise InputError(self._changed(original, sha256, f"it now has sha256 {source.sha256[:12]}…"))
        return source.path

    @staticmethod
    def _changed(original: Path, sha256: str, now: str) -> Problem:
        return Problem(str(original), "", f"this file changed after it was checked (it had sha256 "
                       f"{sha256[:12]}…; {now}), and its checked copy is no longer in the cache",
                       "put the checked file back, or release the new file as a new version "
                       "(a new id) with `publisher release`")

    def discard_new(self) -> None:
        """Remove the snapshots this object made (the release they were for was refused)."""
        for path in self.created:
            path.unlink(missing_ok=True)
            with _lock:
                _verified.pop(path, None)
        self.created.clear()

    def _clean_stale(self) -> None:
        for entry in self.folder.glob(TMP_PREFIX + "*"):
            try:
                pid = int(entry.name[len(TMP_PREFIX):].split("-")[0])
            except ValueError:
                continue
            if pid != os.getpid() and not alive(pid):
                entry.unlink(missing_ok=True)

