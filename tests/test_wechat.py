"""The wechat adapter through real requests against the loopback HTTPS fake of the API."""

from __future__ import annotations

import hashlib
import json
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from channels.wechat.adapter import WeChat
from channels.wechat.options import WeChatOptions
from publisher.contract import Job, Journal, StepOptions
from publisher.errors import AuthError, RateLimited, Rejected, Transient
from publisher.models import FileInfo, Release, Rendition
from tests.fakes.wechat_server import Running, serve_wechat
from tests.renditions import make_job

SECRET_ENV = "PUBLISHER_TEST_WECHAT_SECRET"
TITLE = "领事保护"
DESCRIPTION = "领事保护动画短片。出行注意安全。"
SITE = "https://www.example.gov.hk/videos/consular-protection-2026/"
YOUTUBE = "https://www.youtube.com/watch?v=abc"


def rendition(folder: Path, profile: str, main: str) -> Rendition:
    data = (folder / main).read_bytes()
    return Rendition(key=profile, profile=profile, folder=folder, main=main,
                     files=[FileInfo(name=main, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())])


def make_media(folder: Path, seconds: float = 1.0, pattern: str = "testsrc2") -> dict[str, Rendition]:
    """A real small MP4 (the 'wechat' rendition) and a real JPEG under 64 KB (the 'cover')."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"{pattern}=size=320x180:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-shortest", "-movflags", "+faststart", str(folder / "video.mp4")], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"{pattern}=size=320x180",
                    "-frames:v", "1", "-q:v", "5", str(folder / "cover.jpg")], check=True)
    assert (folder / "cover.jpg").stat().st_size <= 64 * 1024
    return {"wechat": rendition(folder, "wechat", "video.mp4"),
            "cover": rendition(folder, "cover", "cover.jpg")}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendition]:
    return make_media(tmp_path_factory.mktemp("wechat-media"))


def make_release(tmp: Path, **changes: Any) -> Release:
    fields: dict[str, Any] = {
        "id": "consular-protection-2026", "manifest_path": tmp / "release.yaml", "master": tmp / "master.mp4",
        "languages": ["en", "zh-Hant", "zh-Hans"],
        "title": {"en": "Consular Protection", "zh-Hant": "領事保護", "zh-Hans": TITLE},
        "description": {"en": "An animated video.", "zh-Hant": "領事保護動畫短片。", "zh-Hans": DESCRIPTION},
    }
    fields.update(changes)
    return Release(**fields)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    with serve_wechat(tmp_path / "tls") as running:
        yield running


@pytest.fixture
def channel(server: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WeChat:
    monkeypatch.setenv(SECRET_ENV, server.fake.secret)
    return make_channel(server, tmp_path)


def make_channel(server: Running, tmp_path: Path, **options: Any) -> WeChat:
    opts = WeChatOptions(kind="wechat", appid=server.fake.appid, secret_env=SECRET_ENV, api_root=server.url,
                         ca_bundle=str(server.ca_bundle), author="入境事务处",
                         **{"poll_interval": 0.01, "publish_wait": 2.0, **options})
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return WeChat("consular-express", opts, config_dir=tmp_path, state_dir=state)


def job(tmp: Path, media: dict[str, Rendition], journal: Journal | None = None, **kw: Any) -> Job:
    release = kw.pop("release", None) or make_release(tmp)
    return make_job(release=release, journal=journal or Journal(), renditions=media,
                    links={"sb-web": SITE, "immd-youtube": YOUTUBE}, **kw)  # the core's order


def test_publish_goes_live_with_utf8_article_and_journals_every_id(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    fake = server.fake
    fake.publish_seconds = 0.1
    j = job(tmp_path, media)
    out = channel.publish(j)
    assert out.state == "live"
    assert out.url.startswith("https://mp.weixin.qq.com/s/")
    assert out.checksum == media["wechat"].main_sha256
    [article] = fake.live_articles()
    assert article["title"] == TITLE and article["author"] == "入境事务处"
    assert article["digest"] == DESCRIPTION
    assert article["content_source_url"] == SITE  # the website, not YouTube
    assert f'href="{SITE}"' in article["content"] and "观看视频" in article["content"]
    assert "<img src=\"http://mmbiz.qpic.cn/" in article["content"] and DESCRIPTION in article["content"]
    videos = [m for m in fake.materials.values() if m.type == "video"]
    assert [v.description["title"] for v in videos] == [TITLE]
    assert videos[0].data == media["wechat"].main_path.read_bytes()
    assert fake.thumb_names()[article["thumb_media_id"]] == "consular-protection-2026.jpg"
    # raw UTF-8 on the wire, never \u escapes (WeChat would store them literally)
    assert not any(re.search(rb"\\u[0-9a-f]{4}", b) for b in fake.raw_bodies if b.startswith(b"{"))
    assert any(TITLE.encode() in body for body in fake.raw_bodies)
    data = j.journal.data()
    assert data["video"]["media_id"] in fake.materials and data["thumb"]["media_id"] in fake.materials
    assert data["article"]["id"] == article["article_id"] and data["article"]["url"] == out.url
    assert out.remote_id == article["article_id"]
    assert fake.count("/cgi-bin/freepublish/get") >= 2  # "publishing", then done
    token_file = channel.state_dir / f"wechat-token-{fake.appid}.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    # publishing again is a no-op: not one call reaches WeChat
    calls = len(fake.calls)
    again = channel.publish(Job(release=j.release, journal=Journal(j.journal.data()), renditions=media,
                                links=j.links))
    assert again == out and len(fake.calls) == calls


def test_token_cached_on_disk_and_refreshed_once_after_expiry(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    fake = server.fake
    j = job(tmp_path, media, stage_only=True)
    assert channel.publish(j).state == "scheduled"
    assert fake.count("/cgi-bin/stable_token") == 1  # one token shared by every call
    fake.advance(7200)  # the server's token expired; the adapter's cache does not know yet
    out = channel.publish(Job(release=j.release, journal=j.journal, renditions=media, links=j.links))
    assert out.state == "live"
    assert fake.count("/cgi-bin/stable_token") == 2
    assert fake.calls.count("/cgi-bin/freepublish/submit") == 2  # 42001, refresh, one retry
    fake.expire_tokens()
    fake.fail_next["/cgi-bin/stable_token"] = []
    assert channel.status(Job(release=j.release, journal=j.journal)).state == "live"


def test_token_refused_twice_is_auth_error_without_secret(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    fake = server.fake
    fake.fail_next["/cgi-bin/material/add_material"] = [40001, 40001]
    with pytest.raises(AuthError) as err:
        channel.publish(job(tmp_path, media))
    assert "40001" in str(err.value) and fake.secret not in str(err.value)
    assert fake.count("/cgi-bin/material/add_material") == 2  # refreshed and retried once, no loop
    # normal mode handed back the token just refused, so the adapter forced a new one
    token_bodies = [json.loads(b) for c, b in zip(fake.calls, fake.raw_bodies, strict=True)
                    if c == "/cgi-bin/stable_token"]
    assert [b["force_refresh"] for b in token_bodies] == [False, False, True]


def test_a_refused_token_is_never_sent_again(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    """Refused twice in one call: AuthError, and the refused token leaves the cache file too, so
    the next attempt (another run) fetches a new one instead of sending it again."""
    fake = server.fake
    fake.revoke_tokens = 2
    with pytest.raises(AuthError, match="40001"):
        channel.publish(job(tmp_path, media))
    assert len(fake.revoked) == 2
    token_file = channel.state_dir / f"wechat-token-{fake.appid}.json"
    assert not token_file.exists() or json.loads(token_file.read_text())["access_token"] not in fake.revoked
    assert channel.publish(job(tmp_path, media)).state == "live"
    for token in fake.revoked:
        assert fake.presented.count(token) == 1  # the call that was refused, and never again
    assert fake.presented.index(fake.revoked[1]) < fake.presented.index(fake.current)


def test_wrong_secret_is_auth_error(server: Running, media: dict[str, Rendition], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "wrong-secret-value")
    with pytest.raises(AuthError) as err:
        make_channel(server, tmp_path).publish(job(tmp_path, media))
    assert "40125" in str(err.value) and "wrong-secret-value" not in str(err.value)
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(AuthError, match=SECRET_ENV):
        make_channel(server, tmp_path).publish(job(tmp_path, media))


def test_daily_limit_defers_and_resume_repeats_nothing(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    fake = server.fake
    fake.quota["/cgi-bin/draft/add"] = 0
    j = job(tmp_path, media)
    with pytest.raises(RateLimited) as err:
        channel.publish(j)
    assert err.value.exit_code == 75 and "45009" in str(err.value)
    retry_at = err.value.retry_at
    assert retry_at is not None and retry_at > datetime.now(UTC)
    assert retry_at.astimezone(timezone(timedelta(hours=8))).hour == 0
    assert {"video", "thumb", "cover_url"} <= set(j.journal.data())
    del fake.quota["/cgi-bin/draft/add"]
    assert channel.publish(j).state == "live"
    assert fake.count("/cgi-bin/material/add_material") == 2 and fake.count("/cgi-bin/media/uploadimg") == 1


@pytest.mark.parametrize(("code", "expect"), [(40007, "invalid media_id"), (61451, "61451")])
def test_errcodes_map_to_rejected(channel: WeChat, server: Running, media: dict[str, Rendition],
                                  tmp_path: Path, code: int, expect: str) -> None:
    server.fake.fail_next["/cgi-bin/draft/add"] = [code]
    with pytest.raises(Rejected, match=expect) as err:
        channel.publish(job(tmp_path, media))
    assert "injected fault" in str(err.value)  # WeChat's own errmsg is shown


def test_publishing_state_continues_in_status(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    fake = server.fake
    fake.publish_seconds = 10_000
    channel.options.publish_wait = 0.1
    j = job(tmp_path, media)
    out = channel.publish(j)
    assert out.state == "processing" and out.remote_id == j.journal.get("publish_id")
    assert channel.status(Job(release=j.release, journal=j.journal)).state == "processing"
    for pj in fake.jobs.values():
        pj.ready_at = 0
    st = channel.status(Job(release=j.release, journal=j.journal))
    assert st.state == "live" and st.url == fake.live_articles()[0]["url"]
    assert channel.publish(j).state == "live"
    assert fake.count("/cgi-bin/freepublish/submit") == 1


def test_update_while_publishing_waits_then_replaces(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    fake = server.fake
    fake.publish_seconds = 10_000
    channel.options.publish_wait = 0.05
    j = job(tmp_path, media)
    assert channel.publish(j).state == "processing"
    j.release = make_release(tmp_path, title={"en": "x", "zh-Hans": "领事保护（更正）"})
    assert channel.update(j).state == "processing"  # the submitted draft is left alone
    assert fake.count("/cgi-bin/draft/update") == 0
    for pj in fake.jobs.values():
        pj.ready_at = 0
    fake.publish_seconds = 0
    assert channel.update(j).state == "live"
    assert [a["title"] for a in fake.live_articles()] == ["领事保护（更正）"]


def test_failed_publish_is_rejected_with_reason(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    server.fake.publish_outcome = 4
    j = job(tmp_path, media)
    with pytest.raises(Rejected, match="review rejected"):
        channel.publish(j)
    assert j.journal.get("last_failure") and not j.journal.get("publish_id")
    assert not server.fake.drafts
    server.fake.publish_outcome = 0
    assert channel.publish(j).state == "live"  # a fresh draft, same materials
    assert server.fake.count("/cgi-bin/material/add_material") == 2


def test_auto_publish_false_leaves_draft_for_editor(
        server: Running, media: dict[str, Rendition], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, server.fake.secret)
    channel = make_channel(server, tmp_path, auto_publish=False)
    j = job(tmp_path, media)
    out = channel.publish(j)
    assert out.state == "processing" and out.note == "draft awaiting an editor"
    assert len(server.fake.drafts) == 1 and server.fake.count("/cgi-bin/freepublish/submit") == 0
    st = channel.status(Job(release=j.release, journal=j.journal))
    assert st.state == "processing" and st.detail == "draft awaiting an editor"
    # the editor publishes it in the web UI: status finds the live article
    fake = server.fake
    draft_id = next(iter(fake.drafts))
    fake.api_freepublish_submit({"media_id": draft_id})
    fake.advance(1)
    st = channel.status(Job(release=j.release, journal=j.journal))
    assert st.state == "live" and st.url == fake.live_articles()[0]["url"]


def test_embargo_stages_draft_then_submits(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    fake = server.fake
    j = job(tmp_path, media, stage_only=True)
    assert channel.publish(j).state == "scheduled"
    assert len(fake.drafts) == 1 and not fake.jobs and not fake.live_articles()
    assert channel.publish(j).state == "scheduled"  # staging twice changes nothing
    assert channel.status(j).state == "scheduled"
    j.release = make_release(tmp_path, title={"en": "x", "zh-Hans": "领事保护（定稿）"})
    assert channel.update(j).state == "scheduled"  # still under embargo: the draft is edited
    [draft] = fake.drafts.values()
    assert draft["articles"][0]["title"] == "领事保护（定稿）" and fake.count("/cgi-bin/draft/update") == 1
    assert len(fake.drafts) == 1 and fake.count("/cgi-bin/draft/add") == 1
    j.options = StepOptions()  # the embargo is over
    assert channel.publish(j).state == "live"
    assert fake.count("/cgi-bin/draft/add") == 1 and len(fake.live_articles()) == 1
    assert fake.live_articles()[0]["title"] == "领事保护（定稿）"


def test_update_republishes_and_withdraw_removes_everything(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    fake = server.fake
    j = job(tmp_path, media)
    first = channel.publish(j)
    new_release = make_release(tmp_path, title={"en": "Consular Protection", "zh-Hans": "领事保护（更新）"})
    j.release = new_release
    out = channel.update(j)
    assert out.state == "live" and out.url != first.url
    [article] = fake.live_articles()
    assert article["title"] == "领事保护（更新）"
    assert fake.count("/cgi-bin/material/add_material") == 2  # materials unchanged, not re-sent
    assert channel.withdraw(j).state == "withdrawn"
    assert fake.live_articles() == [] and fake.materials == {} and fake.drafts == {}
    assert channel.status(Job(release=j.release, journal=j.journal)).state == "withdrawn"
    assert channel.withdraw(j).state == "withdrawn"  # withdrawing what is gone is fine


class Killed(BaseException):
    pass


def test_resume_after_kill_at_every_step_makes_no_duplicates(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    """Kill the process right after each side effect, before its result is saved, then resume."""
    fake = server.fake
    saves = 0

    def count(_: dict[str, Any]) -> None:
        nonlocal saves
        saves += 1
    channel.publish(job(tmp_path, media, journal=Journal(save=count)))
    total = saves
    channel.withdraw(job(tmp_path, media, journal=Journal()))
    for kill_at in range(1, total + 1):
        for store in (fake.materials, fake.drafts, fake.articles):
            store.clear()
        saved: dict[str, Any] = {}
        n = 0

        def save(data: dict[str, Any], kill_at: int = kill_at) -> None:
            nonlocal n, saved
            n += 1
            if n == kill_at:
                raise Killed
            saved = data
        with pytest.raises(Killed):
            channel.publish(job(tmp_path, media, journal=Journal(save=save)))
        resumed = Journal(saved)
        out = channel.publish(job(tmp_path, media, journal=resumed))
        for _ in range(50):
            if out.state != "processing":
                break
            time.sleep(0.02)  # submitted, answer lost: found once WeChat lists the article
            out = channel.publish(job(tmp_path, media, journal=resumed))
        assert out.state == "live", kill_at
        kinds = sorted(m.type for m in fake.materials.values())
        assert kinds == ["thumb", "video"], kill_at
        assert len(fake.live_articles()) == 1 and not fake.drafts, kill_at


def test_validate_limits_in_channel_language(channel: WeChat, tmp_path: Path) -> None:
    release = make_release(tmp_path, title={"en": "short", "zh-Hans": "领" * 33},
                           description={"zh-Hans": "述" * 129})
    problems = channel.validate(release)
    fields = {p.field for p in problems}
    assert fields == {"title.zh-Hans", "description.zh-Hans"}
    assert all(p.file.endswith("release.yaml") and p.fix for p in problems)
    assert "32" in str(problems[0])
    ok = make_release(tmp_path, title={"en": "x" * 40, "zh-Hans": "领" * 32},
                      overrides={"consular-express": {"digest": "短摘要"}},
                      description={"zh-Hans": "述" * 129})
    assert channel.validate(ok) == []
    assert [r.profile for r in channel.renditions(ok)] == ["wechat", "cover"]
    assert channel.plan(ok).quota["draft/add"] == 1
    feed = "https://app.example.gov.hk/feed.json"
    assert channel._link({"app": feed, "immd-youtube": YOUTUBE}) == YOUTUBE
    assert channel._link({"app": feed, "screens": "/srv/share/hall/playlist.json"}) == ""
    channel.options.link_from = ["immd-youtube"]
    assert channel._link({"sb-web": SITE, "immd-youtube": YOUTUBE}) == YOUTUBE
    with pytest.raises(ValueError, match="HTTPS"):
        WeChatOptions(kind="wechat", appid="wx1", secret_env="X", api_root="http://api.weixin.qq.com/")


def test_oversize_video_refused_before_upload(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    (big / "video.mp4").write_bytes(media["wechat"].main_path.read_bytes() + b"\0" * (10 * 1024 * 1024))
    with pytest.raises(Rejected, match="at most 10485760 bytes"):
        channel.publish(job(tmp_path, {"wechat": rendition(big, "wechat", "video.mp4"),
                                       "cover": media["cover"]}))
    assert server.fake.count("/cgi-bin/material/add_material") == 0


def test_fake_enforces_protocol(server: Running, media: dict[str, Rendition]) -> None:
    """The fake's own rules, through plain requests: sizes, file types, escapes, GET, token."""
    fake, url = server.fake, server.url + "cgi-bin/"
    v = str(server.ca_bundle)

    def post(path: str, **kw: Any) -> dict[str, Any]:
        return dict(requests.post(url + path, verify=v, timeout=10, **kw).json())
    assert post("stable_token", data=b"")["errcode"] == 44002
    assert requests.get(url + "stable_token", verify=v, timeout=10).json()["errcode"] == 43002
    tok = post("stable_token", json={"grant_type": "client_credential", "appid": fake.appid,
                                     "secret": fake.secret})["access_token"]
    q = {"access_token": tok, "type": "thumb"}
    big = b"\xff\xd8" + b"\0" * (64 * 1024)
    assert post("material/add_material", params=q, files={"media": ("c.jpg", big)})["errcode"] == 45001
    assert post("material/add_material", params=q, files={"media": ("c", b"\xff\xd8")})["errcode"] == 40113
    assert post("material/add_material", params=q, data={"x": "1"})["errcode"] == 41005
    cover = media["cover"].main_path.read_bytes()
    thumb = post("material/add_material", params=q, files={"media": ("c.jpg", cover)})["media_id"]
    art = {"title": TITLE, "content": "<p>x</p>", "thumb_media_id": thumb}
    # requests(json=) escapes Chinese: WeChat keeps the escapes as literal text
    escaped = post("draft/add", params={"access_token": tok}, json={"articles": [art]})["media_id"]
    assert fake.drafts[escaped]["articles"][0]["title"] == "\\u9886\\u4e8b\\u4fdd\\u62a4"
    long = dict(art, title="领" * 33)
    body = json.dumps({"articles": [long]}, ensure_ascii=False).encode()
    assert post("draft/add", params={"access_token": tok}, data=body)["errcode"] == 45003
    assert post("draft/add", params={"access_token": "nope"}, data=body)["errcode"] == 40001
    fake.advance(7200)
    assert post("draft/add", params={"access_token": tok}, data=body)["errcode"] == 42001


