"""The service (`publisher run`) through the real APScheduler: embargo, restart, deferred retry,
recurring runs with misfire, and zone/DST edges of the triggers.

``drop`` below is a real, small channel kind used for the scheduler's mechanics: it writes files
to a folder (staged in a hidden folder before an embargo, renamed into place at the time) and
keeps an append-only ``<id>.log`` of every go-live and re-post, so "published once" is checked on
disk. It needs no renditions, so these tests do not wait for encodes. The embargo test with the
real ``website`` channel serves the folder over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from publisher.contract import Channel, ChannelOptions, Job, register
from publisher.engine import verbs
from publisher.engine.engine import Engine
from publisher.errors import RateLimited, Rejected
from publisher.inputs.config import load_config
from publisher.inputs.rules import (
    WallClockCron,
    crontab_weekdays,
    in_window,
    occurrences,
    repeat_trigger,
    window_today,
)
from publisher.models import Outcome, Release, RemoteStatus, RenditionRequest, RepeatSpec
from publisher.schedule.planning import planned_jobs
from publisher.schedule.service import Service
from publisher.store import Store, sqlite_url
from tests.conftest import Project, wait_for
from tests.renditions import FixedClock


class DropOptions(ChannelOptions):
    target: str
    public_url: str = "http://127.0.0.1/"


@register
class Drop(Channel):
    """Files in ``<target>/<id>/``; a marker file ``<target>/QUOTA`` or ``BROKEN`` makes it refuse."""

    kind = "drop"
    Options = DropOptions

    @property
    def target(self) -> Path:
        assert isinstance(self.options, DropOptions)
        return self.resolve_path(self.options.target)

    def renditions(self, release: Release) -> list[RenditionRequest]:
        return []

    def _gate(self, job: Job) -> None:
        if (self.target / "SLOW").exists():  # a slow upload: lets a test stop the service mid-job
            (self.target / "STARTED").touch()
            time.sleep(float((self.target / "SLOW").read_text()))
        if (self.target / "QUOTA").exists():
            raise RateLimited("daily quota spent", retry_at=datetime.fromisoformat(
                (self.target / "QUOTA").read_text().strip()))
        if (self.target / "BROKEN").exists():
            raise Rejected("the service refused the upload: " + (self.target / "BROKEN").read_text())

    def _log(self, rid: str, text: str) -> None:
        with open(self.target / f"{rid}.log", "a", encoding="utf-8") as fh:
            fh.write(text + "\n")

    def _page(self, job: Job) -> str:
        return f"<h1>{job.release.text('title')}</h1>\n"

    def _outcome(self, job: Job, state: Any, folder: Path) -> Outcome:
        page = folder / "index.html"
        digest = hashlib.sha256(page.read_bytes()).hexdigest() if page.exists() else ""
        assert isinstance(self.options, DropOptions)
        rid = job.release.id
        return Outcome(state=state, remote_id=rid, url=f"{self.options.public_url}{rid}/", checksum=digest)

    def publish(self, job: Job) -> Outcome:
        self._gate(job)
        rid = job.release.id
        self.target.mkdir(parents=True, exist_ok=True)
        live, staged = self.target / rid, self.target / ".staging" / rid
        early = job.stage_only or bool(job.release.publish_at and job.now() < job.release.publish_at)
        if live.exists():
            occurrence = job.options.repeat.at.isoformat() if job.options.repeat else ""
            if occurrence and job.journal.get("reposted") != occurrence:
                self._log(rid, f"repeat {occurrence}")
                job.journal.put("reposted", occurrence)
            return self._outcome(job, "live", live)
        if not staged.exists():
            staged.mkdir(parents=True)
            (staged / "index.html").write_text(self._page(job), encoding="utf-8")
        if early:
            return self._outcome(job, "scheduled", staged)
        staged.rename(live)
        self._log(rid, f"live {job.now().isoformat()}")
        return self._outcome(job, "live", live)

    def update(self, job: Job) -> Outcome:
        rid = job.release.id
        for folder, state in ((self.target / rid, "live"), (self.target / ".staging" / rid, "scheduled")):
            if folder.exists():
                (folder / "index.html").write_text(self._page(job), encoding="utf-8")
                return self._outcome(job, state, folder)
        raise Rejected(f"{rid} is not published")

    def withdraw(self, job: Job) -> Outcome:
        rid = job.release.id
        for folder in (self.target / rid, self.target / ".staging" / rid):
            if folder.exists():
                shutil.rmtree(folder)
        self._log(rid, "withdrawn")
        return Outcome(state="withdrawn", remote_id=rid)

    def status(self, job: Job) -> RemoteStatus:
        rid = job.release.id
        if (self.target / rid).exists():
            o = self._outcome(job, "live", self.target / rid)
            return RemoteStatus(state="live", remote_id=rid, url=o.url, checksum=o.checksum)
        staged = (self.target / ".staging" / rid).exists()
        return RemoteStatus(state="scheduled" if staged else "withdrawn", remote_id=rid)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # tables on one line each, so the tests can read them


def drop(proj: Project, name: str = "drop-a") -> Path:
    target = proj.root / f"www-{name}"
    proj.add_channel(name, {"kind": "drop", "target": str(target)})
    return target


def lines(target: Path, rid: str) -> list[str]:
    log = target / f"{rid}.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def service(proj: Project, poll: float = 0.5) -> Service:
    config = load_config(proj.config_path)
    return Service(config, Store(sqlite_url(proj.state_dir)), proj.state_dir, poll=poll)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def state_of(cli: Any, proj: Project) -> dict[str, str]:
    rows = json.loads(cli(proj, "status", "--json").stdout)
    return {r["channel"]: r["state"] for r in rows}



# --- embargo ----------------------------------------------------------------------------------------
@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "public"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 (loopback test server)
            return bool(r.status == 200)
    except urllib.error.HTTPError:
        return False


def test_embargo_through_the_real_scheduler(project: Callable[[], Project], cli: Any,
                                            http_root: tuple[Path, str]) -> None:
    root, base = http_root
    warm = project()  # encode the website's renditions once, so the embargoed release is quick
    warm.add_channel("web", {"kind": "website", "target": str(warm.root / "w"), "public_url": base})
    warm.write()
    assert cli(warm, "release", warm.manifest_path).exit_code == 0

    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(root / "web"), "public_url": base + "web/"})
    other = drop(proj)
    publish_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=7)
    proj.manifest["publish_at"] = iso(publish_at)
    proj.write()
    rid = proj.manifest["id"]
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    assert datetime.now(UTC) < publish_at - timedelta(seconds=1), "release took too long for this test"
    assert state_of(cli, proj) == {"web": "scheduled", "drop-a": "scheduled"}
    page, video = f"{base}web/{rid}/", f"{base}web/{rid}/video.mp4"
    listed = cli(proj, "schedule", "list")
    assert rid in listed.stdout and "go live" in listed.stdout
    assert publish_at.astimezone(ZoneInfo("Asia/Hong_Kong")).strftime("%H:%M:%S HKT") in listed.stdout

    svc = service(proj)
    svc.start()
    try:
        while datetime.now(UTC) < publish_at - timedelta(seconds=0.3):
            assert not reachable(page) and not reachable(video), "public before the embargo"
            assert not (other / rid).exists()
            time.sleep(0.2)
        assert wait_for(lambda: reachable(page), timeout=4)
        seen = datetime.now(UTC)
    finally:
        svc.stop()
    assert (seen - publish_at).total_seconds() <= 2.0, f"went live {seen - publish_at} after the time"
    assert reachable(video) and (other / rid / "index.html").exists()
    assert state_of(cli, proj) == {"web": "live", "drop-a": "live"}
    events = json.loads(json.dumps([e.model_dump(mode="json") for e in Store(
        sqlite_url(proj.state_dir)).events(rid)]))
    lifted = [e for e in events if e["action"] == "embargo"]
    assert len(lifted) == 1 and "web live" in lifted[0]["message"]
    lag = float(lifted[0]["message"].split("started ")[1].split(" s")[0])
    assert 0 <= lag <= 2.0


def test_service_restarted_across_the_publish_time_publishes_once(
        project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    target = drop(proj)
    rid = proj.manifest["id"]
    publish_at = datetime.now(UTC) + timedelta(seconds=5)  # room for a loaded machine's release
    proj.manifest["publish_at"] = iso(publish_at)
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    first = service(proj)
    first.start()
    time.sleep(0.5)
    first.stop()  # down across the publish time
    assert not (target / rid).exists()
    time.sleep(max(0.0, (publish_at - datetime.now(UTC)).total_seconds()) + 1.0)
    assert not (target / rid).exists() and state_of(cli, proj) == {"drop-a": "scheduled"}
    listed = cli(proj, "schedule", "list")
    assert "overdue" in listed.stdout
    for _ in range(2):  # back up, then once more: the second start finds nothing to do
        svc = service(proj)
        svc.start()
        assert wait_for(lambda: (target / rid).exists(), timeout=15)
        time.sleep(1.0)
        svc.stop()
    assert [line.split()[0] for line in lines(target, rid)] == ["live"]
    assert state_of(cli, proj) == {"drop-a": "live"}
    assert planned_jobs(Store(sqlite_url(proj.state_dir))) == []


def test_stopping_waits_for_a_running_job_without_deadlock(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    target = drop(proj)
    rid = proj.manifest["id"]
    proj.manifest["publish_at"] = iso(datetime.now(UTC) + timedelta(seconds=5))
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    (target / "SLOW").write_text("1.5")
    svc = service(proj, poll=0.1)
    svc.start()
    assert wait_for(lambda: (target / "STARTED").exists(), timeout=8)
    stopper = threading.Thread(target=svc.stop)
    stopper.start()
    stopper.join(timeout=15)
    assert not stopper.is_alive(), "stopping the service hung while a job ran"
    assert (target / rid).exists() and state_of(cli, proj) == {"drop-a": "live"}


def test_deferred_publication_is_retried_at_retry_at(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    target = drop(proj)
    target.mkdir()
    rid = proj.manifest["id"]
    retry_at = datetime.now(UTC) + timedelta(seconds=2)
    (target / "QUOTA").write_text(retry_at.isoformat())
    proj.write()
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 75, result.output
    assert state_of(cli, proj) == {"drop-a": "deferred"}
    (target / "QUOTA").unlink()  # the quota resets
    svc = service(proj)
    svc.start()
    try:
        assert not (target / rid).exists()
        assert wait_for(lambda: (target / rid).exists(), timeout=5)
        assert datetime.now(UTC) >= retry_at
    finally:
        svc.stop()
    assert state_of(cli, proj) == {"drop-a": "live"}


def test_publisher_run_serves_until_sigterm(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    target = drop(proj)
    rid = proj.manifest["id"]
    proj.manifest["publish_at"] = iso(datetime.now(UTC) + timedelta(seconds=6))
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    assert state_of(cli, proj) == {"drop-a": "scheduled"}
    code = "import tests.test_scheduler; from publisher.cli import main; main()"  # registers `drop`
    proc = subprocess.Popen([sys.executable, "-c", code, "run", "--poll", "0.5"], env=proj.env(),
                            cwd=Path(__file__).parent.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_for(lambda: (target / rid).exists(), timeout=20)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output
    assert "job(s) planned" in output and "embargo lifted" in output
    assert "received SIGTERM" in output and "service stopped" in output
    assert [x.split()[0] for x in lines(target, rid)] == ["live"]


# --- recurring re-publishing --------------------------------------------------------------------------
def backdate(proj: Project, rid: str, seconds: float) -> None:
    """The release was recorded ``seconds`` ago and the service has been down since."""
    with sqlite3.connect(proj.state_dir / "state.db") as db:
        then = (datetime.now(UTC) - timedelta(seconds=seconds)).replace(tzinfo=None)
        db.execute("update releases set created_at = ? where id = ?", (then.isoformat(" "), rid))


def test_missed_repeat_runs_run_once_and_the_log_says_so(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    feed, signs = drop(proj, "feed"), drop(proj, "signs")
    rid = proj.manifest["id"]
    proj.manifest["repeat"] = [{"channels": ["feed"], "every": "1m", "timezone": "Asia/Hong_Kong"},
                               {"channels": ["signs", "feed"], "cron": "0 9 1 * *"}]
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    backdate(proj, rid, 210)  # runs were due 150, 90 and 30 s ago
    store = Store(sqlite_url(proj.state_dir))
    planned = {j.id: j for j in planned_jobs(store)}
    assert planned[f"repeat:{rid}:0"].next_run < datetime.now(UTC)
    assert planned[f"repeat:{rid}:1"].channels == ("signs", "feed")
    svc = service(proj)
    svc.start()
    try:
        assert wait_for(lambda: len(lines(feed, rid)) >= 2, timeout=5)
        time.sleep(1.5)
    finally:
        svc.stop()
    assert [line.split()[0] for line in lines(feed, rid)] == ["live", "repeat"]
    assert lines(signs, rid) == ["live " + lines(signs, rid)[0].split()[1]]
    repeats = [e for e in store.events(rid) if e.action == "repeat"]
    assert len(repeats) == 1
    assert "2 earlier run(s) were missed" in repeats[0].message and "coalesced" in repeats[0].message
    assert "feed re-published" in repeats[0].message
    nxt = {j.id: j for j in planned_jobs(store)}[f"repeat:{rid}:0"].next_run
    assert timedelta(seconds=50) < nxt - datetime.now(UTC) <= timedelta(seconds=61)
    listed = cli(proj, "schedule", "list")
    assert "every 1m" in listed.stdout and "cron '0 9 1 * *'" in listed.stdout


def test_repeat_runs_only_inside_its_window_and_only_while_live(
        project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    feed = drop(proj, "feed")
    rid = proj.manifest["id"]
    rule = {"channels": ["feed"], "every": "1h", "timezone": "Asia/Hong_Kong", "window": "09:00-18:00"}
    proj.manifest["repeat"] = [rule]
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    config = load_config(proj.config_path)
    store = Store(sqlite_url(proj.state_dir))
    hk = ZoneInfo("Asia/Hong_Kong")
    tomorrow = (datetime.now(hk) + timedelta(days=1)).date()
    evening = datetime.combine(tomorrow, datetime.min.time(), hk).replace(hour=20)
    morning = evening.replace(hour=10) + timedelta(days=1)
    for at in (evening, morning):
        engine = Engine(config, store, proj.state_dir, clock=FixedClock(lambda at=at: at.astimezone(UTC)))
        verbs.repeat(engine, rid, 0)
    events = [e.message for e in store.events(rid) if e.action == "repeat"]
    assert "skipped, outside the window 09:00-18:00" in events[0]
    assert "feed re-published" in events[1] and "coalesced" in events[1]
    assert [x.split()[0] for x in lines(feed, rid)] == ["live", "repeat"]
    assert [j.kind for j in planned_jobs(store)] == ["repeat"]
    assert cli(proj, "withdraw", rid, "--yes").exit_code == 0
    assert planned_jobs(store) == []  # nothing live: nothing to repeat


# --- zones and DST ------------------------------------------------------------------------------------
def fires(trigger: Any, start: datetime, n: int) -> list[datetime]:
    return occurrences(trigger, start, start + timedelta(days=400))[:n]


def test_cron_is_wall_clock_in_its_zone_across_dst() -> None:
    london = ZoneInfo("Europe/London")
    nine = repeat_trigger(RepeatSpec(channels=["x"], cron="0 9 * * *", timezone="Europe/London"))
    days = fires(nine, datetime(2026, 3, 27, 12, tzinfo=UTC), 3)  # clocks go forward on 29 March
    assert [d.astimezone(london).hour for d in days] == [9, 9, 9]
    assert [d.hour for d in days] == [9, 8, 8]  # UTC
    hk = repeat_trigger(RepeatSpec(channels=["x"], cron="0 9 * * *", timezone="Asia/Hong_Kong"))
    assert fires(hk, datetime(2026, 12, 1, tzinfo=UTC), 1)[0] == datetime(2026, 12, 1, 1, tzinfo=UTC)


def test_a_wall_time_that_occurs_twice_fires_once_and_a_missing_one_still_fires() -> None:
    spec = RepeatSpec(channels=["x"], cron="30 1 * * *", timezone="Europe/London")
    trigger = repeat_trigger(spec)
    assert isinstance(trigger, WallClockCron)
    autumn = fires(trigger, datetime(2026, 10, 24, 12, tzinfo=UTC), 2)  # 01:30 happens twice on 25 Oct
    assert autumn == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 26, 1, 30, tzinfo=UTC)]
    spring = fires(trigger, datetime(2026, 3, 28, 12, tzinfo=UTC), 2)  # 01:30 does not exist on 29 Mar
    assert len([d for d in spring if d.astimezone(ZoneInfo("Europe/London")).day == 29]) == 1


def test_every_is_elapsed_time_and_until_ends_it() -> None:
    until = datetime(2026, 3, 31, 0, 0, tzinfo=UTC)
    spec = RepeatSpec(channels=["x"], every="1d", timezone="Europe/London", until=until)
    start = datetime(2026, 3, 27, 12, tzinfo=UTC)
    times = occurrences(repeat_trigger(spec), start, until + timedelta(days=9))
    assert [t.hour for t in times] == [12, 12, 12]  # exact 24 h steps in UTC, even across DST
    assert times[-1] < until


def test_crontab_weekdays_count_sunday_as_zero() -> None:
    assert crontab_weekdays("1") == "mon" and crontab_weekdays("0") == crontab_weekdays("7") == "sun"
    assert crontab_weekdays("1-5") == "mon,tue,wed,thu,fri"
    monday = repeat_trigger(RepeatSpec(channels=["x"], cron="0 10 * * 1", timezone="Asia/Hong_Kong"))
    first = fires(monday, datetime(2026, 11, 27, tzinfo=UTC), 1)[0]  # a Friday
    assert first.astimezone(ZoneInfo("Asia/Hong_Kong")).strftime("%a %H:%M") == "Mon 10:00"


def test_windows_in_the_rule_zone() -> None:
    spec = RepeatSpec(channels=["x"], every="1h", timezone="Asia/Hong_Kong", window="09:00-18:00")
    assert in_window(spec, datetime(2026, 12, 1, 1, 0, tzinfo=UTC))  # 09:00 HKT
    assert not in_window(spec, datetime(2026, 12, 1, 10, 0, tzinfo=UTC))  # 18:00 HKT
    night = spec.model_copy(update={"window": "22:00-02:00"})
    assert in_window(night, datetime(2026, 12, 1, 17, 30, tzinfo=UTC))  # 01:30 HKT
    w = window_today(spec, datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
    assert w == (datetime(2026, 12, 1, 1, 0, tzinfo=UTC), datetime(2026, 12, 1, 10, 0, tzinfo=UTC))


def test_youtube_embargo_is_confirmed_live_and_a_cancelled_one_stays_private(
        project: Callable[[], Project], cli: Any, tmp_path: Path) -> None:
    """YouTube lifts its own embargo (publishAt): the service confirms it; `schedule cancel` stops it."""
    from tests.conformance.env_youtube import environment

    with environment(tmp_path / "warm") as warm_env:  # encode the YouTube rendition once
        warm = project()
        warm.add_channel("yt", warm_env.channel_config)
        warm.write()
        assert cli(warm, "release", warm.manifest_path).exit_code == 0
    with environment(tmp_path / "yt") as env:
        proj = project()
        proj.add_channel("immd-youtube", env.channel_config)
        rid = proj.manifest["id"]
        publish_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
        proj.manifest["publish_at"] = iso(publish_at)
        proj.write()
        result = cli(proj, "release", proj.manifest_path)
        assert result.exit_code == 0, result.output
        assert state_of(cli, proj) == {"immd-youtube": "scheduled"}
        assert not env.is_public(rid)
        svc = service(proj)
        svc.start()
        try:
            assert wait_for(lambda: state_of(cli, proj) == {"immd-youtube": "live"}, timeout=12)
        finally:
            svc.stop()
        assert datetime.now(UTC) >= publish_at and env.is_public(rid)
        assert len(env.remote_objects(rid)) == 1

    with environment(tmp_path / "yt2") as env:
        proj = project()
        proj.add_channel("immd-youtube", env.channel_config)
        rid = proj.manifest["id"]
        publish_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
        proj.manifest["publish_at"] = iso(publish_at)
        proj.write()
        assert cli(proj, "release", proj.manifest_path).exit_code == 0
        cancelled = cli(proj, "schedule", "cancel", rid, "--yes")
        assert cancelled.exit_code == 0, cancelled.output
        time.sleep(max(0.0, (publish_at - datetime.now(UTC)).total_seconds()) + 0.5)
        assert not env.is_public(rid)
        assert state_of(cli, proj) == {"immd-youtube": "cancelled"}
