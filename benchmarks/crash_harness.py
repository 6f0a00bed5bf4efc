"""Crash harness: `publisher release` for N releases x M channels, killed with SIGKILL at random
instants (random timers, and PUBLISHER_CRASH_AT=journal:K right after a journal write), rerun
after every kill until it finishes; then it counts duplicate remote objects, lost publications and
checksum mismatches (all must be 0) and prints them with the kills performed and the wall time.

    python benchmarks/crash_harness.py                     # 20 releases x 5 channels, >= 100 kills
    python benchmarks/crash_harness.py --releases 2 --channels 2 --kills 5
    python benchmarks/crash_harness.py --kills 0 --fault-rate 0.05   # network faults instead of kills

With ``--fault-rate P`` the WebDAV, YouTube and WeChat servers sit behind tests/faultproxy.py and
each connection is reset or stalled with probability P; the first run of every release counts
the publications that completed within the retry budget (the issue asks for >= 99 %).

Servers are real or loopback (WebDAV via wsgidav, the YouTube and WeChat fakes of tests/, a
signage folder); channel kinds that do not exist in this build are skipped with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from publisher.contract import option_classes  # noqa: E402
from publisher.store import Store, sqlite_url  # noqa: E402
from tests.media import make_master, make_poster, write_captions  # noqa: E402

DAV_ENV = "PUBLISHER_HARNESS_DAV_PASSWORD"
WECHAT_ENV = "PUBLISHER_HARNESS_WECHAT_SECRET"
CHANNEL_ORDER = ["dav-web", "youtube", "app-feed", "wechat", "signage", "folder-web"]


@dataclass
class Figures:
    releases: int = 0
    channels: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    kills: int = 0
    timer_kills: int = 0
    crash_at_kills: int = 0
    runs: int = 0
    late: int = 0  # runs that finished before their planned kill
    first_runs: int = 0  # publications attempted in a release's first, un-killed run (fault mode)
    within_budget: int = 0  # of those, live after that run
    injected: int = 0  # connection resets and stalls the fault proxies made
    extra: int = 0  # releases added to reach the kill count
    duplicates: int = 0
    lost: int = 0
    mismatches: int = 0
    wall: float = 0.0
    problems: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [
            f"releases x channels : {self.releases}{f' + {self.extra} extra' if self.extra else ''} x "
            f"{len(self.channels)} ({', '.join(self.channels)})",
            f"kills performed     : {self.kills} (timers {self.timer_kills}, journal crash points "
            f"{self.crash_at_kills}) over {self.runs} runs ({self.late} finished before their kill)",
            f"duplicate objects   : {self.duplicates}",
            f"lost publications   : {self.lost}",
            f"checksum mismatches : {self.mismatches}",
            f"wall time           : {self.wall:.1f} s",
        ]
        if self.first_runs:
            lines.append(f"within retry budget : {self.within_budget} of {self.first_runs} publications "
                         f"({100 * self.within_budget / self.first_runs:.1f} %) live after the first run, "
                         f"{self.injected} connection faults injected")
        lines += [f"skipped             : {s}" for s in self.skipped]
        lines += [f"problem             : {p}" for p in self.problems]
        return "\n".join(lines)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def environment(work: Path, wanted: int, note: Callable[[str], None],
                fault_rate: float = 0.0) -> Iterator[dict[str, Any]]:
    """Start the servers and yield {"channels": {name: block}, "env": {...}, "servers": {...}}."""
    known = option_classes()
    names: list[str] = []
    for name in CHANNEL_ORDER:
        kind = {"dav-web": "website", "folder-web": "website"}.get(name, name)
        if kind not in known:
            note(f"{name}: channel kind '{kind}' does not exist in this build; skipped")
            continue
        names.append(name)
    names = names[:wanted]
    with contextlib.ExitStack() as stack:
        servers: dict[str, Any] = {}
        blocks: dict[str, dict[str, Any]] = {}
        env: dict[str, str] = {}

        def port(real: int) -> int:
            """The port to use: the server's own, or a fault proxy's in front of it."""
            if not fault_rate:
                return real
            from tests.faultproxy import FaultProxy
            proxy = stack.enter_context(FaultProxy(real, lifetime=24 * 3600, stall_for=15))
            proxy.random(fault_rate, seed=real)
            servers.setdefault("proxies", []).append(proxy)
            return proxy.port

        for name in names:
            if name == "dav-web":
                from tests.servers.webdav import webdav_server
                dav = stack.enter_context(webdav_server(work / "dav"))
                servers["dav"] = dav
                env[DAV_ENV] = dav.password
                blocks[name] = {"kind": "website", "target": f"webdav://127.0.0.1:{port(dav.port)}/site",
                                "username": dav.user, "password_env": DAV_ENV, "timeout": 3,
                                "public_url": "https://www.example.gov.hk/videos/"}
            elif name == "folder-web":
                blocks[name] = {"kind": "website", "target": str(work / "www"),
                                "public_url": "https://web.example.gov.hk/videos/"}
            elif name == "youtube":
                from tests.fakes.youtube_server import YouTubeFake
                yt = stack.enter_context(YouTubeFake(work / "yt"))
                # 20 releases in one "day" is beyond a real project's 10 000 units (~1 300 per release:
                # three captions.insert at 400 each): both the fake and publisher's ledger get more.
                yt.model.unit_limit, yt.model.upload_limit = 10**7, 10**5
                servers["youtube"] = yt
                yt.write_credentials(work / "secrets" / "youtube.json")
                blocks[name] = {"kind": "youtube", "credentials": str(work / "secrets" / "youtube.json"),
                                "api_root": f"https://127.0.0.1:{port(yt.server.server_address[1])}/",
                                "ca_bundle": str(yt.certfile), "chunk_mib": 0.25, "timeout": 3,
                                "quota": {"daily_units": 10**7, "daily_uploads": 10**5}}
            elif name == "wechat":
                from tests.fakes.wechat_server import serve_wechat
                wx = stack.enter_context(serve_wechat(work / "wx"))
                servers["wechat"] = wx
                env[WECHAT_ENV] = wx.fake.secret
                wx_port = int(wx.url.rstrip("/").rsplit(":", 1)[1])
                blocks[name] = {"kind": "wechat", "appid": wx.fake.appid, "secret_env": WECHAT_ENV,
                                "api_root": f"https://127.0.0.1:{port(wx_port)}/",
                                "ca_bundle": str(wx.ca_bundle), "author": "入境事務處",
                                "poll_interval": 0.05, "publish_wait": 20}
            elif name == "signage":
                blocks[name] = {"kind": "signage", "target": str(work / "screens"), "sites": ["hall-a"],
                                "language": "en"}
            elif name == "app-feed":
                blocks[name] = {"kind": "app-feed", "target": str(work / "feed"),
                                "public_url": "https://app.example.gov.hk/feed/"}
        yield {"channels": blocks, "env": env, "servers": servers}


def make_releases(work: Path, count: int, master: Path, first: int = 0) -> list[tuple[str, Path]]:
    out = []
    poster = work / "poster.png"
    if not poster.exists():
        make_poster(poster, "640x360")
    for i in range(first, first + count):
        rid = f"crash-{i:03d}"
        folder = work / "releases" / rid
        folder.mkdir(parents=True, exist_ok=True)
        os.link(master, folder / "master.mp4")
        shutil.copyfile(poster, folder / "poster.png")
        write_captions(folder / "subs")
        manifest = {
            "id": rid, "master": "master.mp4", "languages": ["en", "zh-Hant", "zh-Hans"],
            "title": {"en": f"Consular Protection {i}", "zh-Hant": f"領事保護 {i}",
                      "zh-Hans": f"领事保护 {i}"},
            "description": {"en": "An animated video.", "zh-Hant": "動畫短片。", "zh-Hans": "动画短片。"},
            "captions": {"en": "subs/en.srt", "zh-Hant": "subs/zh-Hant.vtt", "zh-Hans": "subs/zh-Hans.srt"},
            "thumbnail": "poster.png", "tags": ["consular protection"],
        }
        (folder / "release.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
        out.append((rid, folder / "release.yaml"))
    return out


def release_until_done(manifest: Path, env: dict[str, str], kills: int, rng: random.Random,
                       figures: Figures, typical: list[float], log: Callable[[str], None]) -> None:
    """``kills`` runs killed at random instants, then runs until one exits 0 (at most 8)."""
    done_kills = 0
    clean_tries = 0
    while True:
        want_kill = done_kills < kills
        run_env = dict(env)
        delay: float | None = None
        if want_kill and rng.random() < 0.5:
            # right after the run's 1st..3rd checkpoint: lands whenever work with a checkpoint is left
            run_env["PUBLISHER_CRASH_AT"] = f"journal:{rng.choice([1, 1, 2, 3])}"
        elif want_kill:
            # start-up and checks take about a second; the publishing follows within a few
            delay = rng.uniform(0.3, 3.0)
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "publisher", "release", str(manifest)], env=run_env,
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=delay if delay is not None else 300)
        except subprocess.TimeoutExpired:
            proc.kill()  # SIGKILL
            out, err = proc.communicate()
        took = time.monotonic() - start
        figures.runs += 1
        if proc.returncode == -9:
            done_kills += 1
            figures.kills += 1
            if delay is not None:
                figures.timer_kills += 1
            else:
                figures.crash_at_kills += 1
            continue
        if proc.returncode == 0:
            # done (a planned kill came too late: the caller moves the kills left to the next release)
            typical.append(took)
            if want_kill:
                figures.late += 1
            return
        clean_tries += 1
        log(f"  {manifest.parent.name}: exit {proc.returncode}: {(err or out).strip()[-300:]}")
        if clean_tries >= 8:
            figures.problems.append(f"{manifest.parent.name} never finished (last exit {proc.returncode})")
            return


def first_run(manifest: Path, rid: str, env: dict[str, str], state: Path, info: dict[str, Any],
              figures: Figures) -> None:
    """One run without kills; count the publications it finished within the retry budget."""
    subprocess.run([sys.executable, "-m", "publisher", "release", str(manifest)], env=env, cwd=ROOT,
                   capture_output=True, text=True, timeout=600)
    figures.runs += 1
    store = Store(sqlite_url(state))
    states = {p.channel: p.state for p in store.publications(rid)}
    store.engine.dispose()
    figures.first_runs += len(info["channels"])
    figures.within_budget += sum(1 for name in info["channels"] if states.get(name) == "live")


def verify(work: Path, releases: list[str], env_info: dict[str, Any], state: Path, figures: Figures) -> None:
    servers = env_info["servers"]
    store = Store(sqlite_url(state))
    pubs = {(p.release, p.channel): p for p in store.publications()}
    store.engine.dispose()

    def problem(kind: str, text: str) -> None:
        figures.problems.append(f"{kind}: {text}")
        if kind == "duplicate":
            figures.duplicates += 1
        elif kind == "lost":
            figures.lost += 1
        else:
            figures.mismatches += 1

    for rid in releases:
        for name in env_info["channels"]:
            pub = pubs.get((rid, name))
            if pub is None or pub.state != "live":
                problem("lost", f"{rid} on {name} is {pub.state if pub else 'not recorded'}")
    # websites (WebDAV and folder): exactly one public folder per release, intact
    for name, root in (("dav-web", servers["dav"].root / "site" if "dav" in servers else None),
                       ("folder-web", work / "www")):
        if name not in env_info["channels"] or root is None:
            continue
        public = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if root.is_dir() else []
        for rid in releases:
            folder = root / rid
            if not (folder / "video.mp4").is_file():
                problem("lost", f"{name}: no {rid}/video.mp4")
                continue
            for line in filter(None, (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines()):
                digest, fname = line.split(maxsplit=1)
                if sha256((folder / fname.lstrip("*")).read_bytes()) != digest:
                    problem("mismatch", f"{name}: {rid}/{fname} differs from SHA256SUMS")
            pub = pubs.get((rid, name))
            if pub and pub.checksum != sha256((folder / "video.mp4").read_bytes()):
                problem("mismatch", f"{name}: {rid}/video.mp4 differs from the recorded checksum")
        extra = sorted(set(public) - set(releases))
        for e in extra:
            problem("duplicate", f"{name}: unexpected public folder {e}")
    if "app-feed" in env_info["channels"]:
        feed_path = work / "feed" / "feed.json"
        items = json.loads(feed_path.read_text(encoding="utf-8"))["items"] if feed_path.is_file() else []
        for rid in releases:
            mine = [it for it in items if it.get("_publisher", {}).get("release") == rid]
            if len(mine) != 1:
                problem("duplicate" if mine else "lost", f"app-feed: {len(mine)} feed items for {rid}")
            video = work / "feed" / rid / "video.mp4"
            pub = pubs.get((rid, "app-feed"))
            if video.is_file() and pub and pub.checksum != sha256(video.read_bytes()):
                problem("mismatch", f"app-feed: {rid}/video.mp4 differs from the recorded checksum")
            for it in mine:
                for name, digest in it["_publisher"].get("sha256", {}).items():
                    if sha256((work / "feed" / rid / name).read_bytes()) != digest:
                        problem("mismatch", f"app-feed: {rid}/{name} differs from the feed's sha256")
    if "youtube" in servers:
        yt = servers["youtube"]
        videos = [v for v in yt.model.videos.values() if not v.deleted]
        for i, rid in enumerate(releases):
            mine = [v for v in videos if v.snippet.get("title") == f"Consular Protection {i}"]
            if len(mine) > 1:
                problem("duplicate", f"youtube: {len(mine)} videos for {rid}")
            pub = pubs.get((rid, "youtube"))
            for v in mine:
                if pub and pub.remote_id == v.id and pub.checksum != sha256(yt.model.video_bytes(v.id)):
                    problem("mismatch", f"youtube: {v.id} differs from the recorded checksum")
                if len(v.captions) != 3:
                    problem("duplicate" if len(v.captions) > 3 else "lost",
                            f"youtube: {v.id} has {len(v.captions)} caption tracks")
        if len(videos) > len(releases):
            problem("duplicate", f"youtube: {len(videos)} live videos for {len(releases)} releases")
    if "wechat" in servers:
        fake = servers["wechat"].fake
        for rid in releases:
            objects = fake.objects_for(f"{rid}.jpg")
            if len(objects) > 1:
                problem("duplicate", f"wechat: {sorted(objects)} for {rid}")
        videos = [m for m in fake.materials.values() if m.type == "video"]
        if len(videos) > len(releases):
            problem("duplicate", f"wechat: {len(videos)} video materials for {len(releases)} releases")
        for rid in releases:
            pub = pubs.get((rid, "wechat"))
            if pub and pub.checksum and not any(sha256(m.data) == pub.checksum for m in videos):
                problem("mismatch", f"wechat: no video material matches the checksum recorded for {rid}")
    if "signage" in env_info["channels"]:
        site = work / "screens" / "hall-a"
        playlist = json.loads((site / "playlist.json").read_text(encoding="utf-8")) \
            if (site / "playlist.json").is_file() else {"items": []}
        for rid in releases:
            items = [it for it in playlist["items"] if it["id"] == rid]
            if len(items) != 1:
                problem("duplicate" if items else "lost", f"signage: {len(items)} playlist items for {rid}")
            for it in items:
                if sha256((site / it["file"]).read_bytes()) != it["sha256"]:
                    problem("mismatch", f"signage: {it['file']} differs from the playlist")


def run_harness(work: Path, *, releases: int = 20, channels: int = 5, kills: int = 100, seed: int = 1,
                master: Path | None = None, log: Callable[[str], None] = print,
                fault_rate: float = 0.0) -> Figures:
    start = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    figures = Figures(releases=releases)
    if master is None:
        master = make_master(work / "master-src.mp4")
    with environment(work, channels, figures.skipped.append, fault_rate) as info:
        figures.channels = list(info["channels"])
        for s in figures.skipped:
            log(f"note: {s}")
        state = work / "state"
        config = work / "publisher.yaml"
        config.write_text(yaml.safe_dump({
            "cache_dir": str(work / "renditions"), "channels": info["channels"],
            "retry": {"attempts": 4, "base_seconds": 0.05, "max_seconds": 0.2, "defer_minutes": 0},
        }, allow_unicode=True), encoding="utf-8")
        env = dict(os.environ, PUBLISHER_CONFIG=str(config), PUBLISHER_HOME=str(state), **info["env"])
        env.pop("PUBLISHER_CRASH_AT", None)
        made = make_releases(work, releases, master)
        typical: list[float] = []
        for i, (rid, manifest) in enumerate(made):
            if fault_rate:
                first_run(manifest, rid, env, state, info, figures)
            due = (kills * (i + 1) + releases - 1) // releases - figures.kills  # spread, with carry-over
            release_until_done(manifest, env, max(0, due), rng, figures, typical, log)
            log(f"{rid}: done; kills so far {figures.kills}")
        # a kill planned after a run had already finished did not happen: top up with extra releases
        while figures.kills < kills and figures.extra < releases:
            extra = make_releases(work, 1, master, first=releases + figures.extra)
            figures.extra += 1
            made += extra
            release_until_done(extra[0][1], env, kills - figures.kills, rng, figures, typical, log)
            log(f"{extra[0][0]} (extra): done; kills so far {figures.kills}")
        verify(work, [rid for rid, _ in made], info, state, figures)
        proxies = info["servers"].get("proxies", [])
        figures.injected = sum(p.stats["resets"] + p.stats["stalls"] for p in proxies)
    figures.wall = time.monotonic() - start
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--releases", type=int, default=20)
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="chance of a reset or stall per connection (puts a fault proxy in front)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temp folder)")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="crash-harness-") as tmp:
        figures = run_harness(args.work or Path(tmp), releases=args.releases, channels=args.channels,
                              kills=args.kills, seed=args.seed, fault_rate=args.fault_rate)
    print(figures.report())
    ok = figures.duplicates == figures.lost == figures.mismatches == 0 and figures.kills >= args.kills
    if figures.first_runs:
        ok = ok and figures.within_budget >= 0.99 * figures.first_runs
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
