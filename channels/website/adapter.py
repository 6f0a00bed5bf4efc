"""``website``: a release folder with an HLS/MP4 player page per language, on a folder, WebDAV or SFTP.

Layout under ``<target>/<release-id>/``: ``hls/`` (the web-hls ladder, ``hls/master.m3u8``),
``video.mp4``, ``poster.jpg``, ``captions/<lang>.vtt``, ``release.json`` (what the site index
lists), ``index.html`` (default language), ``index.<lang>.html`` (the others) and ``SHA256SUMS``.
The folder is built in a private staging folder (``.publisher-staging/<random>``, or ``staging:``),
read back against SHA256SUMS and renamed into place, so the public sees all of it or nothing.
``<target>/index.html`` lists the site's live releases and is replaced atomically on each change.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import datetime

from channels.files import FileChannel, is_media
from channels.transports.base import ReleaseFolder, Target, Upload, join, sums_of, sums_text, write_atomic
from channels.website.options import KIND, WebsiteOptions
from channels.website.pages import page_name, render_pages, render_site_index
from publisher.contract import Job, Preview, PreviewFolder, Shown, register
from publisher.errors import NotFound
from publisher.models import ChannelPlan, Outcome, Release, RemoteStatus, RenditionRequest, State

#: the site index in a language other than the site's own
INDEX_PAGE = re.compile(r"index\.[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*\.html")


@register
class Website(FileChannel):
    kind = KIND
    Options = WebsiteOptions
    options: WebsiteOptions

    def renditions(self, release: Release) -> list[RenditionRequest]:
        return self.web_renditions()

    # --- building the folder ---------------------------------------------------------------
    def plan(self, release: Release) -> ChannelPlan:
        return super().plan(release).model_copy(update={"url": self.url(release)})

    def url(self, release: Release) -> str:
        return f"{self.options.public_url}{release.id}/"

    def _published(self, job: Job, t: Target | None) -> datetime:
        def earlier() -> str | None:
            if t is not None:
                with contextlib.suppress(NotFound, ValueError, KeyError):
                    return str(json.loads(t.get_bytes(join(job.release.id, "release.json")))["published"])
            return None
        return datetime.fromisoformat(self.first_published(job, earlier))

    def files(self, job: Job, t: Target | None = None) -> list[Upload]:
        """Every file of the release folder, media first, pages last (SHA256SUMS not included)."""
        media = self.web_files(job)
        langs = [f.name.removeprefix("captions/").removesuffix(".vtt") for f in media
                 if f.name.startswith("captions/")]
        return media + self.meta_files(job, langs, t)

    def meta_files(self, job: Job, caption_langs: list[str], t: Target | None) -> list[Upload]:
        release, mp4 = job.release, job.renditions["web-mp4"]
        published = self._published(job, t)
        info = {"id": release.id, "languages": release.languages, "title": release.title,
                "description": release.description, "published": published.isoformat(),
                "duration": mp4.duration}
        out = [Upload.of_bytes("release.json", json.dumps(info, ensure_ascii=False, indent=1).encode())]
        pages = render_pages(release, base_url=self.url(release), caption_langs=caption_langs,
                             published=published, width=mp4.width, height=mp4.height, duration=mp4.duration,
                             hls=job.renditions["web-hls"].main or "master.m3u8", zone=self.zone)
        return out + [Upload.of_bytes(name, html) for name, html in pages.items()]

    def write_site_index(self, t: Target, exclude: str = "") -> None:
        releases = []
        names = t.listdir("")
        for name in names:
            if name.startswith(".") or "." in name or name == exclude:
                continue
            try:
                info = json.loads(t.get_bytes(join(name, "release.json")))
            except (NotFound, ValueError):
                continue  # not a release folder
            if isinstance(info, dict) and info.get("id") and info.get("languages") and \
                    isinstance(info.get("title"), dict) and info["title"].get(info["languages"][0]):
                releases.append(info)
        releases.sort(key=lambda r: (r.get("published", ""), r.get("id", "")), reverse=True)
        pages = render_site_index(releases, titles=self.options.site_titles(self.name),
                                  default=self.options.site_language, zone=self.zone)
        for name, html in pages.items():
            write_atomic(t, html, name)
        for name in names:
            if INDEX_PAGE.fullmatch(name) and name not in pages:
                t.delete(name)  # a language no live release has any more

    def _outcome(self, job: Job, state: State, note: str = "") -> Outcome:
        return Outcome(state=state, remote_id=f"{job.release.id}/", url=self.url(job.release),
                       checksum=job.renditions["web-mp4"].main_sha256, note=note)

    def preview(self, job: Job, folder: PreviewFolder) -> Preview:
        """The release folder exactly as it would be staged: media, captions, poster and pages."""
        files = self.files(job)
        for f in files:
            if f.local is not None:
                folder.copy(f.name, f.local)
            else:
                folder.write(f.name, f.data or b"")
        folder.write("SHA256SUMS", sums_text(sums_of(files)))
        release = job.release
        shown = [Shown(lang, (("Title", release.text("title", lang)),
                              ("Description", release.text("description", lang)),
                              ("Address", self.url(release) + ("" if lang == release.default_language
                                                                else page_name(release, lang)))),
                       page=page_name(release, lang), image="poster.jpg") for lang in release.languages]
        return Preview(shown, url=self.url(release))

    # --- verbs -----------------------------------------------------------------------------
    def publish(self, job: Job) -> Outcome:
        embargoed = self.embargoed(job)
        repair = job.options.repair
        with self.target() as t:
            files = self.files(job, t)
            folder = ReleaseFolder(t, job.release.id, job.journal)
            # no-op when the public SHA256SUMS is ours; a repair also reads every file back and
            # sends again the ones that are missing or differ
            if folder.is_live(files):
                sent = folder.repair(files) if repair else []
                folder.empty_trash()
                folder.discard_staging()
                folder.publish_modes()
                if repair or not job.journal.get("indexed"):
                    self.write_site_index(t)
                    job.journal.put("indexed", True)
                return self._outcome(job, State.LIVE, f"sent again: {', '.join(sent)}" if sent else "")
            live = folder.public_sums()
            if live and not embargoed and not repair and \
                    {n: d for n, d in live.items() if is_media(n)} == {f.name: f.sha256 for f in files
                                                                       if is_media(f.name)}:
                return self._update(t, job)  # same media, new texts: swap pages, send no video again
            folder.stage(files)
            if embargoed:
                return self._outcome(job, State.SCHEDULED, "staged; goes live at publish_at")
            job.journal.put("indexed", False)
            folder.go_live()
            self.write_site_index(t)
            job.journal.put("indexed", True)
        return self._outcome(job, State.LIVE)

    def update(self, job: Job) -> Outcome:
        """Re-render pages, captions, poster and release.json; the video files stay as they are."""
        with self.target() as t:
            return self._update(t, job)

    def _update(self, t: Target, job: Job) -> Outcome:
        files = self.files(job, t)
        meta = [f for f in files if not is_media(f.name)]
        folder = ReleaseFolder(t, job.release.id, job.journal)
        live = self.live_or_restage(folder, files, job,
                                    f"{self.url(job.release)} is not published; publish it first")
        if live is None:
            return self._outcome(job, State.SCHEDULED, "staged copy updated")
        media = {n: s for n, s in live.items() if is_media(n)}
        changed = [f for f in meta if live.get(f.name) != f.sha256]
        folder.replace(changed, media | sums_of(meta))
        self.write_site_index(t)
        job.journal.put("indexed", True)
        return self._outcome(job, State.LIVE, f"{len(changed)} file(s) replaced")

    def withdraw(self, job: Job) -> Outcome:
        """Pages first (nobody lands on a page whose video is going), then the site index, then the rest."""
        rid = job.release.id
        with self.target() as t:
            folder = ReleaseFolder(t, rid, job.journal)
            for name in t.listdir(rid):
                if name.endswith(".html"):
                    t.delete(join(rid, name))
            self.write_site_index(t, exclude=rid)
            folder.remove([])
            job.journal.delete("indexed")
        return Outcome(state=State.WITHDRAWN, remote_id=f"{rid}/", url=self.url(job.release))

    def status(self, job: Job) -> RemoteStatus:
        rid = job.release.id
        with self.target() as t:
            sums, drift = ReleaseFolder(t, rid, job.journal).drift()
            staged = self.staged(t, job)
        url = self.url(job.release)
        if sums is None:
            was_live = job.publication is not None and job.publication.state == State.LIVE
            gone = ["the release folder is missing from the public path"] if was_live else []
            return RemoteStatus(state=self.absent(job, staged), remote_id=f"{rid}/", url=url, drift=gone)
        return RemoteStatus(state=State.LIVE, remote_id=f"{rid}/", url=url,
                            checksum=sums.get("video.mp4", ""), drift=drift,
                            detail=f"{len(sums)} files checked against SHA256SUMS")
