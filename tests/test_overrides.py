"""A release manifest's ``overrides:`` reach no further than presentation.

Each kind declares its own override schema; anything else (a target, an address, a CA bundle, a
credential, a ``*_env``) is refused at ``check`` and ``release`` with exit 2 naming the key, its
line and what that kind accepts, before anything is written or sent. The three attacks that once
worked (a website's ``target``, WeChat's ``api_root``/``ca_bundle``, a WebDAV ``password_env``)
are replayed against real targets and loopback servers that record every request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from publisher.engine import release as release_verbs
from publisher.engine import verbs
from publisher.engine.engine import Engine
from publisher.inputs.checks import prepare
from publisher.inputs.config import load_config
from publisher.inputs.manifest import load_release
from publisher.inputs.rules import repeat_trigger
from publisher.store import Store, sqlite_url
from tests import test_wechat as wxtest
from tests.conftest import Project
from tests.fakes.wechat_server import serve_wechat
from tests.fakes.youtube_server import YouTubeFake
from tests.faultproxy import FaultProxy
from tests.renditions import FixedClock

WEB = {"kind": "website", "public_url": "https://www.example.gov.hk/videos/"}


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its sha256, and every folder (as "dir")."""
    return {p.relative_to(folder).as_posix(): "dir" if p.is_dir() else
            hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))}


def refused(cli: Any, proj: Project, key: str) -> list[str]:
    """Run check and release; both must be exit 2 naming ``key`` with the manifest's file and line."""
    outputs = []
    for verb in ("check", "release"):
        result = cli(proj, verb, proj.manifest_path)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert re.search(rf"release\.yaml:\d+: {re.escape(key)}: ", result.output), result.output
        outputs.append(result.output)
    return outputs


def no_publications(proj: Project) -> bool:
    db = proj.state_dir / "state.db"
    return not db.exists() or Store(sqlite_url(proj.state_dir)).publications() == []


# --- refused keys -------------------------------------------------------------------------------
CHANNELS: dict[str, dict[str, Any]] = {
    "website": {**WEB, "target": "www"},
    "app-feed": {"kind": "app-feed", "target": "feed", "public_url": "https://app.example.gov.hk/f/"},
    "youtube": {"kind": "youtube", "credentials": "secrets/yt.json"},
    "wechat": {"kind": "wechat", "appid": "wx0123456789abcdef", "secret_env": "PUBLISHER_TEST_WX"},
    "signage": {"kind": "signage", "target": "screens", "sites": ["hall"]},
}
ACCEPTS = {"website": "accept no overrides", "app-feed": "accept no overrides",
           "youtube": "accept only these overrides: privacy, playlist, category_id, made_for_kids",
           "wechat": "accept only these overrides: title, author, digest",
           "signage": "accept only these overrides: window"}
REFUSED = [("website", "target", "/tmp/elsewhere"), ("website", "staging", "/tmp/x"),
           ("website", "public_url", "https://evil.example/"), ("website", "dir_mode", "0777"),
           ("app-feed", "password_env", "HOME"), ("app-feed", "fcm", {"credentials": "x", "topic": "y"}),
           ("youtube", "api_root", "https://evil.example/"), ("youtube", "ca_bundle", "ca.pem"),
           ("youtube", "credentials", "other.json"), ("youtube", "quota_pool", "x"),
           ("youtube", "timeout", "1"), ("wechat", "secret_env", "HOME"), ("wechat", "appid", "wx1"),
           ("wechat", "api_root", "https://evil.example/"), ("wechat", "link_from", ["evil"]),
           ("signage", "target", "/tmp/x"), ("signage", "key_file", "id_rsa"),
           ("signage", "sites", ["other"]), ("signage", "encoding", {"signage": {"crf": 51}})]


@pytest.mark.parametrize(("kind", "key", "value"), REFUSED, ids=[f"{k}-{o}" for k, o, _ in REFUSED])
def test_keys_outside_a_kinds_override_schema_are_refused(project: Callable[[], Project], cli: Any,
                                                          kind: str, key: str, value: Any) -> None:
    proj = project()
    proj.add_channel("ch", CHANNELS[kind])
    proj.manifest["overrides"] = {"ch": {key: value}}
    proj.write()
    for output in refused(cli, proj, f"overrides.ch.{key}"):
        assert f"cannot change '{key}' for ch ({kind})" in output
        assert ACCEPTS[kind] in output and "site config" in output
    assert no_publications(proj)
    assert not any((proj.root / name).exists() for name in ("www", "feed", "screens"))


BAD_VALUES = [("youtube", "privacy", "secret", "public"), ("youtube", "category_id", "music", "number"),
              ("youtube", "made_for_kids", "maybe", "bool"), ("youtube", "playlist", "../x", "playlist id"),
              ("wechat", "title", " ", "title is empty"),
              ("wechat", "author", "入境\x1b[31m事务处", "U+001B"),
              ("signage", "window", "25:00-26:00", "daily window"),
              ("signage", "window", "09:00-09:00", "same time"),
              ("signage", "window", "9-17", "daily window")]


