"""A real SFTP server (paramiko) on 127.0.0.1, in its own process, serving one folder as '/'.

The host key is generated per server and pinned in a known_hosts file the test hands to the
client; login is by public key only (one authorised ed25519 key). ``kill()`` drops it mid-transfer.
Supports the OpenSSH ``posix-rename@openssh.com`` extension that the SFTP target uses, and applies
SETSTAT (chmod, chown) for real. Files and folders are created under the server process's umask,
as a real server's are.

Run as a script: ``sftp.py ROOT PORT HOST_KEY AUTHORIZED_PUBKEY_FILE``.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)
from paramiko.sftp import SFTP_OK

USER = "webmaster"


class _Server(paramiko.ServerInterface):
    def __init__(self, authorized: paramiko.PKey) -> None:
        self.authorized = authorized

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if username == USER and key == self.authorized:
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(SFTPHandle):
    def stat(self) -> Any:
        try:
            return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))  # type: ignore[attr-defined]
        except OSError as e:
            return SFTPServer.convert_errno(e.errno or 5)


def _make_fs(root: str) -> type[SFTPServerInterface]:
    class FolderSFTP(SFTPServerInterface):
        def _real(self, path: str) -> str:
            rel = os.path.normpath("/" + path).lstrip("/")
            return os.path.join(root, rel)

        def _do(self, fn: Any, *args: Any) -> Any:
            try:
                fn(*args)
            except OSError as e:
                return SFTPServer.convert_errno(e.errno or 5)
            return SFTP_OK

        def list_folder(self, path: str) -> Any:
            real = self._real(path)
            try:
                out = []
                for name in os.listdir(real):
                    attr = SFTPAttributes.from_stat(os.lstat(os.path.join(real, name)))
                    attr.filename = name
                    out.append(attr)
                return out
            except OSError as e:
                return SFTPServer.convert_errno(e.errno or 5)

        def stat(self, path: str) -> Any:
            try:
                return SFTPAttributes.from_stat(os.stat(self._real(path)))
            except OSError as e:
                return SFTPServer.convert_errno(e.errno or 5)

        lstat = stat

        def open(self, path: str, flags: int, attr: Any) -> Any:
            real = self._real(path)
            try:
                fd = os.open(real, flags | getattr(os, "O_BINARY", 0), 0o644)
            except OSError as e:
                return SFTPServer.convert_errno(e.errno or 5)
            mode = "rb"
            if flags & os.O_WRONLY:
                mode = "ab" if flags & os.O_APPEND else "wb"
            elif flags & os.O_RDWR:
                mode = "a+b" if flags & os.O_APPEND else "r+b"
            f = os.fdopen(fd, mode)
            handle = _Handle(flags)
            handle.filename = real  # type: ignore[attr-defined]
            handle.readfile = f  # type: ignore[attr-defined]
            handle.writefile = f  # type: ignore[attr-defined]
            return handle

        def remove(self, path: str) -> int:
            return int(self._do(os.remove, self._real(path)))

        def rename(self, old: str, new: str) -> int:
            if os.path.exists(self._real(new)):
                return SFTPServer.convert_errno(17)  # plain SFTP rename never replaces
            return int(self._do(os.rename, self._real(old), self._real(new)))

        def posix_rename(self, old: str, new: str) -> int:
            return int(self._do(os.rename, self._real(old), self._real(new)))

        def mkdir(self, path: str, attr: Any) -> int:
            mode = attr.st_mode if attr is not None and attr.st_mode is not None else 0o755
            return int(self._do(os.mkdir, self._real(path), mode & 0o7777))

        def rmdir(self, path: str) -> int:
            return int(self._do(os.rmdir, self._real(path)))

        def chattr(self, path: str, attr: Any) -> int:
            """SETSTAT, applied for real: owner and group (chown), then the mode (chmod)."""
            real = self._real(path)
            if attr.st_uid is not None or attr.st_gid is not None:
                uid = -1 if attr.st_uid is None else attr.st_uid
                gid = -1 if attr.st_gid is None else attr.st_gid
                if (status := self._do(os.chown, real, uid, gid)) != SFTP_OK:
                    return int(status)
            if attr.st_mode is not None:
                return int(self._do(os.chmod, real, attr.st_mode & 0o7777))
            return SFTP_OK

        def canonicalize(self, path: str) -> str:
            return "/" + os.path.normpath("/" + path).lstrip("/")

    return FolderSFTP


def serve(root: str, port: int, host_key_file: str, authorized_file: str) -> None:
    host_key = paramiko.Ed25519Key.from_private_key_file(host_key_file)
    kind, blob = Path(authorized_file).read_text().split()[:2]
    authorized = paramiko.PKey.from_type_string(kind, __import__("base64").b64decode(blob))
    fs = _make_fs(root)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    print(f"PORT {sock.getsockname()[1]}", flush=True)

    def handle(conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        transport.add_server_key(host_key)
        transport.set_subsystem_handler("sftp", SFTPServer, fs)
        try:
            transport.start_server(server=_Server(authorized))
            channel = transport.accept(30)  # keep a reference: a collected channel closes
            while channel is not None and transport.is_active():
                transport.join(1)
        except (paramiko.SSHException, EOFError, OSError):
            pass
        finally:
            transport.close()

    while True:
        conn, _ = sock.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


@dataclass
class SFTPServerProc:
    root: Path
    folder: Path  # keys and known_hosts live here
    port: int = 0
    proc: Any = field(default=None, repr=False)

    @property
    def key_file(self) -> Path:
        return self.folder / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    def target(self, path: str = "site") -> str:
        return f"sftp://{USER}@127.0.0.1:{self.port}/{path}"

    def start(self) -> None:
        from tests.servers import start_process
        self.proc, self.port = start_process(
            [__file__, str(self.root), str(self.port), str(self.folder / "host_key"),
             str(self.folder / "client_key.pub")])
        host_pub = (self.folder / "host_key.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")

    def kill(self) -> None:
        from tests.servers import stop_process
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            stop_process(self.proc)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        from tests.servers import stop_process
        if self.proc is not None:
            stop_process(self.proc)


@contextmanager
def sftp_server(root: Path, folder: Path) -> Iterator[SFTPServerProc]:
    """An SFTP server on 127.0.0.1 serving ``root``; keys and known_hosts are written to ``folder``."""
    from tests.servers import write_ed25519_key
    root.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "host_key.pub").write_text(write_ed25519_key(folder / "host_key") + "\n")
    (folder / "client_key.pub").write_text(write_ed25519_key(folder / "client_key") + "\n")
    server = SFTPServerProc(root=root, folder=folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
