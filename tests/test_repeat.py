"""Repeat runs through the real adapters (``job.options.repeat``, as ``verbs.repeat`` passes it) and
the service's polling of publications left ``processing``.

App feed and signage on real folders, WeChat through the loopback HTTPS fake: each occurrence
re-posts once, and running the same occurrence again changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from publisher.contract import Job, Journal
from publisher.engine import verbs
from publisher.engine.engine import Engine
from publisher.errors import RateLimited
from publisher.inputs.config import load_config
from publisher.models import Rendition, SignageSpec
from publisher.schedule.service import Service
from publisher.store import Store, sqlite_url
from tests import test_app_feed as feedtest
from tests import test_signage as signtest
from tests import test_wechat as wxtest
from tests.conftest import Project, wait_for
from tests.fakes.wechat_server import serve_wechat
from tests.renditions import job as feed_job
from tests.renditions import make_release, session_renditions
from tests.servers import target_spec

RID = "consular-protection-2026"


def at(hours: float) -> str:
    return (datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=hours)).isoformat()


# --- app feed ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def web_renditions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendition]:
    return session_renditions(tmp_path_factory)


def test_app_feed_reposts_to_the_top_and_pushes_once_per_occurrence(
        tmp_path: Path, web_renditions: dict[str, Rendition]) -> None:
    from tests.servers.fcm import fcm_server

    with target_spec("folder", tmp_path / "t") as spec, fcm_server(tmp_path / "fcm") as (server, sa, ca):
        fcm = {"credentials": str(sa), "topic": "safeguard-videos", "api_root": server.root,
               "ca_bundle": str(ca)}
        app = feedtest.channel(spec, tmp_path, fcm=fcm)
        ours, journal = make_release(tmp_path, publish_at=datetime(2026, 11, 1, tzinfo=UTC)), Journal()
        other = make_release(tmp_path, release_id="travel-safety-2026",
                             publish_at=datetime(2026, 11, 2, tzinfo=UTC))
        app.publish(feed_job(ours, web_renditions, journal))
        app.publish(feed_job(other, web_renditions))
        assert [i["id"] for i in feedtest.feed_of(spec)["items"]] == ["travel-safety-2026", RID]
        assert len(server.messages) == 2

        def repeat(occurrence: str) -> str:
            return app.publish(feed_job(ours, web_renditions, journal,
                                        repeat=occurrence, window=None)).note

        assert "re-posted for " + at(0) in repeat(at(0))
        items = feedtest.feed_of(spec)["items"]  # validated against the JSON Feed schema
        assert [i["id"] for i in items] == [RID, "travel-safety-2026"]  # bumped to the top
        assert items[0]["date_modified"] == at(0)
        assert items[0]["date_published"] == "2026-11-01T00:00:00+00:00"  # same id and first date
        assert [m["data"]["release"] for m in server.messages] == [RID, "travel-safety-2026", RID]
        assert server.messages[-1]["data"]["repeat"] == at(0)
        feed = spec.disk / "feed.json"
        before = (feed.stat().st_ino, feed.read_bytes())
        repeat(at(0))  # the same occurrence again
        repeat(at(-1))  # and an older one
        assert (feed.stat().st_ino, feed.read_bytes()) == before and len(server.messages) == 3
        # an update keeps the re-post's date; the next occurrence re-posts again
        app.update(feed_job(ours, web_renditions, journal))
        assert feedtest.feed_of(spec)["items"][0]["date_modified"] == at(0)
        repeat(at(24))
        items = feedtest.feed_of(spec)["items"]
        assert (items[0]["id"], items[0]["date_modified"], len(items)) == (RID, at(24), 2)
        assert [m["data"].get("repeat") for m in server.messages[2:]] == [at(0), at(24)]


def test_app_feed_repeat_without_fcm_only_moves_the_item(
        tmp_path: Path, web_renditions: dict[str, Rendition]) -> None:
    with target_spec("folder", tmp_path / "t") as spec:
        app: Any = feedtest.channel(spec, tmp_path)
        ours, journal = make_release(tmp_path, publish_at=datetime(2026, 11, 1, tzinfo=UTC)), Journal()
        app.publish(feed_job(ours, web_renditions, journal))
        out = app.publish(feed_job(ours, web_renditions, journal, repeat=at(0), window=None))
        assert out.state == "live" and out.note == f"re-posted for {at(0)}"
        [item] = feedtest.feed_of(spec)["items"]
        assert item["date_modified"] == at(0) and journal.get("repeat") == at(0)


# --- wechat -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wx_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendition]:
    return wxtest.make_media(tmp_path_factory.mktemp("wechat-media"))


def test_wechat_posts_a_new_article_per_occurrence_from_the_same_materials(
        tmp_path: Path, wx_media: dict[str, Rendition], monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_wechat(tmp_path / "tls") as server:
        monkeypatch.setenv(wxtest.SECRET_ENV, server.fake.secret)
        fake, ch = server.fake, wxtest.make_channel(server, tmp_path)
        journal = Journal()
        assert ch.publish(wxtest.job(tmp_path, wx_media, journal)).state == "live"
        [first] = fake.live_articles()

        def repeat(occurrence: str) -> Any:
            return ch.publish(wxtest.job(tmp_path, wx_media, journal,
                                         repeat=occurrence, window=None))

        out = repeat(at(0))
        live = fake.live_articles()
        assert out.state == "live" and len(live) == 2
        newest = next(a for a in live if a["article_id"] != first["article_id"])
        assert newest["title"] == first["title"] and newest["thumb_media_id"] == first["thumb_media_id"]
        assert out.remote_id == newest["article_id"] and out.url == newest["url"]
        assert journal.get("article")["id"] == newest["article_id"]
        assert journal.get("earlier_articles") == [first["article_id"]]
        uploads = (fake.count("/cgi-bin/material/add_material"), fake.count("/cgi-bin/media/uploadimg"))
        assert uploads == (2, 1)  # materials never uploaded again
        assert (fake.count("/cgi-bin/draft/add"), fake.count("/cgi-bin/freepublish/submit")) == (2, 2)
        calls = len(fake.calls)
        assert repeat(at(0)).remote_id == newest["article_id"]  # the same occurrence: nothing new
        assert len(fake.live_articles()) == 2 and fake.count("/cgi-bin/draft/add") == 2
        assert not [c for c in fake.calls[calls:] if "add" in c or "submit" in c]
        st = ch.status(Job(release=wxtest.make_release(tmp_path), journal=journal))
        assert (st.state, st.remote_id) == ("live", newest["article_id"])

        # the daily limit (45009) defers the next occurrence; the previous article stays live
        fake.quota["/cgi-bin/draft/add"] = 0
        with pytest.raises(RateLimited, match="45009"):
            repeat(at(24))
        assert journal.get("article")["id"] == newest["article_id"] and len(fake.live_articles()) == 2
        st = ch.status(Job(release=wxtest.make_release(tmp_path), journal=journal))
        assert (st.state, st.remote_id) == ("live", newest["article_id"])
        del fake.quota["/cgi-bin/draft/add"]
        assert repeat(at(24)).state == "live" and len(fake.live_articles()) == 3
        assert fake.count("/cgi-bin/material/add_material") == 2
        assert len(journal.get("earlier_articles")) == 2
        # withdraw takes every posted copy down
        assert ch.withdraw(wxtest.job(tmp_path, wx_media, journal)).state == "withdrawn"
        assert fake.live_articles() == []


# --- signage ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sign_media(tmp_path_factory: pytest.TempPathFactory) -> Rendition:
    return signtest.make_signage(tmp_path_factory.mktemp("signage-media"))


def test_signage_window_per_occurrence_on_every_site(tmp_path: Path, sign_media: Rendition) -> None:
    ch, journal = signtest.channel(tmp_path), Journal()
    rel, share = signtest.release(tmp_path), tmp_path / "share"
    now = signtest.NOW  # 2026-12-01 02:00 UTC (10:00 in Hong Kong)
    ch.publish(signtest.job(rel, sign_media, journal, now=now))
    window = {"start": at(1), "end": at(10)}  # 09:00-18:00 Hong Kong time

    def repeat(occurrence: str, when: datetime, win: dict[str, str] | None) -> Any:
        return ch.publish(signtest.job(rel, sign_media, journal, now=when,
                                       repeat=occurrence, window=win))

    assert repeat(at(1), now, window).state == "live"
    for site in ("immd-hq", "lok-ma-chau"):
        [item] = signtest.playlist(share, site)["items"]
        assert (item["start"], item["end"]) == (at(1), at(10))
        assert signtest.sums(share, site) == {f"{RID}.mp4": sign_media.main_sha256}
    lists = [(share / s / "playlist.json").read_bytes() for s in ("immd-hq", "lok-ma-chau")]
    repeat(at(1), now + timedelta(minutes=5), window)  # the same occurrence again: nothing changes
    repeat(at(1), now, {"start": at(2), "end": at(3)})
    assert [(share / s / "playlist.json").read_bytes() for s in ("immd-hq", "lok-ma-chau")] == lists
    # after the window the item and its file go; the next day's window brings both back
    assert sorted(ch.prune(datetime.fromisoformat(at(11)))) == [f"{s}/{RID}.mp4"
                                                                 for s in ("immd-hq", "lok-ma-chau")]
    assert not (share / "immd-hq" / f"{RID}.mp4").exists()
    later = ch.publish(signtest.job(rel, sign_media, journal, now=datetime.fromisoformat(at(12))))
    assert later.state == "live" and "next repeat" in later.note  # a plain publish does not re-show it
    assert signtest.playlist(share, "immd-hq")["items"] == []
    between = ch.status(signtest.job(rel, sign_media, journal, now=datetime.fromisoformat(at(12))))
    assert (between.state, between.detail, between.drift) == ("live", "between repeat windows", [])
    repeat(at(25), datetime.fromisoformat(at(25)), {"start": at(25), "end": at(34)})
    for site in ("immd-hq", "lok-ma-chau"):
        [item] = signtest.playlist(share, site)["items"]
        assert (item["start"], item["end"]) == (at(25), at(34))
        assert signtest.sha(share / site / f"{RID}.mp4") == sign_media.main_sha256


def test_signage_without_window_comes_back_for_as_long_as_before(tmp_path: Path,
                                                                 sign_media: Rendition) -> None:
    ch, journal = signtest.channel(tmp_path, sites=["immd-hq"]), Journal()
    rel = signtest.release(tmp_path, signage=SignageSpec(start=datetime.fromisoformat(at(0)),
                                                         end=datetime.fromisoformat(at(2))))
    share = tmp_path / "share"
    ch.publish(signtest.job(rel, sign_media, journal, now=datetime.fromisoformat(at(0))))
    still = ch.publish(signtest.job(rel, sign_media, journal, now=datetime.fromisoformat(at(1)),
                                    repeat=at(1), window=None))
    assert still.state == "live"
    [item] = signtest.playlist(share, "immd-hq")["items"]
    assert (item["start"], item["end"]) == (at(0), at(2))  # not ended: nothing to do
    ch.prune(datetime.fromisoformat(at(3)))
    assert signtest.playlist(share, "immd-hq")["items"] == []
    ch.publish(signtest.job(rel, sign_media, journal, now=datetime.fromisoformat(at(24)),
                            repeat=at(24), window=None))
    [item] = signtest.playlist(share, "immd-hq")["items"]
    assert (item["start"], item["end"]) == (at(24), at(26))  # two hours again, from the occurrence
    m3u = (share / "immd-hq" / "playlist.m3u8").read_text()
    assert f"{RID}.mp4" in m3u


# --- the service: repeat run → processing → polled to live ------------------------------------------
def test_processing_publications_are_polled_to_live(project: Callable[[], Project], cli: Any,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_wechat(tmp_path / "wx") as server:
        fake = server.fake
        monkeypatch.setenv(wxtest.SECRET_ENV, fake.secret)
        proj = project()
        proj.add_channel("wechat", {"kind": "wechat", "appid": fake.appid, "secret_env": wxtest.SECRET_ENV,
                                    "api_root": server.url, "ca_bundle": str(server.ca_bundle),
                                    "author": "入境事务处", "poll_interval": 0.05, "publish_wait": 2,
                                    "auto_publish": False})
        proj.manifest["repeat"] = [{"channels": ["wechat"], "cron": "0 9 1 * *"}]
        proj.write()
        rid = proj.manifest["id"]
        assert cli(proj, "release", proj.manifest_path).exit_code == 0
        store = Store(sqlite_url(proj.state_dir))

        def state() -> str:
            pub = store.get_publication(rid, "wechat")
            assert pub is not None
            return pub.state

        def editor_publishes() -> None:
            [draft_id] = list(fake.drafts)
            fake.api_freepublish_submit({"media_id": draft_id})
            fake.advance(1)

        svc = Service(load_config(proj.config_path), store, proj.state_dir, poll=0.2, processing_poll=0.2)
        svc.start()
        try:
            assert state() == "processing"
            time.sleep(0.5)
            assert state() == "processing"  # the draft still waits for an editor
            editor_publishes()
            # the state is recorded before its event: wait for both
            assert wait_for(lambda: state() == "live" and any(
                e.action == "live" and "now live" in e.message for e in store.events(rid)), 15)
            [first] = fake.live_articles()
            pub = store.get_publication(rid, "wechat")
            assert pub is not None and pub.url == first["url"]
            # a repeat run makes a new draft for the editor: processing, then live again
            engine = Engine(load_config(proj.config_path), store, proj.state_dir)
            message = verbs.repeat(engine, rid, 0)
            assert "wechat re-publishing (draft awaiting an editor)" in message
            assert state() == "processing" and len(fake.drafts) == 1
            editor_publishes()
            assert wait_for(lambda: state() == "live", 5)
        finally:
            svc.stop()
        assert len(fake.live_articles()) == 2
        pub = store.get_publication(rid, "wechat")
        assert pub is not None and pub.remote_id != first["article_id"]
        assert pub.journal["earlier_articles"] == [first["article_id"]]


