"""The article the ``wechat`` adapter publishes: its texts (the manifest's, or the overrides')
held to WeChat's limits, the link to the video's public page, and the draft it sends."""

from __future__ import annotations

import hashlib
import html
import json
from typing import Any
from urllib.parse import urlparse

from publisher.models import Problem, Release

MAX_CONTENT = 19_000  # draft/add content < 20,000 characters, markup included
LIMITS = {"title": 32, "author": 16, "digest": 128}  # draft/add, 2025-12-19
WATCH = {"zh-Hans": "观看视频", "zh-Hant": "觀看影片", "en": "Watch the video"}

#: title, author, digest -> (value, the field it comes from, for messages)
Texts = dict[str, tuple[str, str]]


def fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def text_problems(release: Release, texts: Texts, language: str, channel: str) -> list[Problem]:
    """The article's texts against WeChat's limits, each naming where the text comes from."""
    problems = []
    for name, (value, where) in texts.items():
        if len(value) > LIMITS[name]:
            suggest = f', or give WeChat its own: overrides: {{{channel}: {{{name}: "..."}}}}'
            problems.append(Problem(
                file=str(release.manifest_path), field=where,
                message=f"WeChat allows at most {LIMITS[name]} characters for the article "
                        f"{name}; this one has {len(value)}",
                fix="shorten it" + ("" if where.startswith("overrides.") else suggest)))
    description = release.text("description", language)
    if len(description) > MAX_CONTENT:
        problems.append(Problem(
            file=str(release.manifest_path), field=f"description.{language}",
            message=f"too long for a WeChat article ({len(description)} characters, "
                    f"at most {MAX_CONTENT})", fix="shorten the description"))
    if not release.text("title", language):
        problems.append(Problem(file=str(release.manifest_path), field=f"title.{language}",
                                message="the WeChat article needs a title", fix="add a title"))
    return problems


def public_page(links: dict[str, str], link_from: list[str]) -> str:
    """The video's public page: the first of ``link_from`` that has one, else the first web page
    in the core's order (websites first, then YouTube); feeds and file paths are no pages."""
    for name in link_from:
        if links.get(name):
            return links[name]
    for url in links.values():
        if url.startswith(("https://", "http://")) and not urlparse(url).path.endswith((".json", ".xml")):
            return url
    return ""


def draft_article(release: Release, texts: Texts, language: str, *, link: str, thumb_id: str,
                  cover_url: str) -> dict[str, Any]:
    """The draft/add article: the cover, the description (escaped, a paragraph per line) and the link."""
    body = [f'<p><img src="{html.escape(cover_url)}"></p>'] if cover_url else []
    for para in release.text("description", language).split("\n"):
        if para.strip():
            body.append(f"<p>{html.escape(para.strip())}</p>")
    if link:
        label = WATCH.get(language, WATCH["en"])
        body.append(f'<p><a href="{html.escape(link)}">{label}</a></p>')
    article: dict[str, Any] = {
        "article_type": "news", "title": texts["title"][0], "author": texts["author"][0],
        "digest": texts["digest"][0], "content": "\n".join(body), "thumb_media_id": thumb_id,
        "need_open_comment": 0, "only_fans_can_comment": 0,
    }
    if link:
        article["content_source_url"] = link
    return article


PAGE_STYLE = ("body { max-width: 40rem; margin: 0 auto; padding: 1rem; "
              "font: 1rem/1.6 system-ui, sans-serif; } "
              "img { max-width: 100%; } .author, .digest { color: #555; }")


def article_page(article: dict[str, Any], language: str) -> str:
    """The article as a reader will see it, as one HTML page (a preview; its texts escaped,
    ``content`` as sent, which escapes the author's text itself)."""
    title = html.escape(article["title"])
    head = "".join(f'<p class="{k}">{html.escape(str(article[k]))}</p>\n' for k in ("author", "digest"))
    return (f'<!DOCTYPE html>\n<html lang="{html.escape(language)}">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{title}</title>\n<style>{PAGE_STYLE}</style>\n</head>\n<body>\n<main>\n"
            f"<h1>{title}</h1>\n{head}{article['content']}\n</main>\n</body>\n</html>\n")
