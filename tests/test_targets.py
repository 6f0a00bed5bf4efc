"""The shared transport (folder, WebDAV, WebDAV over TLS, SFTP) against real servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from channels.transports import open_target
from channels.transports.base import Target, new_staging, write_atomic
from channels.transports.options import TargetOptions
from publisher.errors import AuthError, InputError, NotFound, Transient
from tests.servers import TargetSpec, target_spec


@pytest.fixture(params=["folder", "webdav", "webdavs", "sftp"])
def spec(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[TargetSpec]:
    with target_spec(request.param, tmp_path) as s:
        for k, v in s.env.items():
            monkeypatch.setenv(k, v)
        yield s


def connect(spec: TargetSpec, tmp: Path, **extra: object) -> Target:
    return open_target(TargetOptions.model_validate({**spec.options, **extra}), config_dir=tmp, channel="web")


def test_operations(spec: TargetSpec, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several chunks
    with connect(spec, tmp_path) as t:
        staging = new_staging(t)
        assert staging.startswith(".publisher-staging/")
        if spec.kind in ("folder", "sftp"):  # WebDAV has no permission bits
            assert (spec.disk / staging).stat().st_mode & 0o777 == 0o700
        t.put_file(big, f"{staging}/a/b/big.bin")
        t.put_bytes("漢字".encode(), f"{staging}/a/x y.txt")  # non-ASCII and a space survive
        assert t.listdir(f"{staging}/a") == ["b", "x y.txt"]
        assert t.exists(f"{staging}/a/x y.txt") and not t.exists(f"{staging}/nope")
        assert t.sha256(f"{staging}/a/b/big.bin") == hashlib.sha256(big.read_bytes()).hexdigest()
        t.move(f"{staging}/a", "release")  # a folder, moved into place in one rename
        assert not t.exists(f"{staging}/a")
        assert (spec.disk / "release" / "b" / "big.bin").read_bytes() == big.read_bytes()
        assert t.get_bytes("release/x y.txt").decode() == "漢字"
        t.put_bytes(b"new", f"{staging}/f")
        t.move(f"{staging}/f", "release/x y.txt")  # replaces a file
        assert t.get_bytes("release/x y.txt") == b"new"
        write_atomic(t, b"one", "index.html")
        write_atomic(t, b"two", "index.html")
        assert (spec.disk / "index.html").read_bytes() == b"two"
        assert [n for n in t.listdir("") if n.endswith(".tmp")] == []
        t.delete("release")
        t.delete("release")  # missing is fine
        assert not (spec.disk / "release").exists() and t.listdir("release") == []
        with pytest.raises(NotFound):
            t.get_bytes("release/x y.txt")
        with pytest.raises(NotFound):
            t.sha256("nothing.bin")


def test_option_errors() -> None:
    bad = [
        ({"target": "ftp://host/x"}, "folder path, webdav"),
        ({"target": "sftp://host/x", "key_file": "k"}, "needs a user"),
        ({"target": "sftp://u@host/x"}, "key_file"),
        ({"target": "webdav://host/x", "staging": "rel/staging"}, "absolute path"),
        ({"target": "/srv/www", "colour": "red"}, "Extra inputs"),
        ({"target": "webdavs://u:hunter22@host/x"}, "must not contain a password"),
    ]
    for options, message in bad:
        with pytest.raises(ValidationError, match=message):
            TargetOptions.model_validate(options)


def test_sftp_host_key_is_never_accepted_blindly(tmp_path: Path) -> None:
    with target_spec("sftp", tmp_path) as spec:
        good = spec.server.known_hosts.read_text()  # type: ignore[attr-defined]
        other = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        spec.server.known_hosts.write_text(good.split()[0] + " ssh-ed25519 " + other + "\n")  # type: ignore
        with pytest.raises(AuthError, match="does not match"):
            connect(spec, tmp_path)
        spec.server.known_hosts.write_text("")  # type: ignore[attr-defined]
        with pytest.raises(AuthError, match="never accepted automatically"):
            connect(spec, tmp_path)
        with pytest.raises(AuthError, match="does not exist"):
            connect(spec, tmp_path, known_hosts=str(tmp_path / "missing"))
        spec.server.known_hosts.write_text(good)  # type: ignore[attr-defined]
        key: Path = spec.server.key_file  # type: ignore[attr-defined]
        key.chmod(0o644)
        with pytest.raises(InputError, match="chmod 600"):
            connect(spec, tmp_path)
        key.chmod(0o600)
        from tests.servers import write_ed25519_key
        write_ed25519_key(tmp_path / "stranger")
        with pytest.raises(AuthError, match="login refused"):
            connect(spec, tmp_path, key_file=str(tmp_path / "stranger"))
        connect(spec, tmp_path).close()
        spec.server.kill()  # type: ignore[attr-defined]
        with pytest.raises(Transient, match="cannot connect"):
            connect(spec, tmp_path)


def test_webdav_auth_tls_and_outage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with target_spec("webdavs", tmp_path) as spec:
        monkeypatch.setenv("PUBLISHER_TEST_DAV_PASSWORD", "not-the-password")
        with connect(spec, tmp_path) as t, pytest.raises(AuthError, match="refused \\(401\\)") as err:
            t.put_bytes(b"x", "a.txt")
        assert "not-the-password" not in str(err.value)
        monkeypatch.setenv("PUBLISHER_TEST_DAV_PASSWORD", spec.server.password)  # type: ignore[attr-defined]
        no_ca = {k: v for k, v in spec.options.items() if k != "ca_bundle"}
        with open_target(TargetOptions.model_validate(no_ca), config_dir=tmp_path, channel="w") as t, \
                pytest.raises(AuthError, match="ca_bundle"):
            t.exists("a.txt")  # the self-signed server is not trusted without ca_bundle
        monkeypatch.delenv("PUBLISHER_TEST_DAV_PASSWORD")
        with pytest.raises(AuthError, match="PUBLISHER_TEST_DAV_PASSWORD"):
            connect(spec, tmp_path)
        monkeypatch.setenv("PUBLISHER_TEST_DAV_PASSWORD", spec.server.password)  # type: ignore[attr-defined]
        t = connect(spec, tmp_path)
        t.put_bytes(b"ok", "a.txt")
        spec.server.kill()  # type: ignore[attr-defined]
        with pytest.raises(Transient, match="connection failed"):
            t.get_bytes("a.txt")
        t.close()
