"""The fake YouTube's resource calls (videos, captions, thumbnails, playlists, channels).

Mixed into the request handler of youtube_server.py; each ``do_<resource>_<method>`` runs with
the model's lock held, after authentication and quota.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import secrets
from typing import Any

from tests.fakes.youtube_model import ApiError, rfc3339


class ResourceCalls:
    server: Any
    q: dict[str, str]
    headers: Any

    def body(self, limit: int | None = None) -> bytes:
        raise NotImplementedError

    def send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        raise NotImplementedError

    # --- videos ------------------------------------------------------------------------------
    def do_videos_list(self) -> None:
        m = self.server.model
        parts = self.q.get("part", "").split(",")
        items = [m.resource(m.videos[i], parts) for i in self.q.get("id", "").split(",")
                 if i in m.videos and not m.videos[i].deleted]
        self.send(200, {"kind": "youtube#videoListResponse", "items": items,
                        "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}})

    def do_videos_update(self) -> None:
        m = self.server.model
        parts = self.q.get("part", "").split(",")
        body = json.loads(self.body() or b"{}")
        v = m.live(body.get("id", ""))
        m.check_metadata(body, parts, update=True)
        if "snippet" in parts:
            v.snippet = dict(body["snippet"], channelId=m.channel_id, publishedAt=rfc3339(v.published))
        if "localizations" in parts:
            v.localizations = dict(body.get("localizations") or {})
        if "status" in parts:
            v.status = dict(m.new_status(body.get("status") or {}), uploadStatus=v.status["uploadStatus"])
            m.flip_scheduled(v)
        self.send(200, m.resource(v, parts))

    def do_videos_delete(self) -> None:
        self.body()
        self.server.model.live(self.q.get("id", "")).deleted = True
        self.send(204)

    # --- captions, thumbnails ------------------------------------------------------------------
    def do_captions_insert(self) -> None:
        m = self.server.model
        if self.q.get("uploadType") != "multipart":
            raise ApiError(400, "badRequest", "Use uploadType=multipart for captions here.")
        raw = self.body()
        head = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        parts = list(msg.iter_parts()) if msg.is_multipart() else []
        if len(parts) != 2:
            raise ApiError(400, "contentRequired", "The request does not contain the caption track contents.")
        meta = json.loads(bytes(parts[0].get_payload(decode=True) or b"{}"))
        content = bytes(parts[1].get_payload(decode=True) or b"")
        sn = meta.get("snippet") or {}
        if not content:
            raise ApiError(400, "contentRequired", "The request does not contain the caption track contents.")
        if not sn.get("language") or not sn.get("videoId") or "name" not in sn:
            raise ApiError(400, "invalidMetadata", "The request contains invalid metadata values.")
        if len(sn["name"]) > 150:
            raise ApiError(400, "nameTooLong", "The caption track name is too long.")
        v = m.live(sn["videoId"])
        for c in v.captions.values():
            if c["snippet"]["language"] == sn["language"] and c["snippet"]["name"] == sn["name"]:
                raise ApiError(409, "captionExists", "The specified video already has a caption track "
                               "with the given snippet.language and snippet.name.")
        cid = "AUieDa" + secrets.token_urlsafe(12)
        res = {"kind": "youtube#caption", "id": cid, "snippet": {
            "videoId": v.id, "language": sn["language"], "name": sn["name"],
            "isDraft": bool(sn.get("isDraft", False)), "trackKind": "standard", "status": "serving",
            "lastUpdated": rfc3339(m.now())}}
        v.captions[cid] = res
        v.caption_bytes[cid] = content
        self.send(200, res)

    def do_captions_list(self) -> None:
        v = self.server.model.live(self.q.get("videoId", ""))
        self.send(200, {"kind": "youtube#captionListResponse", "items": list(v.captions.values())})

    def do_captions_delete(self) -> None:
        self.body()
        cid = self.q.get("id", "")
        for v in self.server.model.videos.values():
            if cid in v.captions:
                del v.captions[cid]
                del v.caption_bytes[cid]
                return self.send(204)
        raise ApiError(404, "captionNotFound", "The caption track could not be found.")

    def do_thumbnails_set(self) -> None:
        m = self.server.model
        data = self.body()
        v = m.live(self.q.get("videoId", ""))
        if not m.custom_thumbnails:
            raise ApiError(403, "forbidden", "The authenticated user doesn't have permissions to upload "
                           "and set custom video thumbnails.")
        if not data:
            raise ApiError(400, "mediaBodyRequired", "The request does not include the image content.")
        if len(data) > m.thumbnail_max:
            raise ApiError(400, "invalidImage", "The provided image content is too large.")
        if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
            raise ApiError(400, "invalidImage", "The provided image content is invalid.")
        v.thumbnail = data
        url = f"https://i.ytimg.com/vi/{v.id}/maxresdefault.jpg"
        self.send(200, {"kind": "youtube#thumbnailSetResponse",
                        "items": [{"default": {"url": url, "width": 120, "height": 90}}]})

    # --- playlists and channel -----------------------------------------------------------------
    def do_playlistItems_insert(self) -> None:
        m = self.server.model
        sn = (json.loads(self.body() or b"{}").get("snippet") or {})
        pl = m.playlists.get(sn.get("playlistId", ""))
        if pl is None:
            raise ApiError(404, "playlistNotFound", "The playlist identified with the request's "
                           "playlistId parameter cannot be found.")
        v = m.live((sn.get("resourceId") or {}).get("videoId", ""))
        item = {"kind": "youtube#playlistItem", "id": "PLI" + secrets.token_urlsafe(10),
                "snippet": {"playlistId": sn["playlistId"], "position": len(pl),
                            "title": v.snippet.get("title"), "publishedAt": rfc3339(m.now()),
                            "resourceId": {"kind": "youtube#video", "videoId": v.id}},
                "contentDetails": {"videoId": v.id, "videoPublishedAt": rfc3339(v.published)}}
        pl.append(item)
        self.send(200, item)

    def do_playlistItems_list(self) -> None:
        m = self.server.model
        pid = self.q.get("playlistId", "")
        if pid == m.uploads_playlist:
            items = m.uploads_items()
        elif pid in m.playlists:
            items = [i for i in m.playlists[pid]
                     if not m.videos[i["contentDetails"]["videoId"]].deleted]
        else:
            raise ApiError(404, "playlistNotFound", "The playlist cannot be found.")
        if self.q.get("videoId"):
            items = [i for i in items if i["contentDetails"]["videoId"] == self.q["videoId"]]
        size = min(int(self.q.get("maxResults", "5")), 50)
        start = int(self.q.get("pageToken") or 0)
        page: dict[str, Any] = {"kind": "youtube#playlistItemListResponse",
                                "items": items[start:start + size],
                                "pageInfo": {"totalResults": len(items), "resultsPerPage": size}}
        if start + size < len(items):
            page["nextPageToken"] = str(start + size)
        self.send(200, page)

    def do_channels_list(self) -> None:
        m = self.server.model
        self.send(200, {"kind": "youtube#channelListResponse", "items": [{
            "kind": "youtube#channel", "id": m.channel_id,
            "contentDetails": {"relatedPlaylists": {"uploads": m.uploads_playlist, "likes": ""}}}]})
