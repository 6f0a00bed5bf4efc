"""The whole release, from `publisher release` to every channel live, for the seed's seven channels
(YouTube, three websites, WeChat, an app feed, signage) against the project's local stand-ins:
the YouTube and WeChat fakes (tests/fakes), a wsgidav WebDAV server and local folders.

Prints, in one run: naive per-channel ffmpeg (one Transcoder run per channel, each decoding the
master itself; may run on a shorter master and is then scaled to the master's length, as said),
the one-process floor (a fixed reference ffmpeg command, printed), publisher's whole release in a
fresh process, each channel's time to live (from the store's events), a raw `curl -T` of the
master to the loopback WebDAV server against publisher's WebDAV transport, and the ratios the
release is held to; then a second release of the same master, which must run 0 encodes.

    python benchmarks/release.py [--seconds 20] [--naive-seconds 5] [--skip-naive]
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, not installed

from publisher.store import Store, sqlite_url  # noqa: E402
from tests.fakes.wechat_server import serve_wechat  # noqa: E402
from tests.fakes.youtube_server import YouTubeFake  # noqa: E402
from tests.media import make_poster  # noqa: E402
from tests.servers.webdav import webdav_server  # noqa: E402

RELEASE_ID = "bench-release"
CUES = {"en": "Travel safely. Call 1868 for help.", "zh-Hant": "出行注意安全。如需協助，請致電1868。",
        "zh-Hans": "出行注意安全。如需协助，请致电1868。"}
WECHAT_SECRET = "PUBLISHER_BENCH_WECHAT_SECRET"
DAV_PASSWORD = "PUBLISHER_BENCH_DAV_PASSWORD"


def ts(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def make_master(path: Path, seconds: float, size: str = "1920x1080") -> Path:
    """A 1080p25 H.264/AAC master (moving test pattern and a tone), like a finished export."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate=25:duration={seconds}", "-f", "lavfi", "-i",
                    f"sine=frequency=440:sample_rate=48000:duration={seconds}", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-b:a", "192k", "-shortest", str(path)], check=True)
    return path


def make_release(folder: Path, master: Path, seconds: float) -> Path:
    """A release folder: the master, captions in three languages, a poster and the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(master, folder / "master.mp4")
    (folder / "subs").mkdir(exist_ok=True)
    end = max(0.6, seconds - 0.2)
    for lang, text in CUES.items():
        (folder / "subs" / f"{lang}.srt").write_text(f"1\n{ts(0.2)} --> {ts(end)}\n{text}\n",
                                                     encoding="utf-8")
    make_poster(folder / "poster.png")
    manifest = {
        "id": RELEASE_ID, "master": "master.mp4", "languages": ["en", "zh-Hant", "zh-Hans"],
        "title": {"en": "Consular Protection", "zh-Hant": "領事保護", "zh-Hans": "领事保护"},
        "description": {"en": "An animated video on consular protection.", "zh-Hant": "領事保護動畫短片。",
                        "zh-Hans": "领事保护动画短片。"},
        "captions": {lang: f"subs/{lang}.srt" for lang in CUES}, "thumbnail": "poster.png",
        "tags": ["consular protection", "travel safety"],
    }
    path = folder / "release.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    return path


def seed_config(root: Path, youtube: YouTubeFake, wechat: Any, dav: Any) -> dict[str, Any]:
    """The seed's seven channels on the local stand-ins."""
    return {
        "timezone": "Asia/Hong_Kong", "concurrency": 3, "cache_dir": str(root / "renditions"),
        "retry": {"attempts": 3, "base_seconds": 0.2, "max_seconds": 1},
        "channels": {
            "immd-youtube": {"kind": "youtube", "credentials": str(youtube.write_credentials(
                root / "secrets" / "youtube.json")), "api_root": youtube.url,
                "ca_bundle": str(youtube.certfile), "timeout": 30},
            "sb-web": {"kind": "website", "target": dav.target("sb"), "username": dav.user,
                       "password_env": DAV_PASSWORD, "public_url": "https://www.sb.example.hk/videos/"},
            "immd-web": {"kind": "website", "target": str(root / "www" / "immd"),
                         "public_url": "https://www.immd.example.hk/videos/"},
            "ocmfa-web": {"kind": "website", "target": str(root / "www" / "ocmfa"),
                          "public_url": "https://www.ocmfa.example.hk/videos/"},
            "consular-wechat": {"kind": "wechat", "appid": wechat.fake.appid, "secret_env": WECHAT_SECRET,
                                "api_root": wechat.url, "ca_bundle": str(wechat.ca_bundle),
                                "author": "领事直通车", "poll_interval": 0.05, "publish_wait": 30,
                                "timeout": 30},
            "safeguard-feed": {"kind": "app-feed", "target": str(root / "www" / "feed"),
                               "public_url": "https://app.example.hk/feed/"},
            "immd-signage": {"kind": "signage", "target": str(root / "signage"), "language": "zh-Hant",
                             "sites": ["offices", "lo-wu", "airport"]},
        },
    }