def test_lost_answers_are_found_on_the_server_not_repeated(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    """Each step's request succeeds but its answer is lost (connection dropped): the retry finds
    what was made instead of making it twice."""
    fake = server.fake
    fake.lose_answer.update({"/cgi-bin/material/add_material": 2, "/cgi-bin/draft/add": 1,
                             "/cgi-bin/freepublish/submit": 1})
    fake.http_error["/cgi-bin/media/uploadimg"] = [503]
    j = job(tmp_path, media)
    transient = 0
    out = None
    for _ in range(12):
        try:
            out = channel.publish(j)
        except Transient:
            transient += 1
            continue
        if out.state == "live":
            break
        time.sleep(0.05)
    assert out is not None and out.state == "live" and transient == 5
    assert sorted(m.type for m in fake.materials.values()) == ["thumb", "video"]
    assert fake.count("/cgi-bin/material/add_material") == 2  # found, never re-sent
    assert len(fake.live_articles()) == 1 and not fake.drafts and len(fake.jobs) == 1


def test_transport_error_is_transient_and_hides_the_token(
        channel: WeChat, server: Running, media: dict[str, Rendition], tmp_path: Path) -> None:
    channel.publish(job(tmp_path, media, stage_only=True))
    token = server.fake.current
    channel.options.api_root = "https://127.0.0.1:9/"  # nothing listens there
    channel.options.timeout = 2
    with pytest.raises(Transient) as err:
        channel.publish(job(tmp_path, media, release=make_release(tmp_path, id="another-release")))
    assert "cannot reach WeChat" in str(err.value) and token not in str(err.value)
    assert "access_token=***" in str(err.value)  # requests names the URL; the token is masked


class SteppingClock:
    """The job's clock in a test: sleeping moves it (and the fake WeChat's clock) on at once."""

    def __init__(self, server: Running) -> None:
        self.at = datetime.now(UTC)
        self.server = server
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)
        self.server.fake.advance(seconds)


