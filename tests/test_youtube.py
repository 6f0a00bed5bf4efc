"""youtube channel through the real google-api-python-client against the loopback fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channels.youtube.adapter import YouTube
from channels.youtube.options import QuotaOptions
from channels.youtube.quota import Ledger
from publisher.contract import Job, Journal, channel_class
from publisher.errors import AuthError, InputError
from tests.fakes import youtube_run as run
from tests.fakes.youtube_server import YouTubeFake
from tests.renditions import make_job


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[YouTubeFake]:
    with YouTubeFake(tmp_path / "fake") as f:
        yield f


@pytest.fixture
def media(tmp_path: Path, master_file: Path) -> Path:
    folder = tmp_path / "rel"
    run.prepare(folder, master_file)
    return folder


def options(fake: YouTubeFake, folder: Path, **extra: Any) -> dict[str, Any]:
    fake.write_credentials(folder / "secrets" / "yt.json")
    return {"credentials": "secrets/yt.json", "api_root": fake.url, "ca_bundle": str(fake.certfile),
            "chunk_mib": 0.25, "timeout": 5, "playlist": "PLpublisher", **extra}


def job(folder: Path, **kw: Any) -> Job:
    rel = run.release(folder, **kw.pop("changes", {}))
    return make_job(release=rel, journal=kw.pop("journal", None) or Journal(),
                    renditions=run.renditions(folder), **kw)


def assert_complete(fake: YouTubeFake, folder: Path, vid: str) -> None:
    assert fake.live_videos() == [vid]
    assert fake.model.video_bytes(vid) == (folder / "yt" / "master.mp4").read_bytes()
    v = fake.model.videos[vid]
    langs = sorted(c["snippet"]["language"] for c in v.captions.values())
    assert langs == ["en", "zh-Hans", "zh-Hant"]
    by_lang = {c["snippet"]["language"]: v.caption_bytes[cid] for cid, c in v.captions.items()}
    assert by_lang["zh-Hant"] == (folder / "subs" / "zh-Hant.vtt").read_bytes()
    assert v.thumbnail == (folder / "poster" / "poster.jpg").read_bytes()
    items = [i for i in fake.model.playlists["PLpublisher"] if i["contentDetails"]["videoId"] == vid]
    assert len(items) == 1


def test_registered_and_plan(tmp_path: Path, fake: YouTubeFake, media: Path) -> None:
    assert channel_class("youtube") is YouTube
    ch = run.channel(media, options(fake, media))
    plan = ch.plan(run.release(media))
    assert plan.quota["captions.insert"] == 1200
    assert plan.quota["thumbnails.set"] == 50 and plan.quota["playlistItems.insert"] == 50
    assert plan.quota["videos.insert (upload bucket)"] == 1
    assert [r.profile for r in ch.renditions(run.release(media))] == ["youtube", "captions", "poster"]


def test_clean_release(fake: YouTubeFake, media: Path) -> None:
    ch = run.channel(media, options(fake, media))
    j = job(media)
    outcome = ch.publish(j)
    vid = outcome.remote_id
    assert outcome.state == "live"
    assert outcome.url == f"https://www.youtube.com/watch?v={vid}"
    assert outcome.checksum == run.sha(media / "yt" / "master.mp4")
    assert_complete(fake, media, vid)
    v = fake.model.videos[vid]
    assert v.snippet["title"] == "Consular Protection"
    assert v.snippet["defaultLanguage"] == "en" and v.snippet["categoryId"] == "25"
    assert v.localizations == {
        "zh-Hant": {"title": "領事保護", "description": "領事保護動畫短片。"},
        "zh-Hans": {"title": "领事保护", "description": "领事保护动画短片。"}}
    assert v.status["privacyStatus"] == "public"
    # every non-final chunk was a 256 KiB multiple (the fake refuses others) and nothing was retried
    assert fake.calls("videos.insert") == 1 and fake.calls("chunk") == 4
    # publishing again is a no-op: no upload, no caption, no thumbnail
    before = list(fake.model.log)
    again = ch.publish(j)
    assert again.remote_id == vid and again.state == "live"
    new = [c for c, _ in fake.model.log[len(before):]]
    assert new == ["videos.list"]
    assert fake.model.uploads[0] == 1
    # the quota pool counted what was spent: 3 captions, thumbnail, playlist, 2 lists
    ledger = run.quota(media, "immd-youtube")
    assert ledger["uploads"] == 1 and ledger["units"] == 1200 + 50 + 50 + 2


def test_embargo_schedules_with_publish_at(fake: YouTubeFake, media: Path) -> None:
    ch = run.channel(media, options(fake, media))
    at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    j = job(media, changes={"publish_at": at}, stage_only=True)
    outcome = ch.publish(j)
    assert outcome.state == "scheduled"
    v = fake.model.videos[outcome.remote_id]
    assert v.status["privacyStatus"] == "private"
    assert v.status["publishAt"].startswith(at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert ch.status(j).state == "scheduled"
    fake.model.clock_offset = 4 * 86400  # YouTube flips it itself at publishAt
    st = ch.status(job(media, changes={"publish_at": at}, journal=j.journal))
    assert st.state == "live" and st.remote_id == outcome.remote_id


def test_past_publish_at_refused_before_upload(fake: YouTubeFake, media: Path) -> None:
    ch = run.channel(media, options(fake, media))
    past = datetime.now(UTC) - timedelta(minutes=5)
    with pytest.raises(InputError, match="publish_at"):
        ch.publish(job(media, changes={"publish_at": past}, stage_only=True))
    assert fake.model.log == []


def test_cancelled_embargo_stays_private(fake: YouTubeFake, media: Path) -> None:
    """`publisher cancel` on a scheduled video: withdraw(keep_private) drops publishAt."""
    ch = run.channel(media, options(fake, media))
    at = datetime.now(UTC) + timedelta(days=3)
    j = job(media, changes={"publish_at": at}, stage_only=True)
    vid = ch.publish(j).remote_id
    out = ch.withdraw(job(media, changes={"publish_at": at}, journal=j.journal,
                          keep_private=True))
    assert out.state == "withdrawn"
    fake.model.clock_offset = 4 * 86400
    assert fake.model.resource(fake.model.videos[vid], ["status"])["status"]["privacyStatus"] == "private"
    assert fake.live_videos() == [vid]


def test_secret_file_must_be_0600(fake: YouTubeFake, media: Path) -> None:
    opts = options(fake, media)
    (media / "secrets" / "yt.json").chmod(0o644)
    ch = run.channel(media, opts)
    assert [p.field for p in ch.credential_problems()] == ["channels.immd-youtube.credentials"]
    with pytest.raises(InputError, match="chmod 600"):
        ch.publish(job(media))
    assert fake.model.log == []
    (media / "secrets" / "yt.json").unlink()
    assert "publisher auth immd-youtube" in str(ch.credential_problems()[0])


def test_invalid_grant_says_publisher_auth(fake: YouTubeFake, media: Path) -> None:
    ch = run.channel(media, options(fake, media))
    fake.model.revoke_refresh_tokens()
    with pytest.raises(AuthError) as err:
        ch.publish(job(media))
    assert "publisher auth immd-youtube" in str(err.value)
    secret = fake.model.client_secret
    assert secret not in str(err.value)
    assert fake.calls("videos.insert") == 0
    # the refused refresh reached no API method: today's quota is untouched
    ledger = Ledger(run.store(media).accounts, QuotaOptions(), "immd-youtube")
    assert ledger.used(datetime.now(UTC)) == {"units": 0, "uploads": 0}


def test_processing_then_live(fake: YouTubeFake, media: Path) -> None:
    fake.model.instant_processing = False
    ch = run.channel(media, options(fake, media))
    j = job(media)
    out = ch.publish(j)
    assert out.state == "processing"
    assert ch.status(j).state == "processing"
    fake.model.finish_processing()
    st = ch.status(j)
    assert st.state == "live" and "processed, public" in st.detail
