"""What every transport offers the file-based channels, and what they build on it.

``Target`` is the interface a backend (``folder``, ``webdav``, ``sftp``) implements; this module
imports none of them (``channels.transports.open_target`` picks one). ``ReleaseFolder`` publishes
one folder on any target: staged privately, checked against its ``SHA256SUMS``, renamed into place.

Remote paths are '/'-separated and relative to the target root. A path that starts with '/'
is absolute on the same filesystem or server; that is how the ``staging:`` option places the
staging area outside the public tree while going live stays a rename on one server.

Errors: network faults raise ``Transient``; refused credentials or host keys ``AuthError``;
a full disk or quota ``Rejected``; a missing file on ``get_bytes``/``sha256`` ``NotFound``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from channels.transports.options import Modes
from publisher.contract import Journal
from publisher.errors import AuthError, ChannelError, NotFound, Rejected, Transient

CHUNK = 1 << 20
STAGING_DIR = ".publisher-staging"


class Target(ABC):
    """One place files go. Not thread-safe; ``close`` when done (or use it as a context manager).

    ``put_file``/``put_bytes`` create parent folders; ``get_bytes`` and ``sha256`` (streamed
    read-back) raise ``NotFound``; ``move`` is an atomic rename on the target that replaces a file
    (not a non-empty folder); ``delete`` removes a file or a tree, a missing one is fine;
    ``mkdir(private=True)`` makes it 0700 where the target has permissions (not WebDAV), other
    folders it makes get the public ``modes``; ``publish_modes`` gives a file or a whole tree the
    public ``modes`` (WebDAV: the server decides).
    """

    #: where staged releases are built (a remote path, relative or absolute)
    staging_root: str = STAGING_DIR
    modes: Modes = Modes()
    #: human-readable location, safe for messages (no secrets)
    where: str = ""

    @abstractmethod
    def put_file(self, local: Path, remote: str) -> None: ...
    @abstractmethod
    def put_bytes(self, data: bytes, remote: str) -> None: ...
    @abstractmethod
    def get_bytes(self, remote: str) -> bytes: ...
    @abstractmethod
    def exists(self, remote: str) -> bool: ...
    @abstractmethod
    def listdir(self, remote_dir: str) -> list[str]: ...
    @abstractmethod
    def move(self, src: str, dst: str) -> None: ...
    @abstractmethod
    def delete(self, remote: str) -> None: ...
    @abstractmethod
    def mkdir(self, remote_dir: str, private: bool = False) -> None: ...
    @abstractmethod
    def sha256(self, remote: str) -> str: ...
    @abstractmethod
    def publish_modes(self, remote: str) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional for targets without a connection
        pass

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parent(remote: str) -> str:
    p = str(PurePosixPath(remote).parent)
    return "" if p == "." else p


def join(*parts: str) -> str:
    return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p)


def random_name() -> str:
    return secrets.token_hex(8)


def new_staging(target: Target) -> str:
    """Create a private (0700 where supported) staging folder with a random name; return its path."""
    target.mkdir(target.staging_root, private=True)
    path = join(target.staging_root, random_name())
    target.mkdir(path, private=True)
    return path


def write_atomic(target: Target, data: bytes | Path, remote: str) -> None:
    """Replace a public file atomically: upload to a hidden temp name beside it, give it the
    public modes, then rename."""
    name = PurePosixPath(remote).name
    tmp = join(parent(remote), f".{name}.{random_name()}.tmp")
    if isinstance(data, Path):
        target.put_file(data, tmp)
    else:
        target.put_bytes(data, tmp)
    try:
        target.publish_modes(tmp)
        target.move(tmp, remote)
    except BaseException:
        with contextlib.suppress(ChannelError):
            target.delete(tmp)
        raise


def os_error(e: OSError, what: str) -> ChannelError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return Rejected(f"{what}: no space left on the target ({e.strerror})")
    if e.errno in (errno.EACCES, errno.EPERM):
        return AuthError(f"{what}: permission denied ({e.strerror}); give publisher write access")
    if e.errno == errno.ENOENT:
        return NotFound(f"{what}: not found")
    if e.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        return Rejected(f"{what}: a file stands where a folder should be, or a folder where a file "
                        f"should be ({e.strerror}); point target at a folder")
    if e.errno == errno.EROFS:
        return Rejected(f"{what}: the file system is read-only; choose a writable target")
    return Transient(f"{what}: {e.strerror or e}")


# --- a release folder: staged, verified, moved into place --------------------------------
@dataclass(frozen=True)
class Upload:
    """One file of a release folder: its name inside the folder, and where its bytes come from."""

    name: str
    sha256: str
    local: Path | None = None
    data: bytes | None = None

    @staticmethod
    def of_bytes(name: str, data: bytes) -> Upload:
        return Upload(name, hashlib.sha256(data).hexdigest(), data=data)


def sums_text(sums: dict[str, str]) -> bytes:
    """``SHA256SUMS`` (name -> sha256) in the format ``sha256sum -c`` reads."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())).encode()


def sums_of(files: list[Upload]) -> dict[str, str]:
    return {f.name: f.sha256 for f in files}


def parse_sums(text: bytes) -> dict[str, str]:
    out = {}
    for line in text.decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        if name:
            out[name] = digest
    return out