def test_waits_for_wechat_on_the_jobs_clock(server: Running, media: dict[str, Rendition], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Following a submitted article waits with job.clock.sleep and measures publish_wait on
    job.clock: on a clock that moves when slept on, a minute of WeChat publishing passes at once."""
    monkeypatch.setenv(SECRET_ENV, server.fake.secret)
    fake = server.fake
    fake.publish_seconds = 60
    channel = make_channel(server, tmp_path, poll_interval=3.0, publish_wait=120.0)
    clock = SteppingClock(server)
    j = Job(release=make_release(tmp_path), journal=Journal(), renditions=media, links={"sb-web": SITE},
            clock=clock)
    out = channel.publish(j)
    assert out.state == "live"
    assert 60 <= sum(clock.slept) < 120 and clock.slept[:3] == [3.0, 4.5, 6.75]
    assert fake.count("/cgi-bin/freepublish/get") == len(clock.slept) + 1  # one ask per wait, and the last
    assert j.journal.get("article")["url"] == out.url
    # WeChat takes longer than publish_wait: the adapter stops asking once 120 s have passed on the clock
    fake.publish_seconds = 10_000
    clock.slept.clear()
    again = Job(release=make_release(tmp_path, title={"zh-Hans": "领事保护（更新）"}), journal=j.journal,
                renditions=media, links={"sb-web": SITE}, clock=clock)
    assert channel.update(again).state == "processing"
    assert sum(clock.slept) <= 120 < sum(clock.slept) + 15
