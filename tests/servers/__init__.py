"""Real servers on 127.0.0.1 for the file-target tests (WebDAV via wsgidav, SFTP via paramiko).

Each server runs in its own process so a test can kill it mid-upload like a dropped connection.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID


def start_process(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    """Start a server script that prints ``PORT <n>`` once it listens; return it and the port."""
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("PORT "):
            return proc, int(line.split()[1])
        if not line and proc.poll() is not None:
            break
    proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    raise RuntimeError(f"server {args[0]} did not start: {err[-2000:]}")


def stop_process(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def write_ed25519_key(path: Path) -> str:
    """Write an OpenSSH private key (mode 0600); return the public key line 'ssh-ed25519 AAAA...'."""
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def write_tls_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1; returns (cert.pem — also the CA bundle, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class TargetSpec:
    """One running target: the channel options for it and where its files land on disk."""

    def __init__(self, kind: str, options: dict[str, object], disk: Path, server: object = None,
                 env: dict[str, str] | None = None) -> None:
        self.kind, self.options, self.disk, self.server = kind, options, disk, server
        self.env = env or {}


TARGET_KINDS = ["folder", "webdav", "sftp"]


def target_spec(kind: str, tmp: Path) -> AbstractContextManager[TargetSpec]:
    """Context manager: a live target of ``kind`` ('folder', 'webdav', 'webdavs', 'sftp')."""

    @contextmanager
    def run() -> Iterator[TargetSpec]:
        if kind == "folder":
            yield TargetSpec(kind, {"target": str(tmp / "www" / "site")}, tmp / "www" / "site")
        elif kind in ("webdav", "webdavs"):
            from tests.servers.webdav import webdav_server
            with webdav_server(tmp / "dav", tls_dir=tmp if kind == "webdavs" else None) as s:
                opts: dict[str, object] = {"target": s.target("site"), "username": s.user,
                                           "password_env": "PUBLISHER_TEST_DAV_PASSWORD"}
                if s.ca_bundle:
                    opts["ca_bundle"] = str(s.ca_bundle)
                yield TargetSpec(kind, opts, tmp / "dav" / "site", s,
                                 {"PUBLISHER_TEST_DAV_PASSWORD": s.password})
        elif kind == "sftp":
            from tests.servers.sftp import sftp_server
            with sftp_server(tmp / "sftproot", tmp / "ssh") as s:
                yield TargetSpec(kind, {"target": s.target("site"), "key_file": str(s.key_file),
                                        "known_hosts": str(s.known_hosts)}, tmp / "sftproot" / "site", s)
        else:
            raise ValueError(kind)
    return run()