class ReleaseFolder:
    """Publishes one folder (``public``) on a target, resumably, through a ``Journal``.

    ``stage`` uploads to a random private staging folder, skipping files the journal says are
    there already, writes ``SHA256SUMS`` last and reads every file back to check it. ``go_live``
    renames the staged folder onto the public path, so the public sees all of it or none of it.
    """

    def __init__(self, target: Target, public: str, journal: Journal) -> None:
        self.target, self.public, self.journal = target, public, journal

    def public_sums(self) -> dict[str, str] | None:
        try:
            return parse_sums(self.target.get_bytes(join(self.public, "SHA256SUMS")))
        except NotFound:
            return None

    def is_live(self, files: list[Upload]) -> bool:
        return self.public_sums() == sums_of(files)

    def stage(self, files: list[Upload]) -> None:
        t, j = self.target, self.journal
        staging = j.get("staging")
        if not staging or not t.exists(staging):
            t.mkdir(t.staging_root, private=True)
            staging = join(t.staging_root, random_name())
            j.delete("verified")
            j.put("sent", {})
            j.put("staging", staging)  # intent first: a crash leaves a known name to reuse
            t.mkdir(staging, private=True)
        sent: dict[str, str] = dict(j.get("sent") or {})
        wanted = {f.name: f.sha256 for f in files}
        for name in [n for n in sent if n not in wanted]:
            t.delete(join(staging, name))
            del sent[name]
        for f in files:
            if sent.get(f.name) == f.sha256:
                continue
            sent.pop(f.name, None)
            j.put("sent", sent)
            if f.local is not None:
                t.put_file(f.local, join(staging, f.name))
            else:
                t.put_bytes(f.data or b"", join(staging, f.name))
            sent[f.name] = f.sha256
            j.put("sent", sent)
        sums = sums_text(sums_of(files))
        if j.get("verified") != hashlib.sha256(sums).hexdigest():
            t.put_bytes(sums, join(staging, "SHA256SUMS"))
            bad = [f.name for f in files if t.sha256(join(staging, f.name)) != f.sha256]
            if bad:
                j.put("sent", {n: s for n, s in sent.items() if n not in bad})
                raise Transient(f"{t.where}: read-back of {', '.join(bad[:5])} did not match "
                                "SHA256SUMS; they will be sent again on retry")
            j.put("verified", hashlib.sha256(sums).hexdigest())

    def go_live(self) -> None:
        """Give the staged folder the public modes and rename it onto the public path (replacing
        an older version). Until then it sits in the owner-only staging root."""
        t, j = self.target, self.journal
        staging = j.get("staging")
        if not staging or not t.exists(staging):
            raise Transient(f"{t.where}: staging folder for {self.public} is gone; it will be rebuilt")
        t.publish_modes(staging)
        if t.exists(self.public):
            trash = join(t.staging_root, random_name())
            j.put("trash", trash)
            t.move(self.public, trash)
        t.move(staging, self.public)
        for key in ("staging", "sent", "verified"):
            j.delete(key)
        self.empty_trash()

    def publish_modes(self) -> None:
        """Give the live folder the public modes again (a folder an older version left private)."""
        self.target.publish_modes(self.public)

    def empty_trash(self) -> None:
        trash = self.journal.get("trash")
        if trash:
            self.target.delete(trash)
            self.journal.delete("trash")

    def discard_staging(self) -> None:
        staging = self.journal.get("staging")
        if staging:
            self.target.delete(staging)
        for key in ("staging", "sent", "verified"):
            self.journal.delete(key)

    def replace(self, files: list[Upload], sums: dict[str, str]) -> None:
        """Swap single files of the live folder in place (atomic each), then its SHA256SUMS.

        Every replaced file is read back first; a file in the old SHA256SUMS but not in ``sums``
        is deleted after the new SHA256SUMS is in place."""
        old = self.public_sums() or {}
        for f in files:
            self._send(f)
        write_atomic(self.target, sums_text(sums), join(self.public, "SHA256SUMS"))
        for name in sorted(set(old) - set(sums)):
            self.target.delete(join(self.public, name))

    def repair(self, files: list[Upload]) -> list[str]:
        """Send again each file of the live folder that is missing or differs from ``files`` (by a
        temporary name and a rename, then read back). Returns the names sent."""
        sent = []
        for f in files:
            path = join(self.public, f.name)
            try:
                if self.target.sha256(path) == f.sha256:
                    continue
            except NotFound:
                pass
            self._send(f)
            sent.append(f.name)
        return sent

    def _send(self, f: Upload) -> None:
        """One file of the live folder, replaced atomically and read back."""
        path = join(self.public, f.name)
        write_atomic(self.target, f.local if f.local is not None else (f.data or b""), path)
        if self.target.sha256(path) != f.sha256:
            raise Transient(f"{self.target.where}: read-back of {path} did not match")

    def remove(self, first: list[str]) -> None:
        """Take the folder down: ``first`` (the pages) go first, then the folder in one rename."""
        t = self.target
        for name in first:
            t.delete(join(self.public, name))
        if t.exists(self.public):
            trash = join(t.staging_root, random_name())
            t.mkdir(t.staging_root, private=True)
            self.journal.put("trash", trash)
            t.move(self.public, trash)
        self.empty_trash()
        self.discard_staging()

    def drift(self) -> tuple[dict[str, str] | None, list[str]]:
        """Public ``SHA256SUMS`` and every file that is missing or differs from it."""
        sums = self.public_sums()
        if sums is None:
            return None, []
        problems = []
        for name, digest in sorted(sums.items()):
            try:
                if self.target.sha256(join(self.public, name)) != digest:
                    problems.append(f"{name}: content differs from SHA256SUMS")
            except NotFound:
                problems.append(f"{name}: missing")
        return sums, problems
