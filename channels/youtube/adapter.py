"""The ``youtube`` channel: exactly-once resumable upload, three-language metadata, captions,
thumbnail, playlist, embargo by YouTube's own ``publishAt``, and the quota budget.

Journal keys (each written right after its step, so a rerun only finishes what is missing):
``upload`` (session URI, when it opened, size; written before the first byte), ``video_id``,
``captions`` {lang: {id, sha256}}, ``thumbnail`` (sha256), ``playlist_pending``/``playlist_item``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from googleapiclient.http import MediaFileUpload

from channels.youtube.meta import CAPTION_NAMES, THUMBNAIL_MAX, Presentation, metadata_problems, video_body
from channels.youtube.options import KIND, UPLOAD, YouTubeOptions, YouTubeOverrides
from channels.youtube.quota import Ledger
from channels.youtube.upload import Api, YouTubeRejected, upload_video
from publisher.contract import (
    Channel,
    Embargo,
    Job,
    Preview,
    PreviewFolder,
    Shown,
    register,
    secret_file_problem,
    sha256_file,
)
from publisher.errors import InputError, NotFound, Rejected
from publisher.models import ChannelPlan, Outcome, Problem, Release, RemoteStatus, RenditionRequest, State

WATCH = "https://www.youtube.com/watch?v="


@register
class YouTube(Channel):
    kind = KIND
    Options = YouTubeOptions
    Overrides = YouTubeOverrides
    embargo = Embargo.SERVICE
    private_first = True

    options: YouTubeOptions

    # --- offline ---------------------------------------------------------------------------
    def credential_problems(self) -> list[Problem]:
        first = "" if self.options.client_secrets else "set client_secrets (the OAuth client JSON), then "
        found = secret_file_problem(self.resolve_path(self.options.credentials), self.name, "credentials",
                                    f"{first}run `publisher auth {self.name}` to sign in and write it")
        return [found] if found else []

    def renditions(self, release: Release) -> list[RenditionRequest]:
        return [RenditionRequest(profile="youtube"), RenditionRequest(profile="captions"),
                RenditionRequest(profile="poster")]

    def presentation(self, release: Release) -> Presentation:
        over, opts = self.overrides_as(YouTubeOverrides, release), self.options
        where = f"overrides.{self.name}" if over.privacy else f"channels.{self.name}"
        return Presentation(
            privacy=over.privacy or opts.privacy,
            category_id=over.category_id or opts.category_id,
            playlist=over.playlist or opts.playlist,
            made_for_kids=opts.made_for_kids if over.made_for_kids is None else over.made_for_kids,
            privacy_from=f"{where}.privacy")

    def validate(self, release: Release) -> list[Problem]:
        out = metadata_problems(release)
        ca = self.options.ca_bundle
        if ca and not self.resolve_path(ca).is_file():
            out.append(Problem(file=str(self.resolve_path(ca)), field="ca_bundle",
                               message="the CA file does not exist",
                               fix="give the path of a PEM file, or remove ca_bundle"))
        shown = self.presentation(release)
        if release.publish_at is not None and shown.privacy != "public":
            out.append(Problem(
                file=str(release.manifest_path), field="publish_at",
                message=f"YouTube can schedule only public videos, but {self.name} has privacy "
                        f"{shown.privacy} ({shown.privacy_from})",
                fix=f"remove publish_at, or set {shown.privacy_from}: public"))
        return out

    def plan(self, release: Release) -> ChannelPlan:
        q = self.options.quota
        langs = [lang for lang in release.languages if lang in release.captions]
        quota = {"videos.insert (upload bucket)": 1,
                 "captions.insert": q.cost("captions.insert") * len(langs),
                 "thumbnails.set": q.cost("thumbnails.set"), "videos.list": q.cost("videos.list")}
        if q.cost(UPLOAD):
            quota[UPLOAD] = q.cost(UPLOAD)
        if self.presentation(release).playlist:
            quota["playlistItems.insert"] = q.cost("playlistItems.insert")
        privacy = self.presentation(release).privacy
        return ChannelPlan(sends=[r.profile for r in self.renditions(release)], quota=quota,
                           url=f"{WATCH}<the id YouTube gives the upload>",
                           live="" if privacy == "public" else f"{privacy}, never public")

    # --- online ------------------------------------------------------------------------------
    def api(self, job: Job) -> Api:
        """The channel's API client (built once per adapter, so its access token is reused)."""
        cached: Api | None = getattr(self, "_api", None)
        if cached is not None:
            cached.now = job.now
            return cached
        pool = self.options.quota_pool or self.name
        ledger = Ledger(self.accounts, self.options.quota, pool)
        path = self.resolve_path(self.options.credentials)
        text = self.secret_file(path, "credentials")
        try:
            info = json.loads(text)
            missing = [k for k in ("client_id", "client_secret", "refresh_token") if not info.get(k)]
        except (ValueError, AttributeError):
            info, missing = {}, ["a JSON object"]
        if missing:
            raise InputError(Problem(file=str(path), field="credentials",
                                     message=f"not an authorized-user file: missing {', '.join(missing)}",
                                     fix=f"run `publisher auth {self.name}` to create it"))
        ca = str(self.resolve_path(self.options.ca_bundle)) if self.options.ca_bundle else None
        self._api = Api(self.name, info, api_root=self.options.api_root, ca_bundle=ca,
                        timeout=self.options.timeout, ledger=ledger, now=job.now)
        return self._api

    def body(self, release: Release, shown: Presentation, *, schedule: bool) -> dict[str, Any]:
        return video_body(release, privacy=shown.privacy, category=shown.category_id,
                          made_for_kids=shown.made_for_kids, schedule=schedule)

    def preview(self, job: Job, folder: PreviewFolder) -> Preview:
        """The video resource as it would be sent (``video.json``) and the thumbnail; per
        localization its title, description and tags."""
        release, shown = job.release, self.presentation(job.release)
        body = self.body(release, shown, schedule=release.publish_at is not None)
        folder.write("video.json", json.dumps(body, ensure_ascii=False, indent=1))
        poster = job.renditions["poster"]
        folder.copy("thumbnail.jpg", poster.path("poster.jpg"))
        tags = ", ".join(release.tags)
        return Preview([Shown(lang, (("Title", release.text("title", lang)),
                                     ("Description", release.text("description", lang)),
                                     ("Tags", tags), ("Privacy", body["status"]["privacyStatus"])),
                              page="video.json", image="thumbnail.jpg") for lang in release.languages])

    def check(self, job: Job) -> Presentation:
        """Refuse bad metadata, and a publishAt that has passed, before anything is sent."""
        problems = self.validate(job.release)
        at = job.release.publish_at
        if job.stage_only and (at is None or at <= job.now()):
            problems.append(Problem(
                file=str(job.release.manifest_path), field="publish_at",
                message=f"YouTube: publish_at {at} is not in the future; YouTube would publish at once",
                fix="set a future publish_at, or release without an embargo"))
        if problems:
            raise InputError(problems)
        return self.presentation(job.release)

    def publish(self, job: Job) -> Outcome:
        shown = self.check(job)
        rendition = job.renditions["youtube"]
        path = rendition.main_path
        checksum = rendition.main_sha256 or sha256_file(path)
        api = self.api(job)
        j = job.journal
        if job.options.repair and j.get("video_id"):
            self._repair(api, job, shown)
        vid = j.get("video_id")
        private = job.options.private
        if not vid:
            body = self.body(job.release, shown, schedule=job.stage_only)
            if private:
                body["status"] = {"privacyStatus": "private", "selfDeclaredMadeForKids": shown.made_for_kids}
                j.put("held_private", True)
            vid = upload_video(api, j, path, metadata=body, parts="snippet,status,localizations",
                               chunk=int(self.options.chunk_mib * 1024 * 1024),
                               match_title=job.release.text("title"))
            j.put("video_id", vid)
        elif j.get("held_private") and not private:
            status = self.body(job.release, shown, schedule=job.stage_only)["status"]
            api.call("videos.update", api.service.videos().update(part="status",
                                                                  body={"id": vid, "status": status}))
        if not private:
            j.delete("held_private")
        self._captions(api, job, vid, replace=False)
        self._thumbnail(api, job, vid)
        if private:  # a private video in a public playlist would show as a trace
            return Outcome(state=State.SCHEDULED, remote_id=vid, url=WATCH + vid, checksum=checksum,
                           note="uploaded private while the master is checked")
        self._playlist(api, job, vid, shown.playlist)
        state = State.SCHEDULED if job.stage_only else self._state_after_upload(api, vid)
        return Outcome(state=state, remote_id=vid, url=WATCH + vid, checksum=checksum,
                       note=f"publishes itself at {job.release.publish_at}" if job.stage_only else "")

    def _repair(self, api: Api, job: Job, shown: Presentation) -> None:
        """`publisher repair`: forget the captions YouTube lacks (publish sends them again) and put
        back changed metadata. A video deleted on YouTube is uploaded again only with reupload."""
        j, vid = job.journal, str(job.journal.get("video_id"))
        items = api.call("videos.list", api.service.videos().list(part="snippet,status", id=vid)).get("items")
        if not items:
            if not job.options.reupload:
                raise Rejected(f"YouTube video {vid} was deleted on YouTube; upload it again with "
                               f"`publisher repair {job.release.id} --channel {self.name} --reupload`")
            for key in ("video_id", "upload", "captions", "thumbnail", "playlist_pending", "playlist_item"):
                j.delete(key)
            return
        present = self._caption_languages(api, vid)
        done = dict(j.get("captions") or {})
        j.put("captions", {lang: c for lang, c in done.items() if lang in present})
        if self._drift(job, items[0], State.LIVE, State.LIVE):
            body = dict(self.body(job.release, shown, schedule=job.stage_only), id=vid)
            api.call("videos.update", api.service.videos().update(
                part="snippet,status,localizations", body=body))

    def _caption_languages(self, api: Api, vid: str) -> set[str]:
        reply = api.call("captions.list", api.service.captions().list(part="snippet", videoId=vid))
        return {item["snippet"].get("language", "") for item in reply.get("items", [])}

    def _state_after_upload(self, api: Api, vid: str) -> State:
        reply = api.call("videos.list", api.service.videos().list(part="status", id=vid))
        items = reply.get("items") or []
        if not items:
            raise NotFound(f"YouTube video {vid} disappeared right after upload")
        st = items[0]["status"]
        if st.get("uploadStatus") in ("failed", "rejected"):
            why = st.get("failureReason") or st.get("rejectionReason") or "no reason given"
            raise Rejected(f"YouTube {st['uploadStatus']} video {vid}: {why}")
        return State.LIVE if st.get("uploadStatus") == "processed" else State.PROCESSING

    def _captions(self, api: Api, job: Job, vid: str, *, replace: bool) -> None:
        rend = job.renditions.get("captions")
        if rend is None:
            return
        done: dict[str, dict[str, str]] = dict(job.journal.get("captions") or {})
        for info in sorted(rend.files, key=lambda f: f.name):
            if not info.name.endswith(".vtt"):
                continue
            lang = info.name[:-4]
            if done.get(lang, {}).get("sha256") == info.sha256:
                continue
            name = CAPTION_NAMES.get(lang, lang)
            if replace or lang in done:
                self._drop_caption(api, vid, lang, name)
            media = MediaFileUpload(str(rend.path(info.name)), mimetype="text/vtt")
            req = api.service.captions().insert(part="snippet", media_body=media, body={
                "snippet": {"videoId": vid, "language": lang, "name": name, "isDraft": False}})
            try:
                cid = str(api.call("captions.insert", req)["id"])
            except YouTubeRejected as e:
                if e.reason != "captionExists":
                    raise
                cid = "existing"  # inserted by a run that died before recording it
            done[lang] = {"id": cid, "sha256": info.sha256}
            job.journal.put("captions", done)

    def _drop_caption(self, api: Api, vid: str, lang: str, name: str) -> None:
        reply = api.call("captions.list", api.service.captions().list(part="snippet", videoId=vid))
        for item in reply.get("items", []):
            sn = item["snippet"]
            if sn.get("language") == lang and sn.get("name") == name:
                with contextlib.suppress(NotFound):
                    api.call("captions.delete", api.service.captions().delete(id=item["id"]))

    def _thumbnail(self, api: Api, job: Job, vid: str) -> None:
        rend = job.renditions.get("poster")
        if rend is None:
            return
        info = rend.file("poster.jpg")
        if job.journal.get("thumbnail") == info.sha256:
            return
        if info.bytes > THUMBNAIL_MAX:
            raise Rejected(f"the poster is {info.bytes} bytes; YouTube thumbnails may be 50 MB at most")
        media = MediaFileUpload(str(rend.path(info.name)), mimetype="image/jpeg")
        api.call("thumbnails.set", api.service.thumbnails().set(videoId=vid, media_body=media))
        job.journal.put("thumbnail", info.sha256)

    def _playlist(self, api: Api, job: Job, vid: str, playlist: str | None) -> None:
        j = job.journal
        if not playlist or j.get("playlist_item"):
            return
        if j.get("playlist_pending"):  # a run died mid-insert: was it added?
            reply = api.call("playlistItems.list", api.service.playlistItems().list(
                part="id", playlistId=playlist, videoId=vid, maxResults=5))
            if reply.get("items"):
                j.put("playlist_item", reply["items"][0]["id"])
                return
        j.put("playlist_pending", True)
        item = api.call("playlistItems.insert", api.service.playlistItems().insert(
            part="snippet", body={"snippet": {"playlistId": playlist,
                                              "resourceId": {"kind": "youtube#video", "videoId": vid}}}))
        j.put("playlist_item", item["id"])

    # --- after publishing ----------------------------------------------------------------------
    def _video_id(self, job: Job) -> str:
        pub = job.publication
        return (pub.remote_id if pub and pub.remote_id else "") or str(job.journal.get("video_id") or "")

    def update(self, job: Job) -> Outcome:
        vid = self._video_id(job)
        if not vid:
            raise NotFound("this release has no YouTube video to update; publish it first")
        shown = self.presentation(job.release)
        problems = self.validate(job.release)
        if problems:
            raise InputError(problems)
        api = self.api(job)
        at = job.release.publish_at
        scheduled = at is not None and at > job.now()
        body = dict(self.body(job.release, shown, schedule=scheduled), id=vid)
        api.call("videos.update", api.service.videos().update(
            part="snippet,status,localizations", body=body))
        self._captions(api, job, vid, replace=True)
        self._thumbnail(api, job, vid)
        self._playlist(api, job, vid, shown.playlist)
        checksum = job.publication.checksum if job.publication else ""
        return Outcome(state=State.SCHEDULED if scheduled else State.LIVE, remote_id=vid, url=WATCH + vid,
                       checksum=checksum)

    def withdraw(self, job: Job) -> Outcome:
        vid = self._video_id(job)
        if not vid:
            return Outcome(state=State.WITHDRAWN, note="nothing was on YouTube")
        api = self.api(job)
        try:
            if job.options.keep_private:
                kids = self.presentation(job.release).made_for_kids  # update replaces the whole part
                api.call("videos.update", api.service.videos().update(part="status", body={
                    "id": vid, "status": {"privacyStatus": "private", "selfDeclaredMadeForKids": kids}}))
                note = "made private"
            else:
                api.call("videos.delete", api.service.videos().delete(id=vid))
                note = "deleted"
        except NotFound:
            note = "already gone from YouTube"
        return Outcome(state=State.WITHDRAWN, remote_id=vid, url=WATCH + vid, note=note)

    def status(self, job: Job) -> RemoteStatus:
        vid = self._video_id(job)
        pub = job.publication
        expected = pub.state if pub else State.PENDING
        if not vid:
            return RemoteStatus(state=State.PENDING, detail="not uploaded")
        api = self.api(job)
        reply = api.call("videos.list", api.service.videos().list(
            part="snippet,status,processingDetails", id=vid))
        common: dict[str, Any] = {"remote_id": vid, "url": WATCH + vid,
                                  "checksum": pub.checksum if pub else ""}
        items = reply.get("items") or []
        if not items:
            drift = [] if expected == State.WITHDRAWN else [f"video {vid} is gone from YouTube"]
            return RemoteStatus(state=State.WITHDRAWN, detail="not on YouTube", drift=drift, **common)
        v = items[0]
        st, proc = v.get("status", {}), v.get("processingDetails", {})
        privacy, upload = st.get("privacyStatus", ""), st.get("uploadStatus", "")
        detail = f"{upload}, {privacy}" + (f", publishes at {st['publishAt']}" if st.get("publishAt") else "")
        if upload in ("failed", "rejected") or proc.get("processingStatus") in ("failed", "terminated"):
            why = (st.get("failureReason") or st.get("rejectionReason")
                   or proc.get("processingFailureReason") or "no reason given")
            return RemoteStatus(state=State.FAILED, detail=f"{upload}: {why}", **common)
        if upload == "deleted":
            return RemoteStatus(state=State.WITHDRAWN, detail="deleted", **common)
        state = (State.PROCESSING if upload == "uploaded" else
                 State.SCHEDULED if privacy == "private" and st.get("publishAt") else
                 State.WITHDRAWN if privacy == "private" and expected == State.WITHDRAWN else State.LIVE)
        drift = self._drift(job, v, state, expected)
        if state in (State.LIVE, State.SCHEDULED):
            present = self._caption_languages(api, vid)
            sent = sorted(job.journal.get("captions") or {})
            drift += [f"caption {lang} is missing on YouTube" for lang in sent if lang not in present]
        return RemoteStatus(state=state, detail=detail, drift=drift, **common)

    def _drift(self, job: Job, v: dict[str, Any], state: State, expected: State) -> list[str]:
        drift = []
        flipped = expected == State.SCHEDULED and state == State.LIVE  # YouTube published it at publishAt
        if expected in (State.LIVE, State.SCHEDULED, State.WITHDRAWN) \
                and state not in (expected, State.PROCESSING) and not flipped:
            drift.append(f"YouTube shows {state}, publisher recorded {expected}")
        want_privacy = self.presentation(job.release).privacy
        privacy = v.get("status", {}).get("privacyStatus")
        if state == State.LIVE and privacy != want_privacy:
            drift.append(f"privacy is {privacy}, configured {want_privacy}")
        title = v.get("snippet", {}).get("title")
        if title is not None and title != job.release.text("title"):
            drift.append(f"title on YouTube is {title!r}, release says {job.release.text('title')!r}")
        return drift

    # --- sign-in -------------------------------------------------------------------------------
    def authorize(self, *, show: Callable[[str], None] | None = None) -> Path:
        """Run the installed-app OAuth flow and write the credentials file (0600)."""
        from channels.youtube.auth import run_flow

        return run_flow(self.name, self.options, self.resolve_path, show=show)

