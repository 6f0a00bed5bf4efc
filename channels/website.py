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
from datetime import datetime
from importlib import resources
from typing import Any, cast

import jinja2
from markupsafe import Markup
from pydantic import field_validator

from channels.target_options import TargetOptions, target_credentials_present, target_problems
from channels.targets import (
    ReleaseFolder,
    Target,
    Upload,
    join,
    open_target,
    sums_of,
    write_atomic,
)
from publisher.contract import Channel, ChannelOptions, Job, register
from publisher.errors import NotFound
from publisher.models import Outcome, Problem, Release, RemoteStatus, RenditionRequest, State

PROFILES = ("web-hls", "web-mp4", "poster", "captions")
LABELS = {"en": "English", "zh-Hant": "繁體中文", "zh-Hans": "简体中文"}
OG_LOCALES = {"en": "en_GB", "zh-Hant": "zh_HK", "zh-Hans": "zh_CN"}
UI = {
    "en": {"languages": "Languages", "download": "Download the video (MP4)", "empty": "No videos yet."},
    "zh-Hant": {"languages": "語言", "download": "下載影片（MP4）", "empty": "暫時未有影片。"},
    "zh-Hans": {"languages": "语言", "download": "下载视频（MP4）", "empty": "暂时没有视频。"},
}


class WebsiteOptions(ChannelOptions, TargetOptions):
    #: the address at which ``target`` is served, e.g. https://www.example.gov.hk/videos/
    public_url: str
    #: heading and language of the site-level index.html
    site_title: str = ""
    site_language: str = "en"

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("public_url must start with https:// (or http://)")
        return v if v.endswith("/") else v + "/"


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


def is_media(name: str) -> bool:
    """The video files: an update (new texts, captions or poster) never sends them again."""
    return name.startswith("hls/") or name == "video.mp4"


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


