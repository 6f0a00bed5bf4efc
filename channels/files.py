"""The base of the kinds that publish files to a target: ``website``, ``app-feed`` and ``signage``.

``FileChannel`` opens the channel's target (folder, WebDAV or SFTP) and checks the target's
options offline. For the two web kinds, which publish the same release folder (``hls/``,
``video.mp4``, ``poster.jpg``, ``captions/<lang>.vtt``, ``SHA256SUMS``), it also holds what they
share: that folder's files from the web renditions, the date a release first went out, the
update of a copy that is only staged so far, and the state of a folder that is not public.
"""

from __future__ import annotations

from collections.abc import Callable

from channels.transports import open_target
from channels.transports.base import ReleaseFolder, Target, Upload
from channels.transports.options import (
    FileOptions,
    target_credential_problems,
    target_problems,
    unreachable_folder,
)
from publisher.contract import Channel, Job
from publisher.errors import NotFound
from publisher.models import Problem, Release, RenditionRequest, State

WEB_PROFILES = ("web-hls", "web-mp4", "poster", "captions")


def is_media(name: str) -> bool:
    """The video files of a web release folder: an update (new texts, captions or poster) never
    sends them again."""
    return name.startswith("hls/") or name == "video.mp4"


class FileChannel(Channel):
    options: FileOptions

    def credential_problems(self) -> list[Problem]:
        return target_credential_problems(self.options, self.config_dir, self.name)

    def validate(self, release: Release) -> list[Problem]:
        return target_problems(self.options, self.config_dir, self.name)

    def warnings(self) -> list[Problem]:
        closed = unreachable_folder(self.options, self.config_dir)
        if closed is None:
            return []
        mode = closed.stat().st_mode & 0o777
        who = "its group" if self.options.group else "other users"
        return [Problem(f"channel {self.name}", "target",
                        f"{closed} (mode {mode:04o}) cannot be passed through by {who}, so the web server "
                        "or the screens cannot read what is published there",
                        f"chmod {'g+x' if self.options.group else 'o+x'} {closed}, or choose a target "
                        "folder they can reach")]

    def target(self) -> Target:
        return open_target(self.options, config_dir=self.config_dir, channel=self.name)

    @staticmethod
    def embargoed(job: Job) -> bool:
        """Not public yet: the core asks only for staging, or publish_at is still to come (checked
        here too, so nothing goes out early whatever the caller)."""
        at = job.release.publish_at
        return job.stage_only or (at is not None and job.now() < at)

    # --- the web release folder ----------------------------------------------------------------
    def web_renditions(self) -> list[RenditionRequest]:
        return [RenditionRequest(profile=p, params=self.options.encoding.get(p, {})) for p in WEB_PROFILES]

    def web_files(self, job: Job) -> list[Upload]:
        """The media of the release folder, in the release's language order for the captions."""
        r = job.renditions
        missing = [p for p in WEB_PROFILES if p not in r]
        if missing:
            raise NotFound(f"renditions {', '.join(missing)} are missing for {self.name}", channel=self.name)
        hls, mp4, poster, subs = r["web-hls"], r["web-mp4"], r["poster"], r["captions"]
        out = [Upload(f"hls/{f.name}", f.sha256, local=hls.path(f.name)) for f in hls.files]
        out.append(Upload("video.mp4", mp4.main_sha256, local=mp4.main_path))
        poster_name = poster.main or "poster.jpg"
        out.append(Upload("poster.jpg", poster.file(poster_name).sha256, local=poster.path(poster_name)))
        vtt = {f.name: f for f in subs.files if f.name.endswith(".vtt")}
        out += [Upload(f"captions/{lang}.vtt", vtt[f"{lang}.vtt"].sha256, local=subs.path(f"{lang}.vtt"))
                for lang in job.release.languages if f"{lang}.vtt" in vtt]
        return out

    @staticmethod
    def first_published(job: Job, earlier: Callable[[], str | None]) -> str:
        """The date the release shows (ISO 8601): publish_at, else when it first went out. Kept in
        the journal so reruns show the same date; ``earlier`` reads it back from the target when
        the journal does not have it."""
        if job.release.publish_at is not None:
            return job.release.publish_at.isoformat()
        if not job.journal.get("published_at"):
            job.journal.put("published_at", earlier() or job.now().isoformat())
        return str(job.journal.get("published_at"))

    def live_or_restage(self, folder: ReleaseFolder, files: list[Upload], job: Job,
                        missing: str) -> dict[str, str] | None:
        """For an update: the live folder's SHA256SUMS; or None when the release is only staged so
        far (an embargo), after staging ``files`` in its place. NotFound (``missing``) otherwise."""
        live = folder.public_sums()
        if live is None:
            if job.journal.get("staging"):
                folder.stage(files)
                return None
            raise NotFound(missing, channel=self.name)
        return live

    @staticmethod
    def staged(t: Target, job: Job) -> bool:
        staging = job.journal.get("staging")
        return bool(staging) and t.exists(staging)

    @staticmethod
    def absent(job: Job, staged: bool) -> State:
        """The state of a release that is not public: scheduled while a staged copy waits,
        withdrawn when it had been out, else pending."""
        if staged:
            return State.SCHEDULED
        known = job.publication.state if job.publication is not None else State.PENDING
        return State.WITHDRAWN if known in (State.LIVE, State.WITHDRAWN) else State.PENDING