def floor_command(master: Path, out: Path, burn: Path) -> list[str]:
    """The reference: one ffmpeg, one decode, the distinct renditions of the seed's channels
    (YouTube 1080p CRF 18, HLS 1080p/720p/480p, WeChat 720p, signage 1080p with burned-in
    subtitles), AAC where a channel has sound. No loudness pass, no checks, no uploads."""
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
            "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"]
    aac = ["-c:a", "aac", "-ar", "48000", "-ac", "2"]
    graph = ("[0:v]split=6[y][h1][h2][h3][w][s];[h2]scale=1280:720[h2o];[h3]scale=854:480[h3o];"
             f"[w]scale=1280:720[wo];[s]subtitles=filename={burn.name}[so];[0:a]asplit=5[ay][a1][a2][a3][aw]")
    hls = ["-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod"]
    return ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(master), "-filter_complex", graph,
            "-map", "[y]", "-map", "[ay]", *x264, "-crf", "18", *aac, "-b:a", "192k",
            str(out / "youtube.mp4"),
            "-map", "[h1]", "-map", "[a1]", *x264, "-b:v", "5000k", "-maxrate", "5500k", "-bufsize", "10000k",
            *aac, "-b:a", "128k", *hls, str(out / "hls1080.m3u8"),
            "-map", "[h2o]", "-map", "[a2]", *x264, "-b:v", "3000k", "-maxrate", "3300k", "-bufsize", "6000k",
            *aac, "-b:a", "128k", *hls, str(out / "hls720.m3u8"),
            "-map", "[h3o]", "-map", "[a3]", *x264, "-b:v", "1400k", "-maxrate", "1540k", "-bufsize", "2800k",
            *aac, "-b:a", "96k", *hls, str(out / "hls480.m3u8"),
            "-map", "[wo]", "-map", "[aw]", *x264, "-b:v", "2500k", "-maxrate", "2750k", "-bufsize", "5000k",
            *aac, "-b:a", "96k", str(out / "wechat.mp4"),
            "-map", "[so]", *x264, "-crf", "20", "-maxrate", "12000k", "-bufsize", "24000k", "-an",
            str(out / "signage.mp4")]


