"""The website's HTML: a player page per language and the site's index of live releases.

Rendered by Jinja2 with autoescape from ``assets/templates``: titles and descriptions are user
text, never markup. Structured data (JSON-LD) is escaped for a ``<script>`` element.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from publisher.models import Release

LABELS = {"en": "English", "zh-Hant": "繁體中文", "zh-Hans": "简体中文"}
OG_LOCALES = {"en": "en_GB", "zh-Hant": "zh_HK", "zh-Hans": "zh_CN"}
UI = {
    "en": {"languages": "Languages", "download": "Download the video (MP4)", "empty": "No videos yet."},
    "zh-Hant": {"languages": "語言", "download": "下載影片（MP4）", "empty": "暫時未有影片。"},
    "zh-Hans": {"languages": "语言", "download": "下载视频（MP4）", "empty": "暂时没有视频。"},
}


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
    return "index.html" if lang == release.default_language else f"index.{lang}.html"


def iso_duration(seconds: float) -> str:
    return f"PT{max(seconds, 0):.3f}".rstrip("0").rstrip(".") + "S"


def render_pages(release: Release, *, base_url: str, caption_langs: list[str], published: datetime,
                 width: int, height: int, duration: float, hls: str = "master.m3u8") -> dict[str, bytes]:
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
            json_ld=json_for_script(ld), ui=UI.get(lang, UI["en"]),
            published=published.date().isoformat(), published_iso=published.isoformat(),
            languages=[{"code": c, "label": LABELS.get(c, c), "href": page_name(release, c),
                        "url": base_url + ("" if c == release.default_language else page_name(release, c))}
                       for c in release.languages],
            tracks=[{"lang": c, "label": LABELS.get(c, c), "src": f"captions/{c}.vtt",
                     "default": c == lang} for c in caption_langs],
        )
        pages[page_name(release, lang)] = html.encode("utf-8")
    return pages


def render_site_index(releases: list[dict[str, Any]], *, title: str, lang: str) -> bytes:
    """The site's index.html listing ``releases`` (their release.json, newest first)."""
    html = templates().get_template("site_index.html.j2").render(
        lang=lang, site_title=title, releases=releases, empty=UI.get(lang, UI["en"])["empty"])
    return html.encode("utf-8")
