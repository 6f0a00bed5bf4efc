"""The website's HTML: a player page per language and the site's index of live releases.

Rendered by Jinja2 with autoescape from ``assets/templates``: titles and descriptions are user
text, never markup. Structured data (JSON-LD) is escaped for a ``<script>`` element.
"""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from publisher.models import Release

LABELS = {"en": "English", "zh-Hant": "繁體中文", "zh-Hans": "简体中文"}
OG_LOCALES = {"en": "en_GB", "zh-Hant": "zh_HK", "zh-Hans": "zh_CN"}
UI = {
    "en": {"languages": "Languages", "download": "Download the video (MP4)", "empty": "No videos yet.",
           "also": "Also in:"},
    "zh-Hant": {"languages": "語言", "download": "下載影片（MP4）", "empty": "暫時未有影片。",
                "also": "其他語言："},
    "zh-Hans": {"languages": "语言", "download": "下载视频（MP4）", "empty": "暂时没有视频。",
                "also": "其他语言："},
}
#: the order of languages in a switcher after the site's own
KNOWN_ORDER = list(LABELS)
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


def ui_language(lang: str) -> str:
    """The language the pages' own words (and dates) are written in on a page in ``lang``."""
    return lang if lang in UI else "en"


def templates() -> jinja2.Environment:
    folder = resources.files("assets") / "templates"
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False,
    )


def json_for_script(data: Any) -> Markup:
    """JSON safe inside <script>: no '<', '>' or '&' can close the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, indent=1)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return Markup(text)  # noqa: S704 - escaped above for a script context


def page_name(release: Release, lang: str) -> str:
    return lang_page(lang, release.default_language)


def lang_page(lang: str, default: str) -> str:
    """``index.html`` in the default language, ``index.<lang>.html`` in the others."""
    return "index.html" if lang == default else f"index.{lang}.html"


def release_href(release_id: str, lang: str, default: str) -> str:
    """A release's page in ``lang``, relative to the site index (its folder for the default)."""
    return f"{release_id}/" + ("" if lang == default else f"index.{lang}.html")


def local_date(when: datetime, zone: tzinfo, lang: str) -> str:
    """The calendar date of ``when`` in ``zone``, written as readers of ``lang`` write it."""
    day = when.astimezone(zone)
    if lang.startswith("zh") or lang.startswith("ja"):
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def iso_duration(seconds: float) -> str:
    return f"PT{max(seconds, 0):.3f}".rstrip("0").rstrip(".") + "S"


def render_pages(release: Release, *, base_url: str, caption_langs: list[str], published: datetime,
                 width: int, height: int, duration: float, hls: str = "master.m3u8",
                 zone: tzinfo) -> dict[str, bytes]:
    """Every player page of ``release`` (file name -> UTF-8 HTML)."""
    env = templates().get_template("player.html.j2")
    pages = {}
    for lang in release.languages:
        title, description = release.text("title", lang), release.text("description", lang)
        page_url = base_url + ("" if lang == release.default_language else page_name(release, lang))
        ld = {
            "@context": "https://schema.org", "@type": "VideoObject", "name": title,
            "description": description or title, "inLanguage": lang,
            "thumbnailUrl": [base_url + "poster.jpg"], "uploadDate": published.isoformat(),
            "duration": iso_duration(duration), "contentUrl": base_url + "video.mp4",
            "embedUrl": page_url, "width": width, "height": height,
        }
        html = env.render(
            lang=lang, title=title, hls_src=f"hls/{hls}", description=description, page_url=page_url,
            base_url=base_url,
            width=width or 1280, height=height or 720, og_locale=OG_LOCALES.get(lang, lang.replace("-", "_")),
            json_ld=json_for_script(ld), ui=UI[ui_language(lang)], ui_lang=ui_language(lang),
            description_lang=lang if release.description.get(lang) else release.default_language,
            published=local_date(published, zone, ui_language(lang)),
            published_iso=published.astimezone(zone).isoformat(),
            languages=[{"code": c, "label": LABELS.get(c, c), "href": page_name(release, c),
                        "url": base_url + ("" if c == release.default_language else page_name(release, c))}
                       for c in release.languages],
            tracks=[{"lang": c, "label": LABELS.get(c, c), "src": f"captions/{c}.vtt",
                     "default": c == lang} for c in caption_langs],
        )
        pages[page_name(release, lang)] = html.encode("utf-8")
    return pages


def parse_time(text: Any) -> datetime | None:
    """A release.json time, or None when it is missing or unreadable (the entry shows no date)."""
    try:
        when = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return when if when is not None and when.tzinfo is not None else None


def index_languages(releases: list[dict[str, Any]], default: str) -> list[str]:
    """The site index's languages: the site's own first, then every language a release has."""
    found = {code for r in releases for code in r.get("languages", [])} - {default}
    return [default, *sorted(found, key=lambda c: (KNOWN_ORDER.index(c) if c in KNOWN_ORDER
                                                   else len(KNOWN_ORDER), c))]


def render_site_index(releases: list[dict[str, Any]], *, titles: dict[str, str], default: str,
                      zone: tzinfo) -> dict[str, bytes]:
    """The site's index pages (file name -> UTF-8 HTML) listing ``releases`` (their release.json,
    newest first): ``index.html`` in ``default``, ``index.<lang>.html`` in every other language
    a release has. ``titles`` is the site's title by language (at least ``default``)."""
    template = templates().get_template("site_index.html.j2")
    langs = index_languages(releases, default)
    pages = {}
    for lang in langs:
        title_lang = lang if lang in titles else default
        items = []
        for r in releases:
            when = parse_time(r.get("published"))
            own = r["languages"][0]
            shown = lang if lang in r["languages"] and r["title"].get(lang) else own
            items.append({
                "id": r["id"], "lang": shown, "title": r["title"][shown],
                "href": release_href(r["id"], shown, own),
                "others": [{"code": c, "lang": c if r["title"].get(c) else own,
                            "title": r["title"].get(c) or r["title"][own],
                            "href": release_href(r["id"], c, own)}
                           for c in r["languages"] if c != shown],
                "published": local_date(when, zone, ui_language(lang)) if when else "",
                "published_iso": when.astimezone(zone).isoformat() if when else "",
            })
        html = template.render(
            lang=lang, site_title=titles[title_lang], title_lang=title_lang, releases=items,
            ui=UI[ui_language(lang)], ui_lang=ui_language(lang),
            languages=[{"code": c, "label": LABELS.get(c, c), "href": lang_page(c, default)} for c in langs])
        pages[lang_page(lang, default)] = html.encode("utf-8")
    return pages
