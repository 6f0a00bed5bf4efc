"""YouTube's video metadata: the rules ``check`` enforces and the resource body publisher sends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from publisher.models import Problem, Release

THUMBNAIL_MAX = 50 * 1024 * 1024  # since 2026-09-14 (was 2 MB)
CAPTION_NAMES = {"en": "English", "zh-Hant": "中文（繁體）", "zh-Hans": "中文（简体）"}


@dataclass(frozen=True)
class Presentation:
    """The settings a video is shown with: the site config's, with the manifest's overrides."""

    privacy: str
    category_id: str
    playlist: str | None
    made_for_kids: bool
    privacy_from: str  # where the privacy setting comes from, for messages


def tags_length(tags: list[str]) -> int:
    """YouTube counts the commas between tags, and a tag with a space as if quoted (+2)."""
    return sum(len(t) + (2 if " " in t else 0) for t in tags) + max(len(tags) - 1, 0)


def metadata_problems(release: Release) -> list[Problem]:
    """Titles, descriptions (every language), tags and thumbnail against YouTube's limits."""
    file = str(release.manifest_path)
    out: list[Problem] = []

    def bad(field: str, message: str, fix: str) -> None:
        out.append(Problem(file=file, field=field, message=f"YouTube: {message}", fix=fix))

    for lang in release.languages:
        title = release.text("title", lang)
        if not title.strip():
            bad(f"title.{lang}", "the title is empty", "write a title")
        if len(title) > 100:
            bad(f"title.{lang}", f"the title has {len(title)} characters; YouTube allows 100",
                "shorten the title to 100 characters or fewer")
        if "<" in title or ">" in title:
            bad(f"title.{lang}", "the title contains '<' or '>', which YouTube refuses",
                "remove the angle brackets")
        desc = release.text("description", lang)
        size = len(desc.encode("utf-8"))
        if size > 5000:
            bad(f"description.{lang}", f"the description is {size} bytes in UTF-8; YouTube allows "
                "5000 (a Chinese character takes 3)", "shorten the description")
        if "<" in desc or ">" in desc:
            bad(f"description.{lang}", "the description contains '<' or '>', which YouTube refuses",
                "remove the angle brackets")
    total = tags_length(release.tags)
    if total > 500:
        bad("tags", f"the tags count as {total} characters; YouTube allows 500 in total "
            "(commas count, a tag with a space counts 2 more)", "remove or shorten tags")
    for i, tag in enumerate(release.tags):
        if "<" in tag or ">" in tag:
            bad(f"tags[{i}]", "a tag contains '<' or '>'", "remove the angle brackets")
    if release.thumbnail is not None and release.thumbnail.is_file():
        size = release.thumbnail.stat().st_size
        if size > THUMBNAIL_MAX:
            bad("thumbnail", f"the thumbnail is {size} bytes; YouTube allows 50 MB",
                "use a smaller JPEG or PNG (1280x720 is recommended)")
    return out


def video_body(release: Release, *, privacy: str, category: str, made_for_kids: bool,
               schedule: bool) -> dict[str, Any]:
    """snippet (default language), localizations (the others) and status (embargo: publishAt)."""
    lang = release.default_language
    snippet = {"title": release.text("title"), "description": release.text("description"),
               "tags": list(release.tags), "categoryId": category,
               "defaultLanguage": lang, "defaultAudioLanguage": lang}
    status: dict[str, Any] = {"privacyStatus": privacy, "selfDeclaredMadeForKids": made_for_kids}
    if schedule and release.publish_at is not None:
        at = release.publish_at.astimezone(UTC)
        status = {"privacyStatus": "private", "selfDeclaredMadeForKids": made_for_kids,
                  "publishAt": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    locs = {la: {"title": release.text("title", la), "description": release.text("description", la)}
            for la in release.languages[1:]}
    return {"snippet": snippet, "status": status, "localizations": locs}
