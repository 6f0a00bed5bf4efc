"""SFTP transport over paramiko: host keys checked against known_hosts (RejectPolicy), posix-rename."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paramiko

from channels.transports.base import CHUNK, Target, join, os_error, parent
from channels.transports.options import Modes
from publisher.errors import AuthError, NotFound, Rejected, Transient


class SFTPTarget(Target):
    def __init__(self, url: str, *, key_file: Path | None, password: str | None,
                 known_hosts: Path, timeout: float, staging: str | None,
                 modes: Modes | None = None) -> None:
        parts = urlsplit(url)
        self.modes = modes or Modes()
        host, port, user = parts.hostname or "", parts.port or 22, unquote(parts.username or "")
        self.base = "/" + parts.path.strip("/")
        self.where = f"sftp://{user}@{host}:{port}{self.base}"
        if staging:
            self.staging_root = staging
        if not known_hosts.is_file():
            raise AuthError(f"known_hosts file {known_hosts} does not exist; add the server's host key "
                            f"(ssh-keyscan -p {port} {host} >> {known_hosts}, then check its fingerprint)")
        self.client = paramiko.SSHClient()
        self.client.load_host_keys(str(known_hosts))
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            self.client.connect(host, port=port, username=user, password=password,
                                key_filename=str(key_file) if key_file else None, timeout=timeout,
                                banner_timeout=timeout, auth_timeout=timeout,
                                allow_agent=False, look_for_keys=False)
            self.sftp = self.client.open_sftp()
            channel = self.sftp.get_channel()
            if channel is not None:
                channel.settimeout(timeout)
        except paramiko.BadHostKeyException as e:
            self.client.close()
            raise AuthError(f"{self.where}: host key does not match {known_hosts}; "
                            "check with the server's administrator") from e
        except paramiko.AuthenticationException as e:
            self.client.close()
            raise AuthError(f"{self.where}: login refused; check key_file / password_env") from e
        except paramiko.SSHException as e:
            self.client.close()
            if "known_hosts" in str(e) or "not found in" in str(e):
                raise AuthError(f"{self.where}: host key not in {known_hosts}; add it after checking "
                                "its fingerprint (never accepted automatically)") from e
            raise Transient(f"{self.where}: SSH failed ({e})") from e
        except (OSError, EOFError) as e:
            self.client.close()
            raise Transient(f"{self.where}: cannot connect ({e.__class__.__name__})") from e

    def _p(self, remote: str) -> str:
        return "/" + (remote if remote.startswith("/") else join(self.base, remote)).strip("/")

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except FileNotFoundError as e:
            raise NotFound(f"{self.where}: {what}: not found") from e
        except PermissionError as e:
            raise AuthError(f"{self.where}: {what}: permission denied") from e
        except (TimeoutError, EOFError, paramiko.SSHException) as e:
            raise Transient(f"{self.where}: {what}: connection lost ({e.__class__.__name__})") from e
        except OSError as e:
            if e.errno is None and "quota" in str(e).lower():
                raise Rejected(f"{self.where}: {what}: over quota") from e
            raise os_error(e, f"{self.where}: {what}") from e

    def _stat(self, path: str) -> paramiko.SFTPAttributes | None:
        try:
            return self._call(f"stat {path}", self.sftp.stat, path)
        except NotFound:
            return None

    def put_file(self, local: Path, remote: str) -> None:
        self.mkdir(parent(remote))
        self._call(f"upload {self._p(remote)}", self.sftp.put, str(local), self._p(remote))

    def put_bytes(self, data: bytes, remote: str) -> None:
        self.mkdir(parent(remote))

        def write() -> None:
            with self.sftp.open(self._p(remote), "wb") as f:
                f.write(data)
        self._call(f"upload {self._p(remote)}", write)

    def get_bytes(self, remote: str) -> bytes:
        def read() -> bytes:
            with self.sftp.open(self._p(remote), "rb") as f:
                f.prefetch()
                return f.read()
        return self._call(f"read {self._p(remote)}", read)

    def exists(self, remote: str) -> bool:
        return self._stat(self._p(remote)) is not None

    def listdir(self, remote_dir: str) -> list[str]:
        try:
            return sorted(self._call(f"list {self._p(remote_dir)}", self.sftp.listdir, self._p(remote_dir)))
        except NotFound:
            return []

    def move(self, src: str, dst: str) -> None:
        self.mkdir(parent(dst))
        self._call(f"rename {self._p(src)}", self.sftp.posix_rename, self._p(src), self._p(dst))

    def delete(self, remote: str) -> None:
        path = self._p(remote)
        st = self._stat(path)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode or 0):
            for name in self._call(f"list {path}", self.sftp.listdir, path):
                self.delete(path + "/" + name)
            self._call(f"remove {path}", self.sftp.rmdir, path)
        else:
            self._call(f"remove {path}", self.sftp.remove, path)

    def mkdir(self, remote_dir: str, private: bool = False) -> None:
        path = self._p(remote_dir)
        if path == "/" or (not private and self._stat(path) is not None):
            return
        if self._stat(path) is None:
            self.mkdir(parent(path))
            self._call(f"mkdir {path}", self.sftp.mkdir, path, 0o700 if private else self.modes.dir)
            if not private:  # the server's umask may have narrowed it
                self._public(path, self._call(f"stat {path}", self.sftp.stat, path))
        if private:
            self._call(f"chmod {path}", self.sftp.chmod, path, 0o700)

    def publish_modes(self, remote: str) -> None:
        path = self._p(remote)
        st = self._stat(path)
        if st is None:
            raise NotFound(f"{self.where}: {path}: not found")
        self._public(path, st)
        if stat.S_ISDIR(st.st_mode or 0):
            self._public_tree(path)

    def _public_tree(self, folder: str) -> None:
        for attr in self._call(f"list {folder}", self.sftp.listdir_attr, folder):
            path = f"{folder}/{attr.filename}"
            self._public(path, attr)
            if stat.S_ISDIR(attr.st_mode or 0):
                self._public_tree(path)

    def _public(self, path: str, st: paramiko.SFTPAttributes) -> None:
        mode = st.st_mode or 0
        if stat.S_ISLNK(mode):
            return
        want = self.modes.dir if stat.S_ISDIR(mode) else self.modes.file
        if self.modes.group is not None and st.st_gid != self.modes.group:
            self._call(f"chown {path}", self.sftp.chown, path, st.st_uid, self.modes.group)
        if stat.S_IMODE(mode) != want:
            self._call(f"chmod {path}", self.sftp.chmod, path, want)

    def sha256(self, remote: str) -> str:
        def digest() -> str:
            h = hashlib.sha256()
            with self.sftp.open(self._p(remote), "rb") as f:
                f.prefetch()
                while chunk := f.read(CHUNK):
                    h.update(chunk)
            return h.hexdigest()
        return self._call(f"read {self._p(remote)}", digest)

    def close(self) -> None:
        self.client.close()
