"""Repeat runs for the ``wechat`` adapter: a new article per occurrence, from the same materials.

``job.options.repeat`` (an occurrence of a repeat rule) on a live article starts a re-post: the journal's
``repeat`` = ``{"at": occurrence, "posting": true}`` is written first, then the adapter's usual
steps build a new draft from the materials already uploaded (never uploaded again), submit it and
wait for it. While that runs the previous article stays the journal's ``article`` (it is what is
live); when the new one is live it takes its place and the previous one joins
``earlier_articles`` (still published, taken down by withdraw). An occurrence at or before the
last one taken up does nothing, so running the same occurrence twice makes one article.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from publisher.contract import Job, Journal


def _newer(occurrence: str, than: str | None) -> bool:
    return not than or datetime.fromisoformat(occurrence) > datetime.fromisoformat(than)


def begin(job: Job) -> bool:
    """Take up ``job.options.repeat`` if it is new and an article is live. True while a re-post
    (this one or an earlier unfinished one) is on its way."""
    j = job.journal
    rep: dict[str, Any] = j.get("repeat") or {}
    occurrence = job.options.repeat.at.isoformat() if job.options.repeat else ""
    if occurrence and j.get("article") and _newer(str(occurrence), rep.get("at")):
        rep = {"at": str(occurrence), "posting": True}
        j.put("repeat", rep)
    return bool(rep.get("posting"))


def went_live(j: Journal, article_id: str) -> None:
    """Before ``article_id`` becomes the live article: keep the one a re-post replaces."""
    rep = j.get("repeat") or {}
    old = (j.get("article") or {}).get("id")
    if rep.get("posting") and old and old != article_id:
        earlier = j.get("earlier_articles", [])
        if old not in earlier:
            j.put("earlier_articles", [*earlier, old])


def settled(j: Journal) -> None:
    """The re-post is live or has failed: a later plain publish does not post again."""
    rep = j.get("repeat") or {}
    if rep.get("posting"):
        j.put("repeat", {"at": rep["at"], "posting": False})


def known_articles(j: Journal) -> set[str]:
    """Articles that are not the one being looked for (after a lost submit answer)."""
    current = (j.get("article") or {}).get("id")
    return {str(a) for a in [current, *j.get("retired_articles", []), *j.get("earlier_articles", [])] if a}