@register
class Website(Channel):
    kind = "website"
    Options = WebsiteOptions

    @property
    def opts(self) -> WebsiteOptions:
        return cast(WebsiteOptions, self.options)

    def credentials_present(self) -> bool:
        return target_credentials_present(self.opts, self.config_dir)

    def renditions(self, release: Release) -> list[RenditionRequest]:
        return [RenditionRequest(profile=p, params=self.opts.encoding.get(p, {})) for p in PROFILES]

    def validate(self, release: Release) -> list[Problem]:
        return target_problems(self.opts, self.config_dir, self.name)

    # --- building the folder ---------------------------------------------------------------
    def url(self, release: Release) -> str:
        return f"{self.opts.public_url}{release.id}/"

    def _target(self) -> Target:
        return open_target(self.opts, config_dir=self.config_dir, channel=self.name)

    def _published(self, job: Job, t: Target | None) -> datetime:
        """The date pages show: publish_at, else when it first went out (kept stable across reruns)."""
        if job.release.publish_at is not None:
            return job.release.publish_at
        if not job.journal.get("published_at"):
            when = job.now().isoformat()
            if t is not None:
                with contextlib.suppress(NotFound, ValueError, KeyError):
                    when = json.loads(t.get_bytes(join(job.release.id, "release.json")))["published"]
            job.journal.put("published_at", when)
        return datetime.fromisoformat(job.journal.get("published_at"))

    def files(self, job: Job, t: Target | None = None) -> list[Upload]:
        """Every file of the release folder, media first, pages last (SHA256SUMS not included)."""
        r = job.renditions
        missing = [p for p in PROFILES if p not in r]
        if missing:
            raise NotFound(f"renditions {', '.join(missing)} are missing for {self.name}", channel=self.name)
        hls, mp4, poster, subs = r["web-hls"], r["web-mp4"], r["poster"], r["captions"]
        out = [Upload(f"hls/{f.name}", f.sha256, local=hls.path(f.name)) for f in hls.files]
        out.append(Upload("video.mp4", mp4.main_sha256, local=mp4.main_path))
        out.append(Upload("poster.jpg", poster.file(poster.main or "poster.jpg").sha256,
                          local=poster.path(poster.main or "poster.jpg")))
        langs = [f.name[:-4] for f in subs.files if f.name.endswith(".vtt")]
        ordered = [lang for lang in job.release.languages if lang in langs]
        out += [Upload(f"captions/{lang}.vtt", subs.file(f"{lang}.vtt").sha256,
                       local=subs.path(f"{lang}.vtt")) for lang in ordered]
        return out + self.meta_files(job, ordered, t)

    def meta_files(self, job: Job, caption_langs: list[str], t: Target | None) -> list[Upload]:
        release, mp4 = job.release, job.renditions["web-mp4"]
        published = self._published(job, t)
        info = {"id": release.id, "languages": release.languages, "title": release.title,
                "description": release.description, "published": published.isoformat(),
                "duration": mp4.duration}
        out = [Upload.of_bytes("release.json", json.dumps(info, ensure_ascii=False, indent=1).encode())]
        pages = render_pages(release, base_url=self.url(release), caption_langs=caption_langs,
                             published=published, width=mp4.width, height=mp4.height, duration=mp4.duration,
                             hls=job.renditions["web-hls"].main or "master.m3u8")
        return out + [Upload.of_bytes(name, html) for name, html in pages.items()]

    def write_site_index(self, t: Target, exclude: str = "") -> None:
        releases = []
        for name in t.listdir(""):
            if name.startswith(".") or "." in name or name == exclude:
                continue
            try:
                releases.append(json.loads(t.get_bytes(join(name, "release.json"))))
            except (NotFound, ValueError):
                continue  # not a release folder
        releases.sort(key=lambda r: (r.get("published", ""), r.get("id", "")), reverse=True)
        lang = self.opts.site_language
        html = templates().get_template("site_index.html.j2").render(
            lang=lang, site_title=self.opts.site_title or self.name, releases=releases,
            empty=UI.get(lang, UI["en"])["empty"])
        write_atomic(t, html.encode("utf-8"), "index.html")

    def _outcome(self, job: Job, state: State, note: str = "") -> Outcome:
        return Outcome(state=state, remote_id=f"{job.release.id}/", url=self.url(job.release),
                       checksum=job.renditions["web-mp4"].main_sha256, note=note)

    # --- verbs -----------------------------------------------------------------------------
    def publish(self, job: Job) -> Outcome:
        at = job.release.publish_at
        embargoed = job.stage_only or (at is not None and job.now() < at)  # never early, whatever the caller
        repair = job.options.repair
        with self._target() as t:
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
        with self._target() as t:
            return self._update(t, job)

    def _update(self, t: Target, job: Job) -> Outcome:
        files = self.files(job, t)
        meta = [f for f in files if not is_media(f.name)]
        folder = ReleaseFolder(t, job.release.id, job.journal)
        live = folder.public_sums()
        if live is None:
            if job.journal.get("staging"):
                folder.stage(files)
                return self._outcome(job, State.SCHEDULED, "staged copy updated")
            raise NotFound(f"{self.url(job.release)} is not published; publish it first", channel=self.name)
        media = {n: s for n, s in live.items() if is_media(n)}
        changed = [f for f in meta if live.get(f.name) != f.sha256]
        folder.replace(changed, media | sums_of(meta))
        self.write_site_index(t)
        job.journal.put("indexed", True)
        return self._outcome(job, State.LIVE, f"{len(changed)} file(s) replaced")

    def withdraw(self, job: Job) -> Outcome:
        """Pages first (nobody lands on a page whose video is going), then the site index, then the rest."""
        rid = job.release.id
        with self._target() as t:
            folder = ReleaseFolder(t, rid, job.journal)
            for name in t.listdir(rid):
                if name.endswith(".html"):
                    t.delete(join(rid, name))
            self.write_site_index(t, exclude=rid)
            folder.remove([])
            job.journal.delete("indexed")
        return Outcome(state="withdrawn", remote_id=f"{rid}/", url=self.url(job.release))

    def status(self, job: Job) -> RemoteStatus:
        rid = job.release.id
        with self._target() as t:
            folder = ReleaseFolder(t, rid, job.journal)
            sums, drift = folder.drift()
            staging = job.journal.get("staging")
            staged = bool(staging) and t.exists(staging)
        url = self.url(job.release)
        if sums is None:
            known = job.publication.state if job.publication is not None else "pending"
            was_live = known == "live"
            state = "scheduled" if staged else ("withdrawn" if known in ("live", "withdrawn") else "pending")
            gone = ["the release folder is missing from the public path"] if was_live else []
            return RemoteStatus(state=state, remote_id=f"{rid}/", url=url, drift=gone)
        return RemoteStatus(state="live", remote_id=f"{rid}/", url=url, checksum=sums.get("video.mp4", ""),
                            detail=f"{len(sums)} files checked against SHA256SUMS", drift=drift)

