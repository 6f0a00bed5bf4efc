"""YouTube's metadata rules refused before any upload; update, withdraw and status afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from publisher.contract import Job
from publisher.errors import InputError, Rejected
from publisher.models import Publication
from tests.fakes import youtube_run as run
from tests.fakes.youtube_server import YouTubeFake
from tests.renditions import make_job
from tests.test_youtube import assert_complete, fake, job, media, options  # noqa: F401 - fixtures

LONG_ZH = "領" * 1667  # 5001 bytes in UTF-8, only 1667 characters


TITLES = {"en": "Consular Protection", "zh-Hant": "領事保護", "zh-Hans": "领事保护"}
DESCS = {"en": "x", "zh-Hant": "y", "zh-Hans": "z"}
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("title too long", {"title": dict(TITLES, en="T" * 101)}, "title.en", "101 characters"),
    ("localized title too long", {"title": dict(TITLES, **{"zh-Hant": "領" * 101})}, "title.zh-Hant",
     "allows 100"),
    ("angle bracket in title", {"title": dict(TITLES, en="A <b>bold</b> title")}, "title.en", "'<'"),
    ("description over 5000 bytes", {"description": dict(DESCS, **{"zh-Hans": LONG_ZH})},
     "description.zh-Hans", "5001 bytes"),
    ("angle bracket in description", {"description": dict(DESCS, en="see <here>")}, "description.en",
     "'<'"),
    ("tags over 500", {"tags": ["travel safety"] * 34}, "tags", "allows 500"),
    ("empty title", {"title": dict(TITLES, en=" ")}, "title.en", "empty"),
    ("schedule needs public", {"publish_at": datetime.now(UTC) + timedelta(days=1),
                               "privacy": "unlisted"}, "publish_at", "only public"),
]


@pytest.mark.parametrize(("label", "changes", "field", "text"), CASES, ids=[c[0] for c in CASES])
def test_metadata_rule_refused_before_upload(fake: YouTubeFake, media: Path, label: str,
                                             changes: dict[str, Any], field: str, text: str) -> None:
    changes = dict(changes)
    ch = run.channel(media, options(fake, media, privacy=changes.pop("privacy", "public")))
    rel = run.release(media, **changes)
    problems = ch.validate(rel)
    assert [p.field for p in problems] == [field], problems
    assert text in problems[0].message and problems[0].fix
    assert problems[0].file == str(media / "release.yaml")
    with pytest.raises(InputError) as err:
        ch.publish(make_job(release=rel, renditions=run.renditions(media),
                            stage_only="publish_at" in changes))
    assert field in str(err.value)
    assert fake.model.log == []  # nothing was sent, not even a token request


def test_tag_counting_follows_youtube(fake: YouTubeFake, media: Path) -> None:
    ch = run.channel(media, options(fake, media))
    # 25 tags "Foo Baz" count 9 each + 24 commas = 249; 50 of them = 499: allowed
    assert ch.validate(run.release(media, tags=["Foo Baz"] * 50)) == []
    assert [p.field for p in ch.validate(run.release(media, tags=["Foo Baz"] * 50 + ["x"]))] == ["tags"]


def test_the_fake_enforces_the_same_rules(fake: YouTubeFake, media: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Were a rule to slip past validate, YouTube's own 400 comes back as a rejection."""
    ch = run.channel(media, options(fake, media))
    monkeypatch.setattr(ch, "validate", lambda release: [])
    with pytest.raises(Rejected, match="invalidTitle"):
        ch.publish(job(media, changes={"title": dict(TITLES, en="T" * 101)}))
    assert fake.calls("chunk") == 0 and fake.live_videos() == []


def test_options_are_checked(fake: YouTubeFake, media: Path) -> None:
    for bad in ({"chunk_mib": 0.3}, {"api_root": "https://x.example/youtube/v3/"},
                {"category_id": "music"}, {"quota": {"costs": {"videos.upload": 3}}}):
        with pytest.raises(ValueError):
            run.channel(media, dict(options(fake, media), **bad))


def test_update_withdraw_and_status(fake: YouTubeFake, media: Path) -> None:
    ch = run.channel(media, options(fake, media))
    j = job(media)
    out = ch.publish(j)
    vid = out.remote_id
    pub = Publication(release="consular-protection-2026", channel="immd-youtube", kind="youtube",
                      state="live", remote_id=vid, url=out.url, checksum=out.checksum,
                      journal=j.journal.data())
    assert ch.status(Job(release=j.release, journal=j.journal, publication=pub)).drift == []
    # someone edits the title on YouTube: status reports the drift
    fake.model.videos[vid].snippet["title"] = "Edited"
    st = ch.status(Job(release=j.release, journal=j.journal, publication=pub))
    assert st.state == "live" and any("Edited" in d for d in st.drift)
    # update: new title in every language and a corrected English caption
    (media / "subs" / "en.vtt").write_text(run.VTT["en"].replace("safely", "safe"), encoding="utf-8")
    new_titles = {"en": "Consular Protection 2026", "zh-Hant": "領事保護 2026", "zh-Hans": "领事保护 2026"}
    upd = Job(release=run.release(media, title=new_titles), journal=j.journal,
              renditions=run.renditions(media), publication=pub)
    before = fake.calls("captions.insert")
    assert ch.update(upd).state == "live"
    v = fake.model.videos[vid]
    assert v.snippet["title"] == "Consular Protection 2026"
    assert v.localizations["zh-Hant"]["title"] == "領事保護 2026"
    assert fake.calls("captions.insert") == before + 1 and fake.calls("captions.delete") == 1
    en = [v.caption_bytes[c] for c, r in v.captions.items() if r["snippet"]["language"] == "en"]
    assert en == [(media / "subs" / "en.vtt").read_bytes()]
    assert fake.calls("thumbnails.set") == 1  # unchanged poster is not sent again
    assert fake.live_videos() == [vid] and fake.calls("videos.insert") == 1
    # withdraw, keeping it private
    wd = ch.withdraw(make_job(release=j.release, journal=j.journal, publication=pub,
                         keep_private=True))
    assert wd.state == "withdrawn" and fake.model.videos[vid].status["privacyStatus"] == "private"
    gone = pub.model_copy(update={"state": "withdrawn"})
    assert ch.status(Job(release=upd.release, journal=j.journal, publication=gone)).state == "withdrawn"
    # withdraw for good, twice: the second finds nothing and is not an error
    assert ch.withdraw(Job(release=j.release, publication=pub)).state == "withdrawn"
    assert fake.live_videos() == []
    assert ch.withdraw(Job(release=j.release, publication=pub)).note == "already gone from YouTube"
    st = ch.status(Job(release=j.release, publication=pub))
    assert st.state == "withdrawn" and st.drift  # recorded live, but gone


def test_journal_is_enough_to_resume_in_a_new_process(fake: YouTubeFake, media: Path) -> None:
    """A fresh adapter (new process) with the stored journal finishes without re-uploading."""
    fake.faults.status = {3: 503}
    opts = options(fake, media)
    j = job(media)
    with pytest.raises(Exception, match="Backend Error"):
        run.channel(media, opts).publish(j)
    stored = j.journal.data()
    assert set(stored) == {"upload"} and stored["upload"]["uri"].startswith(fake.url)
    out = run.channel(media, opts).publish(job(media, journal=type(j.journal)(stored)))
    assert_complete(fake, media, out.remote_id)
