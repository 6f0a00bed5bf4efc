"""The state and rules of the fake WeChat Official Account API (served by ``wechat_server``).

Covers stable_token, permanent material, uploadimg, draft box and freepublish as in
/work/shared/reference/wechat-official-account.md: errors are errcode bodies, the access token
rides in the query string and expires, JSON bodies are taken as raw UTF-8 (``\\u`` escapes are
stored literally, as WeChat does), size limits are enforced, and publishing is asynchronous
(``publish_status`` 1 for ``publish_seconds``, then ``publish_outcome``).

Fault knobs: ``quota`` (calls left per path, then 45009), ``fail_next`` (errcodes to answer once
per path), ``lose_answer`` (do the work, then drop the connection), ``http_error`` (5xx before
acting), ``expire_tokens()`` (42001 for every issued token), ``revoke_tokens`` (the next N tokens
presented are revoked and refused with 40001, as when another service force-refreshes the appid's
token), ``advance(seconds)`` (the clock). ``presented`` records every access token the API received.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

LIMITS = {"video": 10 * 1024 * 1024, "thumb": 64 * 1024, "image": 10 * 1024 * 1024}
EXTS = {"video": (".mp4",), "thumb": (".jpg", ".jpeg"), "image": (".jpg", ".jpeg", ".png", ".gif", ".bmp")}


class WeChatError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        self.code, self.msg = code, msg


@dataclass
class Material:
    media_id: str
    type: str
    name: str
    data: bytes
    description: dict[str, Any]
    update_time: int


@dataclass
class PublishJob:
    publish_id: int
    articles: list[dict[str, Any]]
    ready_at: float
    outcome: int
    status: int = 1
    article_id: str = ""


@dataclass
class FakeWeChat:
    appid: str = "wx0123456789abcdef"
    secret: str = "fake-app-secret-0001"
    token_ttl: int = 7200
    publish_seconds: float = 0.05  # a submitted job stays "publishing" this long
    publish_outcome: int = 0  # then this publish_status
    quota: dict[str, int] = field(default_factory=dict)  # "/cgi-bin/draft/add" -> calls left
    fail_next: dict[str, list[int]] = field(default_factory=dict)
    lose_answer: dict[str, int] = field(default_factory=dict)  # path -> answers to drop after acting
    http_error: dict[str, list[int]] = field(default_factory=dict)  # path -> HTTP statuses to answer once
    offset: float = 0.0
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expires at
    revoke_tokens: int = 0
    revoked: list[str] = field(default_factory=list)
    presented: list[str] = field(default_factory=list)
    current: str = ""
    materials: dict[str, Material] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # every material ever made: media_id -> file name
    images: list[bytes] = field(default_factory=list)
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[int, PublishJob] = field(default_factory=dict)
    articles: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    raw_bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- knobs ------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def expire_tokens(self) -> None:
        for t in self.tokens:
            self.tokens[t] = self.now() - 1

    def take(self, knob: dict[str, Any], path: str) -> Any:
        """One-shot fault for ``path``: the next queued value (or True for a counter), else None."""
        with self.lock:
            value = knob.get(path)
            if isinstance(value, list) and value:
                return value.pop(0)
            if isinstance(value, int) and value > 0:
                knob[path] = value - 1
                return True
            return None

    def count(self, path: str) -> int:
        return sum(1 for c in self.calls if c == path)

    # --- dispatch ---------------------------------------------------------------------------
    def tick(self) -> None:
        """Finish publish jobs whose time has come (WeChat works on them by itself)."""
        for job in self.jobs.values():
            if job.status == 1 and job.ready_at <= self.now():
                job.status = job.outcome
                if job.status == 0:
                    job.article_id = "ART_" + secrets.token_urlsafe(12)
                    self.articles[job.article_id] = {
                        "articles": job.articles, "deleted": False, "publish_id": job.publish_id,
                        "url": f"https://mp.weixin.qq.com/s/{job.article_id}", "update_time": int(self.now())}

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Any:
        with self.lock:
            self.tick()
            self.calls.append(path)
            self.raw_bodies.append(body)
            try:
                return self._handle(method, path, query, headers, body)
            except WeChatError as e:
                return {"errcode": e.code, "errmsg": f"{e.msg} rid: {secrets.token_hex(4)}"}

    def _handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Any:
        if not path.startswith("/cgi-bin/"):
            raise WeChatError(40066, "invalid url")
        if self.fail_next.get(path):
            raise WeChatError(self.fail_next[path].pop(0), "injected fault")
        if path in self.quota:
            if self.quota[path] <= 0:
                raise WeChatError(45009, "reach max api daily quota limit")
            self.quota[path] -= 1
        name = path[len("/cgi-bin/"):]
        if name == "stable_token":
            if method != "POST":
                raise WeChatError(43002, "require POST method")
            return self.stable_token(self.json(body))
        if method != "POST" and name != "material/get_materialcount":
            raise WeChatError(43002, "require POST method")
        self.check_token(query.get("access_token", ""))
        if name == "material/add_material":
            return self.add_material(query.get("type", ""), headers, body)
        if name == "media/uploadimg":
            part = self.multipart(headers, body).get("media")
            if part is None or not part[1]:
                raise WeChatError(41005, "media data missing")
            if len(part[1]) >= 1024 * 1024:
                raise WeChatError(40009, "invalid image size")
            self.images.append(part[1])
            return {"url": f"http://mmbiz.qpic.cn/mmbiz_jpg/{secrets.token_hex(8)}/0"}
        handler = getattr(self, "api_" + name.replace("/", "_"), None)
        if handler is None:
            raise WeChatError(40066, "invalid url")
        return handler(self.json(body))

    @staticmethod
    def json(body: bytes) -> dict[str, Any]:
        if not body:
            raise WeChatError(44002, "empty post data")
        try:  # WeChat does not decode \u escapes: they stay literal text
            data = json.loads(body.decode("utf-8").replace("\\u", "\\\\u"))
        except (UnicodeDecodeError, ValueError):
            raise WeChatError(47001, "data format error") from None
        if not isinstance(data, dict):
            raise WeChatError(47001, "data format error")
        return data

    @staticmethod
    def multipart(headers: Any, body: bytes) -> dict[str, tuple[str, bytes]]:
        ctype = headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            raise WeChatError(41005, "media data missing")
        msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        parts: dict[str, tuple[str, bytes]] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            parts[str(name)] = (part.get_filename() or "", payload if isinstance(payload, bytes) else b"")
        return parts

    # --- tokens -----------------------------------------------------------------------------
    def stable_token(self, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("grant_type") != "client_credential":
            raise WeChatError(40002, "invalid grant_type")
        if req.get("appid") != self.appid:
            raise WeChatError(40013, "invalid appid")
        if req.get("secret") != self.secret:
            raise WeChatError(40125, "invalid appsecret")
        left = self.tokens.get(self.current, 0) - self.now()
        if req.get("force_refresh") or left < 300:
            if req.get("force_refresh"):
                self.tokens.pop(self.current, None)
            self.current = "TOKEN_" + secrets.token_urlsafe(24)
            self.tokens[self.current] = self.now() + self.token_ttl
            left = self.token_ttl
        return {"access_token": self.current, "expires_in": int(left)}

    def check_token(self, token: str) -> None:
        if not token:
            raise WeChatError(41001, "access_token missing")
        self.presented.append(token)
        if token in self.tokens and self.revoke_tokens > 0:
            self.revoke_tokens -= 1
            del self.tokens[token]
            self.revoked.append(token)
        if token not in self.tokens:
            raise WeChatError(40001, "invalid credential, access_token is invalid or not latest")
        if self.tokens[token] <= self.now():
            raise WeChatError(42001, "access_token expired")

    # --- material ---------------------------------------------------------------------------
    def add_material(self, kind: str, headers: Any, body: bytes) -> dict[str, Any]:
        if kind not in LIMITS:
            raise WeChatError(40004, "invalid media type")
        parts = self.multipart(headers, body)
        if "media" not in parts:
            raise WeChatError(41005, "media data missing")
        filename, data = parts["media"]
        if not data:
            raise WeChatError(44001, "empty media data")
        if not filename.lower().endswith(EXTS[kind]):
            raise WeChatError(40113, "unsupported file type")
        if len(data) > LIMITS[kind]:
            raise WeChatError(45001, "media size out of limit")
        if kind in ("thumb",) and not data.startswith(b"\xff\xd8"):
            raise WeChatError(40005, "invalid file type")
        if kind == "video" and data[4:8] != b"ftyp":
            raise WeChatError(40005, "invalid file type")
        description: dict[str, Any] = {}
        if kind == "video":
            if "description" not in parts:
                raise WeChatError(40005, "video description missing")
            description = self.json(parts["description"][1])
            if not description.get("title"):
                raise WeChatError(47001, "data format error")
        media_id = "MEDIA_" + secrets.token_urlsafe(16)
        self.materials[media_id] = Material(media_id, kind, filename, data, description, int(self.now()))
        self.names[media_id] = filename
        if kind == "video":
            return {"media_id": media_id}
        return {"media_id": media_id, "url": f"http://mmbiz.qpic.cn/mmbiz_jpg/{media_id}/0"}

    def api_material_del_material(self, req: dict[str, Any]) -> dict[str, Any]:
        if self.materials.pop(str(req.get("media_id")), None) is None:
            raise WeChatError(40007, "invalid media_id")
        return {"errcode": 0, "errmsg": "ok"}

    def api_material_batchget_material(self, req: dict[str, Any]) -> dict[str, Any]:
        count = int(req.get("count", 0))
        if req.get("type") not in LIMITS or not 1 <= count <= 20:
            raise WeChatError(40002, "invalid argument")
        items = sorted((m for m in self.materials.values() if m.type == req["type"]),
                       key=lambda m: -m.update_time)
        page = items[int(req.get("offset", 0)):][:count]
        return {"total_count": len(items), "item_count": len(page),
                "item": [{"media_id": m.media_id, "name": m.name, "update_time": m.update_time}
                         for m in page]}

    # --- drafts -----------------------------------------------------------------------------
    def article(self, a: Any) -> dict[str, Any]:
        if not isinstance(a, dict):
            raise WeChatError(47001, "data format error")
        title, content = str(a.get("title", "")), str(a.get("content", ""))
        if not title:
            raise WeChatError(44003, "empty news data")
        if len(title) > 32:
            raise WeChatError(45003, "title size out of limit")
        if len(str(a.get("author", ""))) > 16:
            raise WeChatError(45110, "author size out of limit")
        if len(str(a.get("digest", ""))) > 128:
            raise WeChatError(45004, "description size out of limit")
        if not content or len(content) >= 20000:
            raise WeChatError(45166, "invalid content")
        thumb = self.materials.get(str(a.get("thumb_media_id", "")))
        if thumb is None or thumb.type not in ("thumb", "image"):
            raise WeChatError(40007, "invalid media_id")
        a = dict(a)
        a["content"] = re.sub(r"<(script|video)\b.*?</\1>", "", content, flags=re.S | re.I)
        return a

    def api_draft_add(self, req: dict[str, Any]) -> dict[str, Any]:
        articles = req.get("articles")
        if not isinstance(articles, list) or not articles:
            raise WeChatError(47001, "data format error")
        media_id = "DRAFT_" + secrets.token_urlsafe(16)
        self.drafts[media_id] = {"articles": [self.article(a) for a in articles],
                                 "update_time": int(self.now())}
        return {"media_id": media_id}

    def _draft(self, req: dict[str, Any]) -> dict[str, Any]:
        draft = self.drafts.get(str(req.get("media_id")))
        if draft is None:
            raise WeChatError(40007, "invalid media_id")
        return draft

    def api_draft_get(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"news_item": [dict(a, url="https://mp.weixin.qq.com/s?preview")
                              for a in self._draft(req)["articles"]]}

    def api_draft_update(self, req: dict[str, Any]) -> dict[str, Any]:
        draft = self._draft(req)
        index = int(req.get("index", -1))
        if not 0 <= index < len(draft["articles"]):
            raise WeChatError(40002, "invalid argument")
        draft["articles"][index] = self.article(req.get("articles"))
        draft["update_time"] = int(self.now())
        return {"errcode": 0, "errmsg": "ok"}

    def api_draft_delete(self, req: dict[str, Any]) -> dict[str, Any]:
        self._draft(req)
        del self.drafts[str(req["media_id"])]
        return {"errcode": 0, "errmsg": "ok"}

    def api_draft_batchget(self, req: dict[str, Any]) -> dict[str, Any]:
        items = [{"media_id": k, "update_time": d["update_time"], "content": {"news_item": d["articles"]}}
                 for k, d in self.drafts.items()]
        page = items[int(req.get("offset", 0)):][:int(req.get("count", 20))]
        return {"total_count": len(items), "item_count": len(page), "item": page}

    # --- freepublish ------------------------------------------------------------------------
    def api_freepublish_submit(self, req: dict[str, Any]) -> dict[str, Any]:
        draft = self._draft(req)
        del self.drafts[str(req["media_id"])]  # published drafts leave the draft box
        publish_id = 2247483000 + len(self.jobs) + 1
        self.jobs[publish_id] = PublishJob(publish_id, draft["articles"], self.now() + self.publish_seconds,
                                           self.publish_outcome)
        return {"errcode": 0, "errmsg": "ok", "publish_id": publish_id,  # an integer, as live
                "msg_data_id": publish_id + 1}

    def api_freepublish_get(self, req: dict[str, Any]) -> dict[str, Any]:
        try:
            job = self.jobs[int(req.get("publish_id", ""))]
        except (ValueError, KeyError):
            raise WeChatError(40002, "invalid argument") from None
        answer: dict[str, Any] = {"publish_id": str(job.publish_id), "publish_status": job.status,
                                  "fail_idx": [1] if job.status in (2, 4) else []}
        if job.article_id:
            art = self.articles[job.article_id]
            answer["article_id"] = job.article_id
            answer["article_detail"] = {"count": 1, "item": [{"idx": 1, "article_url": art["url"]}]}
        return answer

    def _article(self, req: dict[str, Any]) -> dict[str, Any]:
        art = self.articles.get(str(req.get("article_id")))
        if art is None:
            raise WeChatError(53600, "Article ID 无效")
        return art

    def api_freepublish_delete(self, req: dict[str, Any]) -> dict[str, Any]:
        art = self._article(req)
        art["deleted"] = True
        self.jobs[art["publish_id"]].status = 5
        return {"errcode": 0, "errmsg": "ok"}

    def api_freepublish_getarticle(self, req: dict[str, Any]) -> dict[str, Any]:
        art = self._article(req)
        return {"news_item": [dict(a, url=art["url"], is_deleted=art["deleted"]) for a in art["articles"]]}

    def api_freepublish_batchget(self, req: dict[str, Any]) -> dict[str, Any]:
        items = [{"article_id": k, "update_time": a["update_time"],
                  "content": {"news_item": [dict(n, url=a["url"], is_deleted=a["deleted"])
                                            for n in a["articles"]]}}
                 for k, a in self.articles.items() if not a["deleted"]]
        page = items[int(req.get("offset", 0)):][:int(req.get("count", 20))]
        return {"total_count": len(items), "item_count": len(page), "item": page}

    # --- views for tests --------------------------------------------------------------------
    def live_articles(self) -> list[dict[str, Any]]:
        return [dict(a["articles"][0], article_id=k, url=a["url"])
                for k, a in self.articles.items() if not a["deleted"]]

    def thumb_names(self) -> dict[str, str]:
        return {m.media_id: m.name for m in self.materials.values() if m.type in ("thumb", "image")}

    def objects_for(self, cover_name: str) -> dict[str, dict[str, Any]]:
        """Drafts, running publish jobs and live articles whose cover material was ``cover_name``:
        ``{"draft:ID" | "publishing:ID" | "article:ID": first article}``."""
        def ours(articles: list[dict[str, Any]]) -> bool:
            return self.names.get(str(articles[0].get("thumb_media_id"))) == cover_name
        with self.lock:
            self.tick()
            found = {f"draft:{k}": d["articles"][0] for k, d in self.drafts.items() if ours(d["articles"])}
            found.update({f"publishing:{k}": j.articles[0] for k, j in self.jobs.items()
                          if j.status == 1 and ours(j.articles)})
            found.update({f"article:{k}": a["articles"][0] for k, a in self.articles.items()
                          if not a["deleted"] and ours(a["articles"])})
        return found