def children_cpu() -> float:
    """CPU seconds of every finished child process and its children (ffmpeg under publisher)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


#: CPU seconds of the last ``timed_run``: what other work on the machine barely changes
LAST_CPU = [0.0]


def timed_run(args: list[str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.run(args, capture_output=True, text=True, **kw)
    LAST_CPU[0] = children_cpu() - cpu
    return time.perf_counter() - start, proc


def naive(root: Path, seconds: float, size: str) -> float:
    """Each channel makes its own renditions in its own process (its own decode, loudness pass,
    checks), one channel after the other, as a script per channel would."""
    from publisher.engine.engine import Engine
    from publisher.inputs.config import load_config
    from publisher.inputs.manifest import load_release
    from publisher.inputs.media import probe_master
    from publisher.transcode import Transcoder

    folder = root / "naive"
    manifest = make_release(folder, make_master(root / "naive-master.mp4", seconds, size), seconds)
    config = load_config(root / "publisher.yaml")
    release = load_release(manifest, None)
    master = probe_master(release.master)
    start, cpu = time.perf_counter(), children_cpu()
    for name in config.options:
        channel = config.channel(name, root / "naive-state")
        t = Transcoder(folder / f"cache-{name}")
        t.run(t.plan(release, master, {name: Engine.requests_for(channel, release)}))
    LAST_CPU[0] = children_cpu() - cpu
    return time.perf_counter() - start


@dataclass
class Timeline:
    """What the store's events say about one release run, in seconds from the command's start."""

    live: dict[str, tuple[float, str]]  # channel -> (final state's time, state)
    work: dict[str, float]  # channel -> seconds inside its adapter calls (a private send, then the rest)
    encoded: tuple[float, float] | None  # (start, end) of the transcode, when it made anything


FINAL = ("live", "failed", "deferred", "processing", "scheduled")


def timeline(state: Path, started: datetime) -> Timeline:
    live: dict[str, tuple[float, str]] = {}
    work: dict[str, float] = {}
    opened: dict[str, float] = {}
    encoded = None
    for e in Store(sqlite_url(state)).events(RELEASE_ID):
        at = (e.at - started).total_seconds()
        if e.action == "transcode":
            encoded = (at - float(e.message.split(" in ")[-1].split()[0]), at)
        elif e.channel and e.action in ("publish", "update"):
            opened.setdefault(e.channel, at)
        elif e.channel and e.action in FINAL:
            live[e.channel] = (at, e.action)
            if e.channel in opened:
                work[e.channel] = work.get(e.channel, 0.0) + at - opened.pop(e.channel)
    return Timeline(live, work, encoded)


def webdav_rates(root: Path, dav: Any, password: str, mib: int) -> tuple[float, float, int]:
    """MB/s of a raw `curl -T` of the master to the WebDAV server, and of publisher's transport."""
    from channels.transports.webdav import WebDAVTarget

    big = root / "upload.bin"
    with big.open("wb") as f:  # the release's largest file is the master; make it worth timing
        chunk = os.urandom(1 << 20)
        for _ in range(mib):
            f.write(chunk)
    size = big.stat().st_size
    url = dav.target("rate").replace("webdav://", "http://")
    subprocess.run(["curl", "-sS", "-f", "-u", f"{dav.user}:{password}", "-X", "MKCOL", url + "/"],
                   check=False, capture_output=True)
    best_curl = best_pub = float("inf")
    target = WebDAVTarget(dav.target("rate"), username=dav.user, password=password, verify=True,
                          timeout=60, staging=None)
    for i in range(5):
        t, proc = timed_run(["curl", "-sS", "-f", "-u", f"{dav.user}:{password}", "-T", str(big),
                             f"{url}/curl-{i}.bin"])
        if proc.returncode != 0:
            raise SystemExit(f"curl -T failed: {proc.stderr}")
        best_curl = min(best_curl, t)
        start = time.perf_counter()
        target.put_file(big, f"pub-{i}.bin")
        best_pub = min(best_pub, time.perf_counter() - start)
    target.close()
    return size / best_curl / 1e6, size / best_pub / 1e6, size


