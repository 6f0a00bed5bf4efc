"""Previews in the console: every channel's output, per language, before anything is sent.

A preview is rendered by the engine into the state folder (``publisher preview``); the console
starts one (for a manifest in ``releases_dir``, or a recorded release), shows it side by side, and
serves its files (the website's player page with its video) from that private folder only, never
from a public tree: a plain file reached through plain folders, with its own content type.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath

from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from publisher.errors import InputError

from .app import Call, Console, endpoint

log = logging.getLogger("publisher.console")
TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".jpg": "image/jpeg",
         ".png": "image/png", ".mp4": "video/mp4", ".m3u8": "application/vnd.apple.mpegurl",
         ".ts": "video/mp2t", ".m4s": "video/iso.segment", ".vtt": "text/vtt; charset=utf-8"}
#: the rendered pages carry their own inline styles (as they will when published); no script runs
FILE_CSP = ("default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self' 'unsafe-inline'; "
            "script-src 'none'; form-action 'none'; frame-ancestors 'self'; base-uri 'none'")
LANGUAGES = {"en": "English", "zh-Hant": "繁體中文", "zh-Hans": "简体中文"}
PAGE = {"website": "Open the player page", "app-feed": "The feed item (JSON)", "wechat": "Open the article",
        "youtube": "The video resource (JSON)", "signage": "The playlist item (JSON)"}
IMAGE = {"website": "Poster", "app-feed": "Poster in the app", "wechat": "Cover",
         "youtube": "Thumbnail", "signage": "Frame of the signage video with its burned subtitles"}


def preview_page(call: Call) -> Response:
    rid = call.request.path_params["rid"]
    core = call.console.core
    found = core.last_preview(rid)
    recorded = core.exists(rid)
    if found is None:
        how = ("Preview it from its page." if recorded else
               "Preview its manifest from Releases to start, or run `publisher preview RELEASE.yaml`.")
        return call.render("message.html.j2", 404, title="No preview yet",
                           message=f"There is no preview of '{rid}' yet. {how}", back="/start")
    languages = list(dict.fromkeys(s.language for c in found.channels for s in c.shown))
    lang = call.request.query_params.get("lang", "")
    return call.render("preview.html.j2", p=found, recorded=recorded, lang=lang if lang in languages else "",
                       languages=languages, names=LANGUAGES, page_label=PAGE, image_alt=IMAGE,
                       may_preview=call.who is not None and call.who.may("preview"))


def preview_file(call: Call) -> Response:
    params = call.request.path_params
    path = call.console.core.preview_file(params["rid"], params["channel"], params["name"])
    if path is None:
        return Response("not found", 404, media_type="text/plain")
    kind = TYPES.get(PurePosixPath(path.name).suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=kind, headers={
        "Cache-Control": "no-store", "Content-Security-Policy": FILE_CSP, "X-Frame-Options": "SAMEORIGIN"})


def start_preview(call: Call) -> Response:
    """POST /previews/{rid}: preview a recorded release again, from its manifest."""
    assert call.who is not None
    rid = call.request.path_params["rid"]
    if not call.who.may("preview"):
        log.warning("%s (%s) may not preview %s: refused", call.user, call.who.user.role.value, rid)
        return call.render("message.html.j2", 403, title="Not allowed",
                           message=f"Your role ({call.who.user.role.value}) cannot make previews.")
    core = call.console.core
    try:
        manifest = core.stored_manifest(rid)
    except InputError as exc:
        return call.render("message.html.j2", 404, title="Not found", message=str(exc))
    task = call.console.tasks.start("preview", rid, call.user, lambda t: core.preview(manifest, t))
    return RedirectResponse(f"/tasks/{task.id}", 303)


def preview_routes(console: Console) -> list[Route]:
    e = endpoint
    return [
        Route("/previews/{rid}", e(console, preview_page), methods=["GET"]),
        Route("/previews/{rid}", e(console, start_preview), methods=["POST"]),
        Route("/previews/{rid}/files/{channel}/{name:path}", e(console, preview_file), methods=["GET"]),
    ]