@pytest.mark.parametrize(("kind", "key", "value", "words"), BAD_VALUES,
                         ids=[f"{k}-{o}-{v}" for k, o, v, _ in BAD_VALUES])
def test_bad_override_values_are_refused(project: Callable[[], Project], cli: Any,
                                         kind: str, key: str, value: str, words: str) -> None:
    proj = project()
    proj.add_channel("ch", CHANNELS[kind])
    proj.manifest["overrides"] = {"ch": {key: value}}
    proj.write()
    for output in refused(cli, proj, f"overrides.ch.{key}"):
        assert words in output
    assert no_publications(proj)


def test_override_for_a_channel_not_in_the_config(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    proj.add_channel("web", {**WEB, "target": "www"})
    proj.manifest["overrides"] = {"webb": {"privacy": "unlisted"}}
    proj.write()
    for output in refused(cli, proj, "overrides.webb"):
        assert "not in the site config" in output and "use one of: web" in output


# --- the three attacks ----------------------------------------------------------------------------
def test_website_target_override_writes_and_deletes_nothing_elsewhere(
        project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    proj.add_channel("web", {**WEB, "target": "www"})
    other = proj.root / "other-site"
    (other / "old-release").mkdir(parents=True)
    (other / "index.html").write_text("<p>someone else's site</p>", encoding="utf-8")
    (other / "old-release" / "video.mp4").write_bytes(b"their video")
    before = tree(other)
    proj.manifest["overrides"] = {"web": {"target": str(other), "staging": str(other / "old-release")}}
    proj.write()
    refused(cli, proj, "overrides.web.target")
    assert tree(other) == before
    assert not (proj.root / "www").exists()
    assert no_publications(proj)


def test_wechat_api_root_and_ca_override_send_nothing_anywhere(
        project: Callable[[], Project], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_wechat(tmp_path / "wx") as real, serve_wechat(tmp_path / "attacker") as attacker:
        monkeypatch.setenv(wxtest.SECRET_ENV, real.fake.secret)
        proj = project()
        proj.add_channel("wechat", {"kind": "wechat", "appid": real.fake.appid,
                                    "secret_env": wxtest.SECRET_ENV, "api_root": real.url,
                                    "ca_bundle": str(real.ca_bundle), "poll_interval": 0.05,
                                    "publish_wait": 2})
        # the article's texts are what a manifest may change, and they are sent
        proj.manifest["overrides"] = {"wechat": {"title": "领事保护（短）", "author": "领事处",
                                                 "digest": "出行注意安全"}}
        proj.write()
        assert cli(proj, "release", proj.manifest_path).exit_code == 0
        [article] = real.fake.live_articles()
        sent_texts = (article["title"], article["author"], article["digest"])
        assert sent_texts == ("领事保护（短）", "领事处", "出行注意安全")
        token_cache = sorted((proj.state_dir / "channels" / "wechat").rglob("*"))
        assert token_cache, "the access token is cached in the channel's folder"
        sent = len(real.fake.calls)
        # the attack: the same release, pointed at another host with that host's CA
        proj.manifest["id"] = "consular-protection-2026-b"
        proj.manifest["overrides"] = {"wechat": {"api_root": attacker.url,
                                                 "ca_bundle": str(attacker.ca_bundle)}}
        proj.write()
        outputs = refused(cli, proj, "overrides.wechat.api_root")
        assert all("overrides.wechat.ca_bundle" in o for o in outputs)
        assert attacker.fake.calls == [] and attacker.fake.tokens == {}
        assert len(real.fake.calls) == sent
        assert real.fake.secret not in "".join(outputs)


def test_webdav_password_env_override_sends_no_other_secret(
        project: Callable[[], Project], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.servers.webdav import webdav_server

    with webdav_server(tmp_path / "dav") as dav, FaultProxy(dav.port) as proxy:
        monkeypatch.setenv("PUBLISHER_TEST_DAV_PASSWORD", dav.password)
        monkeypatch.setenv("PUBLISHER_TEST_OTHER_SECRET", "other-Secret-0815")
        proj = project()
        proj.add_channel("web", {**WEB, "target": f"webdav://{proxy.url}/site", "username": dav.user,
                                 "password_env": "PUBLISHER_TEST_DAV_PASSWORD"})
        proj.write()
        assert cli(proj, "release", proj.manifest_path).exit_code == 0
        connections = proxy.stats["connections"]
        assert connections > 0  # the proxy sees what is sent to the server
        proj.manifest["id"] = "consular-protection-2026-b"
        proj.manifest["overrides"] = {"web": {"password_env": "PUBLISHER_TEST_OTHER_SECRET"}}
        proj.write()
        outputs = refused(cli, proj, "overrides.web.password_env")
        assert proxy.stats["connections"] == connections
        assert "other-Secret-0815" not in "".join(outputs)
        assert not (tmp_path / "dav" / "site" / "consular-protection-2026-b").exists()


# --- what a manifest may change, and that it is what is sent ----------------------------------------
def test_youtube_presentation_overrides_reach_youtube_and_options_stay(
        project: Callable[[], Project], cli: Any, tmp_path: Path) -> None:
    with YouTubeFake(tmp_path / "fake") as fake:
        proj = project()
        fake.write_credentials(proj.root / "secrets" / "yt.json")
        proj.add_channel("yt", {"kind": "youtube", "credentials": "secrets/yt.json", "api_root": fake.url,
                                "ca_bundle": str(fake.certfile), "chunk_mib": 0.25, "timeout": 10})
        proj.manifest["overrides"] = {"yt": {"privacy": "unlisted", "playlist": "PLpublisher",
                                             "category_id": "27", "made_for_kids": "true"}}
        proj.write()
        result = cli(proj, "release", proj.manifest_path)
        assert result.exit_code == 0, result.output
        [vid] = fake.live_videos()
        video = fake.model.videos[vid]
        assert video.status["privacyStatus"] == "unlisted"
        assert video.status["selfDeclaredMadeForKids"] is True and video.status["madeForKids"] is True
        assert video.snippet["categoryId"] == "27"
        assert [i["snippet"]["resourceId"]["videoId"] for i in fake.model.playlists["PLpublisher"]] == [vid]
        config = load_config(proj.config_path)
        stored = Store(sqlite_url(proj.state_dir)).get_release(proj.manifest["id"])
        assert stored is not None and stored.overrides == {"yt": {
            "privacy": "unlisted", "playlist": "PLpublisher", "category_id": "27", "made_for_kids": True}}
        prep = prepare(config, proj.manifest_path, proj.state_dir)
        adapter = prep.channels["yt"]
        assert adapter.options == config.options["yt"]  # the config owner's options, untouched
        options = adapter.options.model_dump()
        assert {k: options[k] for k in ("privacy", "category_id", "playlist", "made_for_kids")} == {
            "privacy": "public", "category_id": "25", "playlist": None, "made_for_kids": False}


def test_long_wechat_title_suggests_an_override_that_works(
        project: Callable[[], Project], cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHER_TEST_WX", "not-used-offline")
    proj = project()
    proj.add_channel("consular-wechat", {**CHANNELS["wechat"], "language": "zh-Hans"})
    proj.manifest["title"]["zh-Hans"] = "领事保护" * 9  # 36 characters; WeChat allows 32
    proj.write()
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 2 and "title.zh-Hans" in result.output
    fix = re.search(r"overrides: (\{.*\}\})", result.output)
    assert fix is not None, result.output
    suggested = yaml.safe_load(fix.group(1).replace("...", "领事保护"))
    proj.manifest["overrides"] = suggested
    proj.write()
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 0, result.output
    # and an override that is itself too long is held to the same limit
    proj.manifest["overrides"] = {"consular-wechat": {"title": "领" * 33, "digest": "摘" * 129}}
    proj.write()
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 2
    assert "overrides.consular-wechat.title: WeChat allows at most 32" in result.output
    assert "overrides.consular-wechat.digest: WeChat allows at most 128" in result.output


def test_signage_window_lists_the_item_only_in_its_daily_window(project: Callable[[], Project]) -> None:
    proj = project()
    proj.add_channel("screens", {"kind": "signage", "target": "screens", "sites": ["hall"], "language": "en"})
    proj.manifest["overrides"] = {"screens": {"window": "09:00-18:00"}}
    proj.settings["timezone"] = "Asia/Hong_Kong"  # the manifest gives no zone: the config's applies
    proj.write()
    config = load_config(proj.config_path)
    release = load_release(proj.manifest_path, channels={"screens": "signage"},
                           zone=config.settings.timezone)
    [rule] = release.repeat
    assert (rule.channels, rule.cron, rule.window, rule.timezone) == (
        ["screens"], "0 9 * * *", "09:00-18:00", "Asia/Hong_Kong")
    after = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)  # 19:00 in Hong Kong: today's window is over
    assert repeat_trigger(rule).get_next_fire_time(None, after) == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)

    clock = [after]
    store = Store(sqlite_url(proj.state_dir))
    engine = Engine(config, store, proj.state_dir, clock=FixedClock(lambda: clock[0]))
    result = release_verbs.release(engine, proj.manifest_path)
    assert [r.state for r in result.results] == ["live"], result.results
    playlist = proj.root / "screens" / "hall" / "playlist.json"

    def shown() -> tuple[str, str]:
        [item] = json.loads(playlist.read_text(encoding="utf-8"))["items"]
        return item["start"], item["end"]

    assert shown() == ("2026-12-02T01:00:00+00:00", "2026-12-02T10:00:00+00:00")  # tomorrow 09:00-18:00
    # the service's daily run at the window's start moves it to that day's window
    clock[0] = datetime(2026, 12, 3, 1, 0, 30, tzinfo=UTC)
    message = verbs.repeat(engine, proj.manifest["id"], 0)
    assert "screens re-published" in message, message
    assert shown() == ("2026-12-03T01:00:00+00:00", "2026-12-03T10:00:00+00:00")
    # outside the window the service's run is skipped
    clock[0] = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert "outside the window" in verbs.repeat(engine, proj.manifest["id"], 0)
