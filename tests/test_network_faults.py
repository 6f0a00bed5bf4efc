"""Connection faults between publisher and real loopback servers, through tests/faultproxy.py:
resets mid-body and stalls end live within the retry budget, or deferred with a clear status;
never a duplicate, never a hang (every test is bounded)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from publisher.models import Publication
from publisher.store import Store, sqlite_url
from tests.conftest import Project
from tests.faultproxy import Fault, FaultProxy
from tests.servers.webdav import WebDAVServer, webdav_server

PASSWORD_ENV = "PUBLISHER_TEST_DAV_PASSWORD"
BOUND = 60.0  # seconds any one release may take here before the test calls it a hang


@pytest.fixture
def dav(tmp_path: Path) -> Iterator[WebDAVServer]:
    with webdav_server(tmp_path / "dav") as server:
        yield server


@pytest.fixture
def proxy(dav: WebDAVServer) -> Iterator[FaultProxy]:
    with FaultProxy(dav.port, lifetime=120, stall_for=10) as p:
        yield p


def website_via(proj: Project, proxy: FaultProxy, dav: WebDAVServer, monkeypatch: pytest.MonkeyPatch,
                *, timeout: float = 2.0, attempts: int = 4) -> None:
    monkeypatch.setenv(PASSWORD_ENV, dav.password)
    proj.add_channel("dav-web", {"kind": "website", "target": f"webdav://127.0.0.1:{proxy.port}/site",
                                 "username": dav.user, "password_env": PASSWORD_ENV, "timeout": timeout,
                                 "public_url": "https://www.example.gov.hk/videos/"})
    proj.settings["retry"] = {"attempts": attempts, "base_seconds": 0.05, "max_seconds": 0.2}
    proj.write()


def bounded_release(cli: Any, proj: Project) -> tuple[Any, float]:
    """Run `publisher release` in-process; fail (not hang) if it takes longer than BOUND."""
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["result"] = cli(proj, "release", proj.manifest_path)
        except BaseException as exc:  # re-raised in the test thread
            box["error"] = exc

    start = time.monotonic()
    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(BOUND)
    took = time.monotonic() - start
    assert not worker.is_alive(), f"release still running after {BOUND:.0f} s: a stalled connection hangs it"
    if "error" in box:
        raise box["error"]
    return box["result"], took


def publication(proj: Project) -> Publication:
    store = Store(sqlite_url(proj.state_dir))
    pubs = store.publications(proj.manifest["id"])
    store.engine.dispose()
    assert len(pubs) == 1
    return pubs[0]


def public_releases(dav: WebDAVServer) -> list[str]:
    site = dav.root / "site"
    return sorted(p.name for p in site.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if site.is_dir() else []


def assert_intact(dav: WebDAVServer, rid: str, pub: Publication) -> None:
    folder = dav.root / "site" / rid
    sums = (folder / "SHA256SUMS").read_text(encoding="utf-8").split("\n")
    listed = 0
    for line in filter(None, sums):
        digest, name = line.split(maxsplit=1)
        name = name.lstrip("*")
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
        listed += 1
    assert listed >= 3
    assert pub.checksum == hashlib.sha256((folder / "video.mp4").read_bytes()).hexdigest()


def test_resets_mid_body_complete_within_retry_budget(project: Callable[[], Project], cli: Any,
                                                      dav: WebDAVServer, proxy: FaultProxy,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    proj = project()
    website_via(proj, proxy, dav, monkeypatch)
    rid = proj.manifest["id"]
    proxy.add(Fault("reset", after=40_000), Fault("reset", after=150_000))
    result, _ = bounded_release(cli, proj)
    assert result.exit_code == 0, result.output
    assert proxy.stats["resets"] == 2, proxy.stats
    pub = publication(proj)
    assert pub.state == "live" and pub.attempts <= 4, pub
    assert public_releases(dav) == [rid]
    assert_intact(dav, rid, pub)
    again = cli(proj, "release", proj.manifest_path)  # a rerun adds nothing
    assert again.exit_code == 0 and public_releases(dav) == [rid]


def test_reset_while_reading_back_is_retried(project: Callable[[], Project], cli: Any, dav: WebDAVServer,
                                             proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = project()
    website_via(proj, proxy, dav, monkeypatch)
    proxy.add(Fault("reset", after=100_000, direction="down"))
    result, _ = bounded_release(cli, proj)
    assert result.exit_code == 0, result.output
    assert proxy.stats["resets"] == 1, proxy.stats
    pub = publication(proj)
    assert pub.state == "live"
    assert public_releases(dav) == [proj.manifest["id"]]
    assert_intact(dav, proj.manifest["id"], pub)


def test_stall_times_out_then_completes(project: Callable[[], Project], cli: Any, dav: WebDAVServer,
                                        proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = project()
    website_via(proj, proxy, dav, monkeypatch, timeout=1.5)
    proxy.add(Fault("stall", after=60_000))
    result, took = bounded_release(cli, proj)
    assert result.exit_code == 0, result.output
    assert proxy.stats["stalls"] == 1, proxy.stats
    pub = publication(proj)
    assert pub.state == "live" and pub.attempts >= 2, pub
    assert public_releases(dav) == [proj.manifest["id"]]
    assert_intact(dav, proj.manifest["id"], pub)


@pytest.mark.parametrize("kind", ["reset", "stall"])
def test_persistent_fault_ends_deferred_not_hung(project: Callable[[], Project], cli: Any,
                                                 dav: WebDAVServer, proxy: FaultProxy,
                                                 monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    proj = project()
    website_via(proj, proxy, dav, monkeypatch, timeout=1.0, attempts=3)
    proxy.always = Fault(kind, after=20_000)  # type: ignore[arg-type]
    result, took = bounded_release(cli, proj)
    assert result.exit_code == 75, result.output
    pub = publication(proj)
    assert pub.state == "deferred", pub
    assert pub.retry_at is not None
    assert "gave up for now after 3 attempts" in pub.error and "connection" in pub.error, pub.error
    assert dav.password not in pub.error and dav.password not in result.output
    assert public_releases(dav) == []  # nothing half-public
    # the outage ends: the next run finishes the job exactly once
    proxy.clear()
    store = Store(sqlite_url(proj.state_dir))
    store.update_publication(proj.manifest["id"], "dav-web", retry_at=None)
    store.engine.dispose()
    again, _ = bounded_release(cli, proj)
    assert again.exit_code == 0, again.output
    assert public_releases(dav) == [proj.manifest["id"]]
    assert_intact(dav, proj.manifest["id"], publication(proj))


def test_latency_only_slows_down(project: Callable[[], Project], cli: Any, dav: WebDAVServer,
                                 proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = project()
    website_via(proj, proxy, dav, monkeypatch)
    proxy.always = Fault("latency", delay=0.005)
    result, _ = bounded_release(cli, proj)
    assert result.exit_code == 0, result.output
    assert proxy.stats["delayed_chunks"] > 10
    pub = publication(proj)
    assert pub.state == "live" and pub.attempts == 1
    assert_intact(dav, proj.manifest["id"], pub)


def test_proxy_stops_by_itself(dav: WebDAVServer) -> None:
    import socket

    p = FaultProxy(dav.port, lifetime=0.5).start()
    with socket.create_connection(("127.0.0.1", p.port), timeout=2):
        pass
    deadline = time.monotonic() + 5
    while p.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not p.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", p.port), timeout=2).close()
    with pytest.raises(ValueError):
        FaultProxy(80, upstream_host="93.184.216.34")


# --- YouTube: resumable uploads through the proxy --------------------------------------------


@pytest.fixture
def youtube(tmp_path: Path) -> Iterator[tuple[Any, FaultProxy]]:
    from tests.fakes.youtube_server import YouTubeFake

    with YouTubeFake(tmp_path / "yt") as fake, \
            FaultProxy(fake.server.server_address[1], lifetime=120, stall_for=10) as p:
        yield fake, p


def youtube_via(proj: Project, fake: Any, proxy: FaultProxy) -> None:
    fake.write_credentials(proj.root / "secrets" / "yt.json")
    proj.add_channel("yt", {"kind": "youtube", "credentials": "secrets/yt.json",
                            "api_root": f"https://127.0.0.1:{proxy.port}/", "ca_bundle": str(fake.certfile),
                            "chunk_mib": 0.25, "timeout": 2})
    proj.settings["retry"] = {"attempts": 4, "base_seconds": 0.05, "max_seconds": 0.2}
    proj.write()


def assert_one_video(fake: Any, pub: Publication) -> None:
    assert fake.live_videos() == [pub.remote_id]
    assert hashlib.sha256(fake.model.video_bytes(pub.remote_id)).hexdigest() == pub.checksum
    assert len(fake.model.videos[pub.remote_id].captions) == 3


@pytest.mark.parametrize("fault", [Fault("reset", after=400_000), Fault("stall", after=400_000)],
                         ids=["reset", "stall"])
def test_youtube_upload_survives_fault_mid_body(project: Callable[[], Project], cli: Any,
                                                youtube: tuple[Any, FaultProxy], fault: Fault) -> None:
    fake, proxy = youtube
    proj = project()
    youtube_via(proj, fake, proxy)
    proxy.add(fault)
    result, _ = bounded_release(cli, proj)
    assert result.exit_code == 0, result.output
    assert proxy.stats["resets" if fault.kind == "reset" else "stalls"] == 1, proxy.stats
    pub = publication(proj)
    assert pub.state == "live", pub
    assert_one_video(fake, pub)
