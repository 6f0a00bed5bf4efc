"""WebDAV transport (RFC 4918) over requests: PUT, GET, MKCOL, MOVE (Overwrite: T), DELETE, PROPFIND."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET  # noqa: S405 - responses come from the configured server
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from channels.transports.base import CHUNK, Target, join, parent
from publisher.errors import AuthError, NotFound, Rejected, Transient, untrusted_certificate

#: request bodies go out in writes of this size (urllib3's own is 16 KiB); not larger, because
#: a socket's timeout bounds each whole write, which must cross a slow link well within it
SEND_BLOCK = 256 * 1024


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["blocksize"] = SEND_BLOCK
        super().init_poolmanager(*args, **kwargs)


class WebDAVTarget(Target):
    def __init__(self, url: str, *, username: str | None, password: str | None,
                 verify: bool | str, timeout: float, staging: str | None) -> None:
        parts = urlsplit(url)
        scheme = "https" if parts.scheme.lower() == "webdavs" else "http"
        self.origin = f"{scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
        self.base = "/" + parts.path.strip("/")
        self.where = self.origin + self.base
        if staging:
            self.staging_root = staging
        self.verify = verify
        self.timeout = timeout
        self.session = requests.Session()
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, _Adapter())
        if username is not None:
            self.session.auth = (username, password or "")
        self._made: set[str] = set()

    def _path(self, remote: str) -> str:
        full = remote if remote.startswith("/") else join(self.base, remote)
        return "/" + full.strip("/")

    def _url(self, remote: str) -> str:
        return self.origin + quote(self._path(remote))

    def _req(self, method: str, remote: str, ok: tuple[int, ...] = (), **kw: Any) -> requests.Response:
        what = f"WebDAV {method} {self._path(remote)} on {self.origin}"
        try:
            r = self.session.request(method, self._url(remote), verify=self.verify,
                                     timeout=self.timeout, **kw)
        except requests.RequestException as e:
            raise untrusted_certificate(e, what) \
                or Transient(f"{what}: connection failed ({e.__class__.__name__})") from e
        if r.status_code in ok or r.status_code < 300:
            return r
        if r.status_code in (401, 403):
            raise AuthError(f"{what}: refused ({r.status_code}); check username and password_env")
        if r.status_code == 404:
            raise NotFound(f"{what}: not found")
        if r.status_code in (413, 507):
            raise Rejected(f"{what}: the server has no room for this file ({r.status_code})")
        if r.status_code >= 500 or r.status_code in (408, 423, 429):
            raise Transient(f"{what}: server error {r.status_code}")
        raise Rejected(f"{what}: refused with {r.status_code} {r.reason}")

    def _parents(self, remote: str) -> None:
        self.mkdir(parent(remote))

    def put_file(self, local: Path, remote: str) -> None:
        self._parents(remote)
        with local.open("rb") as f:
            self._req("PUT", remote, data=f, headers={"Content-Length": str(local.stat().st_size)})

    def put_bytes(self, data: bytes, remote: str) -> None:
        self._parents(remote)
        self._req("PUT", remote, data=data)

    def get_bytes(self, remote: str) -> bytes:
        return self._req("GET", remote).content

    def exists(self, remote: str) -> bool:
        return self._req("PROPFIND", remote, ok=(404,), headers={"Depth": "0"}).status_code != 404

    def listdir(self, remote_dir: str) -> list[str]:
        r = self._req("PROPFIND", remote_dir, ok=(404,), headers={"Depth": "1"})
        if r.status_code == 404:
            return []
        own = self._path(remote_dir).rstrip("/")
        names = []
        for href in ET.fromstring(r.content).iter("{DAV:}href"):  # noqa: S314
            path = unquote(urlsplit(href.text or "").path).rstrip("/")
            if path and path != own:
                names.append(path.rsplit("/", 1)[-1])
        return sorted(names)

    def move(self, src: str, dst: str) -> None:
        self._parents(dst)
        self._req("MOVE", src, headers={"Destination": self._url(dst), "Overwrite": "T"})

    def delete(self, remote: str) -> None:
        self._req("DELETE", remote, ok=(404,))
        self._made = {m for m in self._made if not (m + "/").startswith(self._path(remote) + "/")}

    def mkdir(self, remote_dir: str, private: bool = False) -> None:
        path = self._path(remote_dir)
        if path in self._made or path == "/":
            return
        self.mkdir(parent(path))
        r = self._req("MKCOL", path, ok=(405,))  # 405: it exists already
        if r.status_code == 405 and not self.exists(path):
            raise Rejected(f"WebDAV MKCOL {path} on {self.origin}: refused (405)")
        self._made.add(path)

    def publish_modes(self, remote: str) -> None:
        pass  # a WebDAV server decides who may read what it stores

    def sha256(self, remote: str) -> str:
        h = hashlib.sha256()
        with self._req("GET", remote, stream=True) as r:
            try:
                for chunk in r.iter_content(CHUNK):
                    h.update(chunk)
            except requests.RequestException as e:
                raise Transient(f"WebDAV GET {self._path(remote)}: connection lost") from e
        return h.hexdigest()

    def close(self) -> None:
        self.session.close()
