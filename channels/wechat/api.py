"""A small client for the WeChat Official Account API (cgi-bin), for the ``wechat`` adapter.

WeChat answers errors as HTTP 200 with ``{"errcode": N, "errmsg": ...}``; every answer goes
through ``WeChatAPI._post``, which turns errcodes into publisher's exception tree. JSON is sent
as raw UTF-8 (``requests(json=)`` would ``\\u``-escape Chinese, which WeChat stores literally).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests

from publisher.contract import Clock, redact, remember_secret
from publisher.errors import (
    AuthError,
    ChannelError,
    NotFound,
    QuotaExhausted,
    RateLimited,
    Rejected,
    Transient,
    untrusted_certificate,
)

TOKEN_ERRORS = {40001, 40014, 42001}
CLOCK_SLACK = 600  # seconds: our clock and WeChat's may differ when matching upload times
REFRESH_MARGIN = 300  # seconds: WeChat renews stable tokens 5 minutes before expiry
CHINA = timezone(timedelta(hours=8))  # daily quotas reset at midnight, China time

# errcodes with a cause a person can act on; anything else is shown with its code and message
_AUTH = {
    40013: "the appid is not valid; check `appid` in the site config",
    40125: "the AppSecret is not valid; check the secret in the environment variable",
    40164: "this machine's IP address is not in the account's IP whitelist "
           "(公众平台 → 设置与开发 → 基本配置 → IP白名单)",
    40243: "the AppSecret is frozen; an administrator must unfreeze or reset it",
    48001: "the account is not allowed to use this API (freepublish needs a verified account)",
    50004: "the account may not call the token API",
    50007: "the account is frozen",
}
_REJECT = {
    40007: "invalid media_id (the material or draft does not exist)",
    40005: "file type not accepted",
    40113: "unsupported file type",
    45001: "file larger than WeChat allows",
    45003: "title too long",
    45004: "digest (summary) too long",
    45110: "author too long",
    45166: "article content rejected",
    53503: "the draft did not pass WeChat's publish check",
}


FileFactory = Callable[[], dict[str, tuple[str, Any, str]]]


def next_china_midnight(now: datetime) -> datetime:
    local = now.astimezone(CHINA)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)


def error_for(code: int, errmsg: str, what: str, now: datetime) -> ChannelError:
    """The publisher exception for a WeChat errcode met while doing ``what`` at ``now``."""
    shown = f"WeChat errcode {code} ({errmsg}) while {what}"
    if code == 45009:
        at = next_china_midnight(now)
        return QuotaExhausted(f"{shown}: the daily API quota is used up; publisher tries again after "
                           f"{at.isoformat()}", retry_at=at)
    if code == 45011:
        return RateLimited(f"{shown}: per-minute quota reached",
                           retry_at=now + timedelta(seconds=60))
    if code in (-1, 45033):
        return Transient(f"{shown}: WeChat is busy; retry later")
    if code in TOKEN_ERRORS:
        return AuthError(f"{shown}: WeChat refused the access token even after a refresh; check the "
                         "AppSecret, and whether another service force-refreshes this appid's token")
    if code in _AUTH:
        return AuthError(f"{shown}: {_AUTH[code]}")
    if code == 53600:
        return NotFound(f"{shown}: the article does not exist")
    if code in _REJECT:
        return Rejected(f"{shown}: {_REJECT[code]}")
    return Rejected(shown)


class WeChatAPI:
    """cgi-bin calls with one cached access token per appid (file in ``state_dir``, mode 0600),
    its expiry kept on ``clock``."""

    _locks: dict[str, threading.Lock] = {}

    def __init__(self, *, api_root: str, appid: str, secret: Callable[[], str], state_dir: Path,
                 verify: bool | str, clock: Clock, timeout: float = 60.0) -> None:
        self.base = api_root.rstrip("/") + "/cgi-bin/"
        self.appid = appid
        self.clock = clock
        self._secret = secret
        self.verify = verify
        self.timeout = timeout
        self.token_file = state_dir / f"wechat-token-{appid}.json"
        self.session = requests.Session()
        self._lock = self._locks.setdefault(appid, threading.Lock())

    # --- tokens -----------------------------------------------------------------------------
    def _cached(self) -> str:
        try:
            data = json.loads(self.token_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ""
        left = data.get("expires_at", 0) - self.clock.now().timestamp()
        if left > REFRESH_MARGIN and data.get("access_token"):
            return remember_secret(str(data["access_token"]))
        return ""

    def token(self, *, rejected: str = "") -> str:
        """A valid token: from the cache, else from stable_token (single-flight across processes).
        A ``rejected`` token is dropped from the cache first and never handed out again."""
        if rejected:
            self.forget(rejected)
        token = self._cached()
        if token and token != rejected:
            return token
        with self._lock, self._file_lock():
            token = self._cached()
            if token and token != rejected:
                return token  # another thread or process refreshed it meanwhile
            data = self._fetch_token(force=False)
            if data["access_token"] == rejected:
                data = self._fetch_token(force=True)
            self._store(data)
            return remember_secret(str(data["access_token"]))

    def forget(self, token: str) -> None:
        """Drop a token WeChat refused from the cache file (unless another process replaced it)."""
        with self._lock, self._file_lock():
            try:
                cached = json.loads(self.token_file.read_text(encoding="utf-8")).get("access_token")
            except (OSError, ValueError, AttributeError):
                return
            if cached == token:
                self.token_file.unlink(missing_ok=True)

    def _file_lock(self) -> Any:
        class _Lock:
            def __init__(self, path: Path) -> None:
                self.path = path
                self.fd = -1

            def __enter__(self) -> None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self.fd, fcntl.LOCK_EX)

            def __exit__(self, *exc: object) -> None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
        return _Lock(self.token_file.with_suffix(".lock"))

    def _fetch_token(self, *, force: bool) -> dict[str, Any]:
        body = {"grant_type": "client_credential", "appid": self.appid,
                "secret": self._secret(), "force_refresh": force}
        data = self._post("stable_token", body, token="", what="getting an access token")
        if not data.get("access_token"):
            raise Transient("WeChat's stable_token answer carried no access_token")
        return data

    def _store(self, data: dict[str, Any]) -> None:
        record = {"access_token": data["access_token"],
                  "expires_at": self.clock.now().timestamp() + int(data.get("expires_in", 7200))}
        tmp = self.token_file.with_name(f".{self.token_file.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        os.replace(tmp, self.token_file)

    # --- calls ------------------------------------------------------------------------------
    def call(self, path: str, body: dict[str, Any] | None = None, *, what: str,
             params: dict[str, str] | None = None, files: FileFactory | None = None,
             form: dict[str, str] | None = None, ok_codes: frozenset[int] = frozenset(),
             ) -> dict[str, Any]:
        """POST ``path`` with a token; on a token errcode refresh once and retry.

        Errcodes in ``ok_codes`` are returned (as the answer dict) instead of raised.
        """
        token = self.token()
        try:
            return self._post(path, body, token=token, what=what, params=params,
                              files=files, form=form, ok_codes=ok_codes)
        except _TokenRefused:
            token = self.token(rejected=token)
            try:
                return self._post(path, body, token=token, what=what, params=params,
                                  files=files, form=form, ok_codes=ok_codes)
            except _TokenRefused as again:
                self.forget(token)
                raise error_for(again.code, again.errmsg, what, self.clock.now()) from None

    def _post(self, path: str, body: dict[str, Any] | None, *, token: str, what: str,
              params: dict[str, str] | None = None, files: FileFactory | None = None,
              form: dict[str, str] | None = None, ok_codes: frozenset[int] = frozenset(),
              ) -> dict[str, Any]:
        query = dict(params or {})
        if token:
            query["access_token"] = token
        kwargs: dict[str, Any] = {"params": query, "verify": self.verify, "timeout": self.timeout}
        opened: dict[str, tuple[str, Any, str]] = {}
        if files is not None:
            opened = files()  # reopened per attempt: a drained file would upload 0 bytes
            kwargs["files"] = opened
            kwargs["data"] = form or {}
        elif body is not None:
            kwargs["data"] = json.dumps(body, ensure_ascii=False).encode("utf-8")
            kwargs["headers"] = {"Content-Type": "application/json; charset=utf-8"}
        try:
            resp = self.session.post(self.base + path, **kwargs)
        except requests.RequestException as exc:
            raise untrusted_certificate(exc, f"WeChat ({self.base}) while {what}") \
                or Transient(redact(f"cannot reach WeChat while {what}: {exc}")) from None
        finally:
            for _name, fh, _type in opened.values():
                if hasattr(fh, "close"):
                    fh.close()
        if resp.status_code >= 500 or resp.status_code == 429:
            raise Transient(f"WeChat answered HTTP {resp.status_code} while {what}")
        if resp.status_code >= 400:
            raise Rejected(f"WeChat answered HTTP {resp.status_code} while {what}")
        try:  # Content-Type varies between endpoints: parse whatever came
            data = json.loads(resp.content.decode("utf-8"))
        except ValueError:
            raise Transient(f"WeChat sent an answer that is not JSON while {what}") from None
        if not isinstance(data, dict):
            raise Transient(f"WeChat sent an unexpected answer while {what}")
        code = int(data.get("errcode") or 0)
        if code in ok_codes:
            return data
        if code:
            errmsg = redact(str(data.get("errmsg", "")))
            if code in TOKEN_ERRORS and token:
                raise _TokenRefused(code, errmsg)
            raise error_for(code, errmsg, what, self.clock.now())
        return data

    # --- finding what a lost answer created (so a resume never duplicates) -----------------
    def find_material(self, kind: str, name: str, since: float, exclude: set[str]) -> str:
        data = self.call("material/batchget_material", {"type": kind, "offset": 0, "count": 20},
                         what=f"looking for an earlier upload of {name}")
        found = [i for i in data.get("item", []) if i.get("name") == name and i.get("media_id") not in exclude
                 and float(i.get("update_time", 0)) >= since - CLOCK_SLACK]
        return str(max(found, key=lambda i: float(i["update_time"]))["media_id"]) if found else ""

    def find_draft(self, thumb_id: str, since: float) -> str:
        data = self.call("draft/batchget", {"offset": 0, "count": 20, "no_content": 1},
                         what="looking for an earlier draft")
        for item in data.get("item", []):
            news = item.get("content", {}).get("news_item", [])
            if float(item.get("update_time", 0)) >= since - CLOCK_SLACK and any(
                    n.get("thumb_media_id") == thumb_id for n in news):
                return str(item["media_id"])
        return ""

    def find_article(self, thumb_id: str, exclude: set[str]) -> tuple[str, str]:
        data = self.call("freepublish/batchget", {"offset": 0, "count": 20, "no_content": 1},
                         what="looking for the published article")
        for item in data.get("item", []):
            if str(item.get("article_id")) in exclude:
                continue
            for n in item.get("content", {}).get("news_item", []):
                # the docs spell it is_deleted, SDKs is_delete: accept both
                if n.get("thumb_media_id") == thumb_id and not (n.get("is_deleted") or n.get("is_delete")):
                    return str(item["article_id"]), str(n.get("url", ""))
        return "", ""


class _TokenRefused(Exception):
    def __init__(self, code: int, errmsg: str) -> None:
        self.code = code
        self.errmsg = errmsg
        super().__init__(f"{code} {errmsg}")
