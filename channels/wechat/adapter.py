"""``wechat``: a WeChat Official Account article for the release.

WeChat's API cannot place a video inside article content: the video goes to the permanent
material library for an editor, and the article carries the cover, the description and a link to
the video's public page (another channel's URL). Steps, each journalled and never repeated:
video material → cover as thumb material → cover image for the body → draft → freepublish/submit
→ freepublish/get until live. A step whose answer was lost (killed process, timeout) is found
again on the server before anything is re-sent, so a resume never makes a duplicate.
A repeat run posts a new article from the same materials (``repeat``). Every wait and every
time the adapter records is on ``job.clock``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from channels.wechat import repeat
from channels.wechat.api import WeChatAPI
from channels.wechat.article import (
    Texts,
    article_page,
    draft_article,
    fingerprint,
    public_page,
    text_problems,
)
from channels.wechat.options import KIND, WeChatOptions, WeChatOverrides
from publisher.contract import Channel, Job, Preview, PreviewFolder, Shown, env_secret_problem, register
from publisher.errors import NotFound, Rejected, Transient
from publisher.models import (
    ChannelPlan,
    Outcome,
    Problem,
    Release,
    RemoteStatus,
    Rendition,
    RenditionRequest,
    State,
)

MAX_VIDEO = 10 * 1024 * 1024
MAX_THUMB = 64 * 1024
GONE = frozenset({40007, 53600})
AWAITING_EDITOR = "draft awaiting an editor"


@register
class WeChat(Channel):
    kind = KIND
    Options = WeChatOptions
    Overrides = WeChatOverrides
    needs_links: ClassVar[bool] = True
    options: WeChatOptions

    # --- offline ---------------------------------------------------------------------------
    def credential_problems(self) -> list[Problem]:
        found = env_secret_problem(self.options.secret_env, self.name, "secret_env", "the AppSecret")
        return [found] if found else []

    def renditions(self, release: Release) -> list[RenditionRequest]:
        return [RenditionRequest(profile="wechat"), RenditionRequest(profile="cover")]

    def _texts(self, release: Release) -> Texts:
        lang = self.options.language
        over = self.overrides_as(WeChatOverrides, release).model_dump(exclude_none=True)
        defaults = {"title": (release.text("title", lang), f"title.{lang}"),
                    "author": (self.options.author, f"channels.{self.name}.author"),
                    "digest": (release.text("description", lang), f"description.{lang}")}
        return {k: (over[k], f"overrides.{self.name}.{k}") if k in over else v for k, v in defaults.items()}

    def plan(self, release: Release) -> ChannelPlan:
        # WeChat publishes no daily caps for these calls (45009 tells); count calls per API
        return ChannelPlan(sends=["wechat", "cover"], quota={
            "material/add_material": 2, "media/uploadimg": 1, "draft/add": 1,
            "freepublish/submit": 0 if not self.options.auto_publish else 1},
            live="" if self.options.auto_publish else "stays a draft until someone publishes it in WeChat")

    def validate(self, release: Release) -> list[Problem]:
        return text_problems(release, self._texts(release), self.options.language, self.name)

    # --- plumbing --------------------------------------------------------------------------
    def _api(self, job: Job) -> WeChatAPI:
        ca = self.options.ca_bundle
        verify: bool | str = str(self.resolve_path(ca)) if ca else True
        return WeChatAPI(api_root=self.options.api_root, appid=self.options.appid,
                         secret=lambda: self.secret_env(self.options.secret_env, "WeChat AppSecret"),
                         state_dir=self.state_dir, verify=verify, clock=job.clock,
                         timeout=self.options.timeout)

    def _link(self, links: dict[str, str]) -> str:
        return public_page(links, self.options.link_from)

    def _article(self, job: Job, thumb_id: str, cover_url: str) -> dict[str, Any]:
        return draft_article(job.release, self._texts(job.release), self.options.language,
                             link=self._link(job.other_links()), thumb_id=thumb_id, cover_url=cover_url)

    @staticmethod
    def _rendition(job: Job, profile: str) -> tuple[Path, str]:
        r: Rendition | None = job.renditions.get(profile)
        if r is None:
            raise Rejected(f"the {profile!r} rendition is missing; run the release again to encode it")
        name = r.main or next((f.name for f in r.files), "")
        if not name:
            raise Rejected(f"the {profile!r} rendition has no file")
        return r.path(name), r.file(name).sha256

    def preview(self, job: Job, folder: PreviewFolder) -> Preview:
        """The article as it will read (``article.html``), the draft as it would be sent
        (``article.json``) and its cover; the cover's WeChat address is known only once uploaded."""
        cover, _ = self._rendition(job, "cover")
        folder.copy("cover.jpg", cover)
        article = self._article(job, "(given by WeChat when the cover is uploaded)", "cover.jpg")
        folder.write("article.json", json.dumps(article, ensure_ascii=False, indent=1))
        lang = self.options.language
        folder.write("article.html", article_page(article, lang))
        link = article.get("content_source_url", "") or "none: no other channel has a public page"
        fields = (("Title", article["title"]), ("Author", article["author"]),
                  ("Digest", article["digest"]), ("Link", link))
        return Preview([Shown(lang, fields, page="article.html", image="cover.jpg")])

    # --- steps -----------------------------------------------------------------------------
    def _material(self, api: WeChatAPI, job: Job, kind: str, path: Path, sha: str) -> str:
        """Upload a permanent material once; a changed file replaces it (the old one is retired)."""
        j = job.journal
        known = j.get(kind)
        if known and known["sha256"] == sha:
            return str(known["media_id"])
        limit, mime = (MAX_VIDEO, "video/mp4") if kind == "video" else (MAX_THUMB, "image/jpeg")
        size = path.stat().st_size
        if size > limit:
            raise Rejected(f"{path.name} is {size} bytes; WeChat accepts at most {limit} bytes for "
                           f"{kind} material (the {kind!r} rendition must be re-encoded smaller)")
        name = f"{job.release.id}{path.suffix}"
        intent = j.get(f"{kind}_intent")
        media_id = ""
        if intent and intent.get("sha256") == sha:  # an upload whose answer may have been lost
            known_ids = {str(m) for m in [(known or {}).get("media_id"), *j.get("retired", [])] if m}
            media_id = api.find_material(kind, name, float(intent["at"]), known_ids)
        if not media_id:
            j.put(f"{kind}_intent", {"sha256": sha, "at": job.now().timestamp()})
            form = {}
            if kind == "video":
                form["description"] = json.dumps(
                    {"title": self._texts(job.release)["title"][0],
                     "introduction": job.release.text("description", self.options.language)},
                    ensure_ascii=False)
            data = api.call("material/add_material", params={"type": kind}, form=form,
                            files=lambda: {"media": (name, path.open("rb"), mime)},
                            what=f"uploading the {kind} material {name}")
            media_id = str(data["media_id"])
        if known:
            j.put("retired", [*j.get("retired", []), known["media_id"]])
        j.put(kind, {"media_id": media_id, "sha256": sha})
        j.delete(f"{kind}_intent")
        return media_id

    def _cover_url(self, api: WeChatAPI, job: Job, path: Path, sha: str) -> str:
        known = job.journal.get("cover_url")
        if known and known["sha256"] == sha:
            return str(known["url"])
        data = api.call("media/uploadimg",
                        files=lambda: {"media": ("cover.jpg", path.open("rb"), "image/jpeg")},
                        what="uploading the cover image for the article body")
        job.journal.put("cover_url", {"url": data["url"], "sha256": sha})
        return str(data["url"])

    def _draft(self, api: WeChatAPI, job: Job, article: dict[str, Any]) -> str:
        j = job.journal
        fp = fingerprint(article)
        draft = j.get("draft")
        if draft and draft["fingerprint"] != fp:
            api.call("draft/update", {"media_id": draft["media_id"], "index": 0, "articles": article},
                     what="updating the draft article")
            draft = {"media_id": draft["media_id"], "fingerprint": fp}
            j.put("draft", draft)
        if draft:
            return str(draft["media_id"])
        intent = j.get("draft_intent")
        media_id = api.find_draft(article["thumb_media_id"], float(intent)) if intent else ""
        if not media_id:
            j.put("draft_intent", job.now().timestamp())
            data = api.call("draft/add", {"articles": [article]}, what="adding the draft article")
            media_id = str(data["media_id"])
        j.put("draft", {"media_id": media_id, "fingerprint": fp})
        j.delete("draft_intent")
        return media_id

    def _submit(self, api: WeChatAPI, job: Job, draft_id: str) -> str:
        j = job.journal
        if j.get("publish_id"):
            return str(j.get("publish_id"))
        if j.get("submit_intent") == draft_id:  # submitted before, answer lost?
            gone = api.call("draft/get", {"media_id": draft_id}, ok_codes=GONE,
                            what="checking the draft").get("errcode")
            if gone:
                return ""  # the draft left the box: it was published; the article is found later
        j.put("submit_intent", draft_id)
        data = api.call("freepublish/submit", {"media_id": draft_id}, what="submitting the article")
        j.put("publish_id", str(data["publish_id"]))  # live answers carry an integer
        return str(data["publish_id"])

    def _poll(self, api: WeChatAPI, job: Job, publish_id: str, wait: float) -> dict[str, Any]:
        deadline = job.now() + timedelta(seconds=wait)
        delay = self.options.poll_interval
        while True:
            data = api.call("freepublish/get", {"publish_id": publish_id},
                            what="asking for the publish state")
            if int(data.get("publish_status", 1)) != 1 or job.now() + timedelta(seconds=delay) > deadline:
                return data
            job.clock.sleep(delay)
            delay = min(delay * 1.5, 15.0)

    # --- verbs -----------------------------------------------------------------------------
    def _outcome(self, job: Job, state: State, note: str = "") -> Outcome:
        j = job.journal
        live = j.get("article") or {}
        remote = live.get("id") or j.get("publish_id") or (j.get("draft") or {}).get("media_id", "")
        return Outcome(state=state, remote_id=str(remote), url=str(live.get("url", "")),
                       checksum=str((j.get("video") or {}).get("sha256", "")), note=note)

    def _went_live(self, api: WeChatAPI, job: Job, article_id: str, url: str) -> Outcome:
        j = job.journal
        if (j.get("article") or {}).get("id") != article_id:
            fingerprint = (j.get("draft") or {}).get("fingerprint", "")
            repeat.went_live(j, article_id)
            j.put("article", {"id": article_id, "url": url, "fingerprint": fingerprint})
        repeat.settled(j)
        for key in ("draft", "publish_id", "submit_intent"):
            j.delete(key)  # publishing removed the draft from the box
        for old in j.get("retired_articles", []):
            if old == article_id:
                continue
            api.call("freepublish/delete", {"article_id": old, "index": 0}, ok_codes=GONE,
                     what="deleting the previous version of the article")
        j.delete("retired_articles")
        for media_id in j.get("retired", []):
            api.call("material/del_material", {"media_id": media_id}, ok_codes=GONE,
                     what="deleting replaced material")
        j.delete("retired")
        return self._outcome(job, State.LIVE)

    def _settle(self, api: WeChatAPI, job: Job, data: dict[str, Any]) -> Outcome:
        """Act on a freepublish/get answer."""
        j = job.journal
        status = int(data.get("publish_status", 1))
        if status == 0:
            items = data.get("article_detail", {}).get("item", [])
            return self._went_live(api, job, str(data["article_id"]),
                                   str(items[0].get("article_url", "")) if items else "")
        if status == 1:
            return self._outcome(job, State.PROCESSING, "WeChat is still publishing the article")
        reasons = {2: "the original-content (原创) check failed", 3: "publishing failed",
                   4: "WeChat's review rejected the article", 5: "the article was deleted",
                   6: "WeChat banned the article"}
        reason = reasons.get(status, f"publish_status {status}")
        j.put("last_failure", reason)
        repeat.settled(j)
        if j.get("draft"):  # if WeChat kept the failed draft, do not leave it behind
            api.call("draft/delete", {"media_id": j.get("draft")["media_id"]}, ok_codes=GONE,
                     what="deleting the draft that failed to publish")
        for key in ("draft", "publish_id", "submit_intent"):
            j.delete(key)  # the next attempt starts from a fresh draft
        raise Rejected(f"WeChat did not publish the article: {reason} (articles failing: "
                       f"{data.get('fail_idx', [])})")

    def _sync(self, job: Job) -> Outcome:
        j = job.journal
        api = self._api(job)
        if j.get("withdrawn"):
            j.delete("withdrawn")
        video, video_sha = self._rendition(job, "wechat")
        cover, cover_sha = self._rendition(job, "cover")
        self._material(api, job, "video", video, video_sha)
        thumb_id = self._material(api, job, "thumb", cover, cover_sha)
        article = self._article(job, thumb_id, self._cover_url(api, job, cover, cover_sha))
        submitted = j.get("draft") if j.get("publish_id") else None
        if submitted and submitted["fingerprint"] != fingerprint(article):
            # a submitted draft cannot be edited: let that publish finish, then replace it
            outcome = self._settle(api, job, self._poll(api, job, j.get("publish_id"),
                                                        self.options.publish_wait))
            return self._sync(job) if outcome.state == State.LIVE else outcome
        reposting = repeat.begin(job)
        live = j.get("article")
        if live and not reposting:
            if live["fingerprint"] == fingerprint(article):
                return self._went_live(api, job, live["id"], live["url"])
            # a published article cannot be edited: publish the new version, then delete the old
            retired = j.get("retired_articles", [])
            j.put("retired_articles", [*retired, live["id"]] if live["id"] not in retired else retired)
            j.delete("article")
        draft_id = self._draft(api, job, article)
        if job.stage_only:
            return self._outcome(job, State.SCHEDULED, "draft ready; published at the embargo time")
        if not self.options.auto_publish:
            return self._outcome(job, State.PROCESSING, AWAITING_EDITOR)
        publish_id = self._submit(api, job, draft_id)
        if not publish_id:
            return self._look_for_article(api, job, thumb_id)
        return self._settle(api, job, self._poll(api, job, publish_id, self.options.publish_wait))

    def _look_for_article(self, api: WeChatAPI, job: Job, thumb_id: str) -> Outcome:
        article_id, url = api.find_article(thumb_id, repeat.known_articles(job.journal))
        if article_id:
            return self._went_live(api, job, article_id, url)
        return self._outcome(job, State.PROCESSING, "submitted; waiting for WeChat to list the article")

    def publish(self, job: Job) -> Outcome:
        return self._sync(job)

    def update(self, job: Job) -> Outcome:
        return self._sync(job)

    def withdraw(self, job: Job) -> Outcome:
        j = job.journal
        api = self._api(job)
        articles = [(j.get("article") or {}).get("id"), *j.get("retired_articles", []),
                    *j.get("earlier_articles", [])]
        if j.get("publish_id") and not j.get("article"):
            data = api.call("freepublish/get", {"publish_id": j.get("publish_id")}, ok_codes=GONE,
                            what="asking for the publish state")
            if int(data.get("publish_status", -1)) == 0:
                articles.append(str(data["article_id"]))
            elif int(data.get("publish_status", -1)) == 1:
                raise Transient("WeChat is still publishing the article; withdraw again in a minute")
        for article_id in articles:
            if article_id:
                api.call("freepublish/delete", {"article_id": article_id, "index": 0}, ok_codes=GONE,
                         what="deleting the published article")
        if j.get("draft"):
            api.call("draft/delete", {"media_id": j.get("draft")["media_id"]}, ok_codes=GONE,
                     what="deleting the draft")
        for media_id in [(j.get(k) or {}).get("media_id") for k in ("video", "thumb")] + j.get("retired", []):
            if media_id:
                api.call("material/del_material", {"media_id": media_id}, ok_codes=GONE,
                         what="deleting material")
        for key in list(j.data()):
            j.delete(key)
        j.put("withdrawn", True)
        return Outcome(state=State.WITHDRAWN)

    def status(self, job: Job) -> RemoteStatus:
        j = job.journal
        if j.get("withdrawn"):
            return RemoteStatus(state=State.WITHDRAWN)
        api = self._api(job)
        checksum = str((j.get("video") or {}).get("sha256", ""))
        try:
            if j.get("publish_id"):
                outcome = self._settle(api, job, self._poll(api, job, j.get("publish_id"), 0))
                return RemoteStatus(state=outcome.state, remote_id=outcome.remote_id, url=outcome.url,
                                    checksum=checksum, detail=outcome.note)
            live = j.get("article")  # while a re-post's draft waits, the previous article is live
            if j.get("draft"):
                data = api.call("draft/get", {"media_id": j.get("draft")["media_id"]}, ok_codes=GONE,
                                what="reading the draft")
                editor = not self.options.auto_publish
                if not data.get("errcode") and (editor or not live):
                    return RemoteStatus(state=State.PROCESSING if editor else State.SCHEDULED,
                                        remote_id=j.get("draft")["media_id"], checksum=checksum,
                                        detail=AWAITING_EDITOR if editor else "draft ready for publish_at")
                if data.get("errcode"):
                    outcome = self._look_for_article(api, job, (j.get("thumb") or {}).get("media_id", ""))
                    return RemoteStatus(state=outcome.state, remote_id=outcome.remote_id, url=outcome.url,
                                        checksum=checksum, detail=outcome.note)
            if live:
                data = api.call("freepublish/getarticle", {"article_id": live["id"]},
                                what="reading the article")
                deleted = any(n.get("is_deleted") or n.get("is_delete") for n in data.get("news_item", []))
                return RemoteStatus(state=State.WITHDRAWN if deleted else State.LIVE, remote_id=live["id"],
                                    url=live["url"], checksum=checksum,
                                    drift=["the article was deleted on WeChat"] if deleted else [])
        except NotFound as exc:
            return RemoteStatus(state=State.FAILED, checksum=checksum, drift=[str(exc)])
        except Rejected as exc:
            return RemoteStatus(state=State.FAILED, checksum=checksum, detail=str(exc))
        return RemoteStatus(state=State.PENDING)
