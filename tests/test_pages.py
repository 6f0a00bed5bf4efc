"""The website's pages as a reader sees them: dates in the site config's zone, in each language's
form, and the site index in every language with a switcher between them.

The adapter is built from a real site config (``load_config`` then ``SiteConfig.channel``), as
the engine builds it, and publishes real renditions to a folder.
"""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels.website.adapter import Website
from publisher.contract import Journal
from publisher.inputs.config import load_config
from publisher.models import Rendition
from tests.renditions import job, make_release, session_renditions

RID = "consular-protection-2026"
#: 07:00 in Hong Kong is 23:00 UTC the day before
AT = datetime.fromisoformat("2026-12-04T07:00:00+08:00")


@pytest.fixture(scope="module")
def renditions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendition]:
    return session_renditions(tmp_path_factory)


def site(tmp: Path, zone: str, extra: str = "") -> Website:
    www = tmp / "www"
    www.mkdir(exist_ok=True)
    (tmp / "publisher.yaml").write_text(
        f"timezone: {zone}\nchannels:\n  web:\n    kind: website\n    target: www\n"
        f"    public_url: https://videos.example.gov.hk/\n{extra}", encoding="utf-8")
    channel = load_config(tmp / "publisher.yaml").channel("web", tmp / "state")
    assert isinstance(channel, Website)
    return channel


def time_element(page: Path) -> tuple[str, str]:
    m = re.search(r'<time datetime="([^"]+)">([^<]+)</time>', page.read_text(encoding="utf-8"))
    assert m, f"no date on {page.name}"
    return m.group(1), m.group(2)


def html_lang(page: Path) -> str:
    m = re.search(r'<html lang="([^"]+)">', page.read_text(encoding="utf-8"))
    assert m
    return m.group(1)


def publish(channel: Website, tmp: Path, renditions: dict[str, Rendition], **release: Any) -> None:
    after = lambda: datetime(2026, 12, 4, 0, 0, tzinfo=UTC)  # noqa: E731 - the clock just after AT
    out = channel.publish(job(make_release(tmp, **release), renditions, Journal(), now=after))
    assert out.state == "live"


def test_dates_show_in_the_config_zone_in_each_language(tmp_path: Path,
                                                        renditions: dict[str, Rendition]) -> None:
    publish(site(tmp_path, "Asia/Hong_Kong"), tmp_path, renditions, publish_at=AT)
    www = tmp_path / "www"
    shown = {"index.html": "4 December 2026", "index.zh-Hant.html": "2026年12月4日",
             "index.zh-Hans.html": "2026年12月4日"}
    for name, date in shown.items():
        # the player page and the site index page of the same language
        for page in (www / RID / name, www / name):
            assert time_element(page) == ("2026-12-04T07:00:00+08:00", date), page


def test_the_zone_comes_from_the_config(tmp_path: Path, renditions: dict[str, Rendition]) -> None:
    publish(site(tmp_path, "UTC"), tmp_path, renditions, publish_at=AT)
    assert time_element(tmp_path / "www" / RID / "index.html") == ("2026-12-03T23:00:00+00:00",
                                                                   "3 December 2026")


def test_site_index_in_every_language_with_a_switcher(tmp_path: Path,
                                                      renditions: dict[str, Rendition]) -> None:
    titles = "    site_title:\n      en: Security Bureau videos\n      zh-Hant: 保安局影片\n"
    channel = site(tmp_path, "Asia/Hong_Kong", titles)
    publish(channel, tmp_path, renditions, publish_at=AT)
    publish(channel, tmp_path, renditions, release_id="travel-safety-2026", languages=["en"],
            title={"en": "Travel Safety"}, captions={})
    www = tmp_path / "www"
    pages = {"en": www / "index.html", "zh-Hant": www / "index.zh-Hant.html",
             "zh-Hans": www / "index.zh-Hans.html"}
    for lang, page in pages.items():
        text = page.read_text(encoding="utf-8")
        assert html_lang(page) == lang
        assert stat.S_IMODE(page.stat().st_mode) == 0o644  # nginx's workers are another user
        # the switcher links every language's index, marking this one
        links = re.findall(r'<a href="(index[^"]*\.html)" lang="([^"]+)"', text)
        assert sorted(links) == [("index.html", "en"), ("index.zh-Hans.html", "zh-Hans"),
                                 ("index.zh-Hant.html", "zh-Hant")]
        assert re.search(rf'<a href="{page.name}" lang="{lang}" aria-current="page">', text)
        # an English-only release is listed in English, marked as such, on every page
        marked = "" if lang == "en" else ' lang="en"'
        assert f'<h2{marked}><a href="travel-safety-2026/">Travel Safety</a></h2>' in text
    # each page lists the release under its title in that language, linking that language's page
    hant = pages["zh-Hant"].read_text(encoding="utf-8")
    assert f'<h2><a href="{RID}/index.zh-Hant.html">領事保護</a></h2>' in hant
    assert "<title>保安局影片</title>" in hant and "<h1>保安局影片</h1>" in hant
    hans = pages["zh-Hans"].read_text(encoding="utf-8")
    assert f'<h2><a href="{RID}/index.zh-Hans.html">领事保护</a></h2>' in hans
    assert '<h1 lang="en">Security Bureau videos</h1>' in hans  # no zh-Hans title: English, marked
    en = pages["en"].read_text(encoding="utf-8")
    assert f'<h2><a href="{RID}/">Consular Protection &lt;Travel&gt;' in en
    # the release's other languages are linked with their own titles, marked with their language
    assert f'<a href="{RID}/index.zh-Hant.html" lang="zh-Hant" hreflang="zh-Hant">領事保護</a>' in en
    # when no live release has a language any more, its index page goes
    channel.withdraw(job(make_release(tmp_path), {}, Journal()))
    assert sorted(p.name for p in www.glob("index*.html")) == ["index.html"]
    assert "Travel Safety" in pages["en"].read_text(encoding="utf-8")


def test_text_in_another_language_than_the_page_is_marked(tmp_path: Path,
                                                          renditions: dict[str, Rendition]) -> None:
    """A French page with no French description: the English description, the page's own words
    (publisher has none in French) and the date say they are English."""
    channel = site(tmp_path, "Asia/Hong_Kong")
    publish(channel, tmp_path, renditions, publish_at=AT, languages=["en", "fr"],
            title={"en": "Consular Protection", "fr": "Protection consulaire"},
            description={"en": "An animated video."}, captions={})
    fr = (tmp_path / "www" / RID / "index.fr.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in fr and "<h1 id=\"title\">Protection consulaire</h1>" in fr
    assert '<p class="description" lang="en">An animated video.</p>' in fr
    assert re.search(r'<p lang="en"><a href="video.mp4" download>Download the video \(MP4\)</a> · '
                     r'<time datetime="2026-12-04T07:00:00\+08:00">4 December 2026</time></p>', fr)
    en = (tmp_path / "www" / RID / "index.html").read_text(encoding="utf-8")
    assert '<p class="description">An animated video.</p>' in en and "<p lang=" not in en
    index = (tmp_path / "www" / "index.fr.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in index and '<p lang="en"><time' in index
    assert f'<h2><a href="{RID}/index.fr.html">Protection consulaire</a></h2>' in index
    assert '<span lang="en">Also in:</span>' in index
