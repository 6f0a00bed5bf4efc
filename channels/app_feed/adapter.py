"""``app-feed``: a JSON Feed 1.1 document for a mobile app, plus the media it points to.

One feed per channel, ``<target>/feed.json`` (served as ``application/feed+json``), newest item
first. Media go to ``<target>/<release-id>/`` exactly as on a website (``hls/``, ``video.mp4``,
``poster.jpg``, ``captions/<lang>.vtt``, ``SHA256SUMS``), staged privately and renamed into place;
the item is added to the feed only from ``publish_at`` and the feed is replaced atomically.

Each item carries the standard fields in the release's default language (``title``,
``content_text``, ``language``) so any JSON Feed reader shows it, and a ``_publisher`` extension
(JSON Feed's rule: keys starting with ``_`` are extensions, readers ignore what they do not know):

```json
"_publisher": {
  "release": "consular-protection-2026",
  "languages": ["en", "zh-Hant", "zh-Hans"],
  "title": {"en": "...", "zh-Hant": "...", "zh-Hans": "..."},
  "content_text": {"en": "...", "zh-Hant": "...", "zh-Hans": "..."},
  "captions": [{"language": "en", "url": ".../captions/en.vtt", "mime_type": "text/vtt",
                "size_in_bytes": 123, "sha256": "..."}],
  "sha256": {"video.mp4": "...", "poster.jpg": "...", "hls/master.m3u8": "...", ...},
  "sums_url": ".../SHA256SUMS"
}
```

An app shows ``_publisher.title[lang]`` for the user's language, falling back to ``title``.
Attachments: the HLS master playlist (``application/x-mpegURL``; ``size_in_bytes`` is the whole
ladder) and the MP4 (``video/mp4``), both with ``duration_in_seconds``. ``sha256`` lists every
file of the release folder, so the app can check what it downloads.

Optional push (``fcm:`` block: ``credentials`` service-account JSON, ``topic``, ``api_root``,
``project_id``): when an item first goes live, one FCM HTTP v1 notification goes to the topic
with the default-language title and description and ``data`` = {release, feed_url, titles (JSON
of every language's title)}. At most once: a send interrupted mid-way is not repeated; a refused
push leaves the item live and says so in the outcome's note.

A repeat run (``job.options.repeat``, the occurrence) re-posts the live item once per
occurrence: same ``id``, ``date_modified`` = the occurrence, moved to the top of the feed (items
are ordered by ``date_modified``, else ``date_published``), and the push goes out again (at most
once per occurrence, ``data.repeat`` = the occurrence). The journal's ``repeat`` key remembers
the last occurrence done: running it (or an older one) again changes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from channels.app_feed.fcm import Ambiguous, send_push
from channels.app_feed.options import KIND, AppFeedOptions
from channels.files import FileChannel
from channels.transports.base import ReleaseFolder, Target, sums_of, write_atomic
from publisher.contract import Job, Preview, PreviewFolder, Shown, register, secret_file_problem
from publisher.errors import AuthError, NotFound, Rejected
from publisher.models import ChannelPlan, Outcome, Problem, Release, RemoteStatus, RenditionRequest, State

FEED = "feed.json"
VERSION = "https://jsonfeed.org/version/1.1"


def _when(item: dict[str, Any]) -> datetime:
    """When an item was last (re-)posted, for the feed's order."""
    text = item.get("date_modified") or item.get("date_published") or ""
    try:
        at = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@register