def release_once(root: Path, manifest: Path, env: dict[str, str]) -> tuple[float, datetime, str, int]:
    args = [sys.executable, "-m", "publisher", "-v", "release", str(manifest)]
    started = datetime.now(UTC)
    wall, proc = timed_run(args, env=env, cwd=root)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise SystemExit(f"publisher release exited {proc.returncode}")
    return wall, started, proc.stdout + proc.stderr, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20, help="master length (default 20)")
    ap.add_argument("--naive-seconds", type=float, default=None,
                    help="master length for the naive line, scaled up to --seconds (default: the same)")
    ap.add_argument("--skip-naive", action="store_true", help="leave out the slow naive line")
    ap.add_argument("--size", default="1920x1080", help="master picture size (default 1920x1080)")
    ap.add_argument("--upload-mb", type=int, default=200, help="size of the WebDAV rate test file")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="publisher-release-bench-"))
    repo = Path(__file__).resolve().parent.parent
    try:
        master = make_master(root / "master-src.mp4", args.seconds, args.size)
        manifest = make_release(root / "release", master, args.seconds)
        with YouTubeFake(root / "youtube") as youtube, serve_wechat(root / "wechat") as wechat, \
                webdav_server(root / "dav") as dav:
            (root / "dav" / "sb").mkdir(parents=True, exist_ok=True)
            config = seed_config(root, youtube, wechat, dav)
            (root / "publisher.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
            env = dict(os.environ, PUBLISHER_CONFIG=str(root / "publisher.yaml"),
                       PUBLISHER_HOME=str(root / "state"), PYTHONPATH=str(repo),
                       **{WECHAT_SECRET: wechat.fake.secret, DAV_PASSWORD: dav.password})
            print(f"master: {args.size} 25 fps, {args.seconds:g} s, {master.stat().st_size / 1e6:.1f} MB; "
                  f"{len(config['channels'])} channels: {', '.join(config['channels'])}")
            print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")

            rows: list[tuple[str, float, float, str]] = []

            def add(name: str, t: float, note: str = "", cpu: float = float("nan")) -> None:
                rows.append((name, t, cpu, note))
                shown = "" if cpu != cpu else f" (CPU {cpu:.1f} s)"  # NaN: not measured apart
                print(f"  measured: {name}: {t:.1f} s{shown} {note}", flush=True)
            burn = root / "floor" / "burn.srt"
            burn.parent.mkdir()
            shutil.copyfile(manifest.parent / "subs" / "zh-Hant.srt", burn)
            floor_args = floor_command(manifest.parent / "master.mp4", root / "floor", burn)
            print("\nfloor command (run in the floor folder):\n  " + shlex.join(floor_args))
            floor, proc = timed_run(floor_args, cwd=root / "floor")
            if proc.returncode != 0:
                raise SystemExit(f"floor command failed: {proc.stderr[-2000:]}")
            add("one-process floor (reference ffmpeg)", floor, "", LAST_CPU[0])
            floor_cpu = LAST_CPU[0]

            wall, started, _, _ = release_once(root, manifest, env)
            add("publisher release, whole", wall, "a fresh process; every channel live", LAST_CPU[0])
            release_cpu = LAST_CPU[0]
            line = timeline(root / "state", started)
            encode = line.encoded[1] - line.encoded[0] if line.encoded else 0.0
            if line.encoded:
                add("  of which the transcode", encode,
                    f"{line.encoded[0]:.1f} s to {line.encoded[1]:.1f} s after the start")

            print("\ntime to live, from `publisher release` starting; own work: the time inside the "
                  "channel's adapter calls (each made when its renditions exist):")
            for name in config["channels"]:
                t, state = line.live.get(name, (float("nan"), "?"))
                own = line.work.get(name, float("nan"))
                print(f"  {name:<16} {t:6.1f} s  {state:<10} own work {own:5.1f} s")

            again, started2, _, _ = release_once(root, manifest, env)
            encodes = sum(1 for e in Store(sqlite_url(root / "state")).events(RELEASE_ID)
                          if e.action == "transcode" and e.at > started2)
            add("second release, same master", again, f"{encodes} transcodes", LAST_CPU[0])

            curl_rate, pub_rate, size = webdav_rates(root, dav, dav.password, args.upload_mb)
            print(f"\nWebDAV upload of {size / 1e6:.0f} MB to loopback wsgidav: "
                  f"curl -T {curl_rate:.0f} MB/s, publisher {pub_rate:.0f} MB/s "
                  f"({pub_rate / curl_rate:.2f}x; goal >= 0.8x)")

            if not args.skip_naive:
                n = args.naive_seconds or args.seconds
                t = naive(root, n, args.size)
                scaled = t * args.seconds / n
                note = f"measured {t:.1f} s on a {n:g} s master, scaled" if n != args.seconds else ""
                add("naive: per-channel ffmpeg", scaled, note, LAST_CPU[0] * args.seconds / n)

        width = max(len(r[0]) for r in rows)
        print(f"\n{'':<{width}}  {'wall':>8}  {'CPU':>8}")
        for name, t, cpu, note in rows:
            cpu_text = "     —  " if cpu != cpu else f"{cpu:6.1f} s"
            print(f"{name:<{width}}  {t:7.1f} s  {cpu_text}  {note}")
        slowest = max(line.work.values())
        print("\nratios:")
        print(f"  release / floor                            {wall / floor:5.2f}  (goal <= 0.9; "
              f"CPU {release_cpu / floor_cpu:.2f})")
        if not args.skip_naive:
            print(f"  naive / release                            {rows[-1][1] / wall:5.2f}  (goal >= 3; "
                  f"CPU {rows[-1][2] / release_cpu:.2f})")
        bound = wall / max(encode, slowest)
        print(f"  release / max(transcode, slowest upload)   {bound:5.2f}  (goal <= 1.15)")
        print(f"  encodes in the second release              {encodes:5d}  (goal 0)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