class AppFeed(FileChannel):
    kind = KIND
    Options = AppFeedOptions
    options: AppFeedOptions
    needs_links = True  # runs after the websites so an item can link to a player page

    def credential_problems(self) -> list[Problem]:
        problems = super().credential_problems()
        fcm = self.options.fcm
        found = fcm and secret_file_problem(self.resolve_path(fcm.credentials), self.name, "fcm.credentials",
                                            "download the service-account key (mode 0600) or remove fcm:")
        return [*problems, found] if found else problems

    def renditions(self, release: Release) -> list[RenditionRequest]:
        return self.web_renditions()

    def plan(self, release: Release) -> ChannelPlan:
        return super().plan(release).model_copy(update={"url": self.options.public_url + FEED})

    def base(self, release: Release) -> str:
        return f"{self.options.public_url}{release.id}/"

    # --- content ---------------------------------------------------------------------------
    def item(self, job: Job, published: str) -> dict[str, Any]:
        release, r = job.release, job.renditions
        base, lang = self.base(release), release.default_language
        hls, mp4, subs = r["web-hls"], r["web-mp4"], r["captions"]
        duration = round(mp4.duration, 3)
        files = self.web_files(job)
        caption_files = {f.name: f for f in subs.files}
        page = job.other_links().get(self.options.page_channel or "", "") if self.options.page_channel else ""
        return {
            "id": release.id,
            "url": page or base + "video.mp4",
            "title": release.text("title", lang),
            "content_text": release.text("description", lang) or release.text("title", lang),
            "image": base + "poster.jpg",
            "date_published": published,
            **({"date_modified": job.journal.get("repeat")} if job.journal.get("repeat") else {}),
            "language": lang,
            "tags": list(release.tags),
            "attachments": [
                {"url": base + "hls/" + (hls.main or "master.m3u8"), "mime_type": "application/x-mpegURL",
                 "size_in_bytes": sum(f.bytes for f in hls.files), "duration_in_seconds": duration},
                {"url": base + "video.mp4", "mime_type": "video/mp4",
                 "size_in_bytes": mp4.file(mp4.main).bytes, "duration_in_seconds": duration},
            ],
            "_publisher": {
                "release": release.id,
                "languages": list(release.languages),
                "title": {c: release.text("title", c) for c in release.languages},
                "content_text": {c: release.text("description", c) for c in release.languages},
                "captions": [{"language": c, "url": f"{base}captions/{c}.vtt", "mime_type": "text/vtt",
                              "size_in_bytes": caption_files[f"{c}.vtt"].bytes,
                              "sha256": caption_files[f"{c}.vtt"].sha256}
                             for c in release.languages if f"{c}.vtt" in caption_files],
                "sha256": sums_of(files),
                "sums_url": base + "SHA256SUMS",
            },
        }

    def preview(self, job: Job, folder: PreviewFolder) -> Preview:
        """The feed item as the app would list it (``item.json``), with its poster."""
        item = self.item(job, self.first_published(job, lambda: None))
        folder.write("item.json", json.dumps(item, ensure_ascii=False, indent=1))
        poster = job.renditions["poster"]
        folder.copy("poster.jpg", poster.path(poster.main or "poster.jpg"))
        extra = item["_publisher"]
        shown = [Shown(lang, (("Title", extra["title"][lang] or item["title"]),
                              ("Text", extra["content_text"][lang] or item["content_text"]),
                              ("Published", item["date_published"]), ("Opens", item["url"])),
                       page="item.json", image="poster.jpg") for lang in job.release.languages]
        return Preview(shown, url=self.options.public_url + FEED)

    def read_feed(self, t: Target) -> dict[str, Any]:
        try:
            feed: dict[str, Any] = json.loads(t.get_bytes(FEED))
        except NotFound:
            feed = {}
        except ValueError:
            self.log.warning("%s on %s is not valid JSON; it will be rewritten", FEED, t.where)
            feed = {}
        return feed

    def write_feed(self, t: Target, items: list[dict[str, Any]], language: str | None) -> None:
        o = self.options
        items = sorted(items, key=lambda i: (_when(i), i.get("id", "")), reverse=True)
        feed: dict[str, Any] = {"version": VERSION, "title": o.feed_title, "feed_url": o.public_url + FEED}
        if o.home_page_url:
            feed["home_page_url"] = o.home_page_url
        if o.language or language:
            feed["language"] = o.language or language
        feed["items"] = items[: o.max_items]
        data = json.dumps(feed, ensure_ascii=False, indent=1).encode("utf-8")
        write_atomic(t, data, FEED)

    def _outcome(self, job: Job, state: State, note: str = "") -> Outcome:
        return Outcome(state=state, remote_id=f"{FEED}#{job.release.id}", url=self.options.public_url + FEED,
                       checksum=job.renditions["web-mp4"].main_sha256, note=note)

    # --- verbs -----------------------------------------------------------------------------
    def publish(self, job: Job) -> Outcome:
        embargoed = self.embargoed(job)
        files = self.web_files(job)
        with self.target() as t:
            folder = ReleaseFolder(t, job.release.id, job.journal)
            live = folder.is_live(files)
            if live and job.options.repair:
                folder.repair(files)  # what is missing or differs is sent again
            if not live:
                folder.stage(files)
                if embargoed:
                    return self._outcome(job, State.SCHEDULED, "media staged; the item appears at publish_at")
                folder.go_live()
            else:
                folder.publish_modes()
            folder.empty_trash()
            self._repeat(job)
            self._put_item(t, job)
        note = self._push(job)
        occurrence = job.options.repeat.at.isoformat() if job.options.repeat else ""
        if occurrence and occurrence == job.journal.get("repeat"):  # also completes an unsent push
            note = "; ".join(n for n in (f"re-posted for {occurrence}", self._push(job, "repeat_push")) if n)
        return self._outcome(job, State.LIVE, note)

    @staticmethod
    def _repeat(job: Job) -> None:
        """Take up a new repeat occurrence (journalled before the feed changes)."""
        occurrence = job.options.repeat.at.isoformat() if job.options.repeat else ""
        done = job.journal.get("repeat")
        if not occurrence or (done and datetime.fromisoformat(occurrence) <= datetime.fromisoformat(done)):
            return
        job.journal.delete("repeat_push")
        job.journal.put("repeat", occurrence)

    def _push(self, job: Job, key: str = "push") -> str:
        """Notify the app's users once (per repeat occurrence for ``repeat_push``).
        At most once: an interrupted send is not repeated."""
        fcm, j = self.options.fcm, job.journal
        if fcm is None or j.get(key):
            return "" if fcm is None or j.get(key) != "sending" else "push interrupted; not repeated"
        lang = job.release.default_language
        data = {"release": job.release.id, "feed_url": self.options.public_url + FEED,
                "titles": json.dumps({c: job.release.text("title", c) for c in job.release.languages},
                                     ensure_ascii=False)}
        if key == "repeat_push":
            data["repeat"] = str(j.get("repeat"))
        j.put(key, "sending")
        try:
            name = send_push(
                fcm, self.resolve_path(fcm.credentials),
                self.resolve_path(fcm.ca_bundle) if fcm.ca_bundle else None,
                title=job.release.text("title", lang), body=job.release.text("description", lang)[:240],
                data=data, channel=self.name, now=job.now())
        except Ambiguous:
            raise
        except (AuthError, Rejected) as e:
            j.put(key, f"failed: {e}")
            return f"live, but the push notification failed: {e}"
        except Exception:
            j.delete(key)  # not delivered: the core's retry sends it
            raise
        j.put(key, name)
        return f"push sent ({name})"

    def _put_item(self, t: Target, job: Job) -> None:
        feed = self.read_feed(t)
        items = [i for i in feed.get("items", []) if isinstance(i, dict)]
        current = next((i for i in items if i.get("id") == job.release.id), None)
        item = self.item(job, self.first_published(job, lambda: (current or {}).get("date_published")))
        if item != current or feed.get("version") != VERSION:
            self.write_feed(t, [i for i in items if i.get("id") != job.release.id] + [item],
                            job.release.default_language)

    def update(self, job: Job) -> Outcome:
        """New captions, poster and texts; the video stays. The item is rewritten in place (same id
        and date)."""
        files = self.web_files(job)
        with self.target() as t:
            folder = ReleaseFolder(t, job.release.id, job.journal)
            live = self.live_or_restage(folder, files, job, f"{job.release.id} is not in "
                                        f"{self.options.public_url}{FEED}; publish it first")
            if live is None:
                return self._outcome(job, State.SCHEDULED, "staged copy updated")
            extras = [f for f in files if f.name.startswith("captions/") or f.name == "poster.jpg"]
            kept = {n: s for n, s in live.items() if not n.startswith("captions/") and n != "poster.jpg"}
            folder.replace([f for f in extras if live.get(f.name) != f.sha256], kept | sums_of(extras))
            self._put_item(t, job)
        return self._outcome(job, State.LIVE)

    def withdraw(self, job: Job) -> Outcome:
        """The item leaves the feed first, then the media folder goes."""
        with self.target() as t:
            feed = self.read_feed(t)
            items = [i for i in feed.get("items", []) if isinstance(i, dict)]
            if any(i.get("id") == job.release.id for i in items):
                self.write_feed(t, [i for i in items if i.get("id") != job.release.id], feed.get("language"))
            ReleaseFolder(t, job.release.id, job.journal).remove([])
        return Outcome(state=State.WITHDRAWN, remote_id=f"{FEED}#{job.release.id}",
                       url=self.options.public_url + FEED)

    def status(self, job: Job) -> RemoteStatus:
        with self.target() as t:
            folder = ReleaseFolder(t, job.release.id, job.journal)
            sums, drift = folder.drift()
            items = [i for i in self.read_feed(t).get("items", []) if isinstance(i, dict)]
            staged = self.staged(t, job)
        item = next((i for i in items if i.get("id") == job.release.id), None)
        url = self.options.public_url + FEED
        rid = f"{FEED}#{job.release.id}"
        if item is None:
            was_live = job.publication is not None and job.publication.state == State.LIVE
            gone = ["the item is missing from the feed"] if was_live else []
            return RemoteStatus(state=self.absent(job, staged), remote_id=rid, url=url, drift=gone)
        if sums is None:
            drift = ["the item is in the feed but its media folder is missing"]
        elif item.get("_publisher", {}).get("sha256") != sums:
            drift = [*drift, "the item's sha256 list differs from SHA256SUMS"]
        checksum = (sums or {}).get("video.mp4", "")
        return RemoteStatus(state=State.LIVE, remote_id=rid, url=url, checksum=checksum, drift=drift,
                            detail=f"published {item.get('date_published', '')}")

