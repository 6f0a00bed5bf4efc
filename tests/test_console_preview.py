"""Previews in the console over real HTTP (uvicorn on 127.0.0.1, httpx): a manifest in
releases_dir, or a recorded release, previewed by a publisher (a viewer may only look); files
served from the private preview folder only, with their content types and a strict policy;
'..', hidden names and symbolic links refused."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx

from publisher.console.previews import FILE_CSP
from tests.conftest import Project
from tests.console_site import Site, field, site  # noqa: F401

Make = Callable[..., Site]
PUBLIC = "https://www.example.gov.hk/videos/"


def website(proj: Project) -> None:
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"), "public_url": PUBLIC})


def preview(s: Site, client: httpx.Client) -> dict[str, Any]:
    """Preview release.yaml from the releases folder; the finished task's record, with its page."""
    page = client.get("/start")
    r = client.post("/start/preview", data={"csrf": field(page.text, "csrf"), "manifest": "release.yaml"})
    assert r.status_code == 303 and r.headers["location"].startswith("/tasks/"), r.text
    record = s.wait_task(client, int(r.headers["location"].rsplit("/", 1)[1]))
    return {**record, "page": client.get(r.headers["location"]).text}


def test_a_manifest_is_previewed_before_release_and_served_from_the_private_folder(site: Make) -> None:
    s = site(setup=website)
    s.start()
    www = s.proj.root / "www"
    with s.login("vera") as viewer:
        page = viewer.get("/start")
        r = viewer.post("/start/preview", data={"csrf": field(page.text, "csrf"), "manifest": "release.yaml"})
        assert r.status_code == 403
        assert viewer.get(f"/previews/{s.rid}").status_code == 404  # none made
    assert not (s.proj.state_dir / "previews").exists()
    with s.login("pat") as pat:
        task = preview(s, pat)
        assert task["state"] == "done", task
        # the drop channel's kind has no preview: said, not a failure
        rows = {r["channel"]: r for r in task["results"]}
        assert rows["web"]["state"] == "previewed" and rows["drop-a"]["state"] == "none"
        assert f'<a href="/previews/{s.rid}">Open the preview of {s.rid}</a>' in task["page"]
        shown = pat.get(f"/previews/{s.rid}")
        assert shown.status_code == 200
        for text in ("Preview: Consular Protection", "Open the player page (web, English)", "領事保護",
                     f"{PUBLIC}{s.rid}/", "Nothing has been sent"):
            assert text in shown.text
        assert "drop channels have no preview" in shown.text
        assert shown.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
        assert f'<a href="/previews/{s.rid}">Preview of {s.rid}</a>' in pat.get("/start").text
        one = pat.get(f"/previews/{s.rid}?lang=zh-Hans").text
        assert "领事保护" in one and "Open the player page (web, English)" not in one
    with s.login("vera") as viewer:  # a viewer sees it, and gets no button to make one
        base = f"/previews/{s.rid}/files/web/"
        page = viewer.get(base + "index.html")
        assert page.status_code == 200 and ">Consular Protection</h1>" in page.text
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-security-policy"] == FILE_CSP
        assert "unsafe-inline" not in FILE_CSP.split("script-src")[1].split(";")[0]
        assert page.headers["x-frame-options"] == "SAMEORIGIN" and page.headers["cache-control"] == "no-store"
        video = viewer.get(base + "video.mp4", headers={"Range": "bytes=0-99"})
        assert video.status_code == 206 and video.headers["content-type"] == "video/mp4"
        assert len(video.content) == 100
        assert viewer.get(base + "hls/master.m3u8").headers["content-type"] == "application/vnd.apple.mpegurl"
        assert viewer.get(base + "captions/en.vtt").headers["content-type"] == "text/vtt; charset=utf-8"
        assert viewer.get(base + "poster.jpg").headers["content-type"] == "image/jpeg"
        assert "Preview every channel" not in viewer.get(f"/previews/{s.rid}").text
    assert not www.exists()  # served from the preview folder: nothing is public
    assert s.store().get_release(s.rid) is None and s.store().events(s.rid) == []
    with s.client() as anonymous:
        r = anonymous.get(f"/previews/{s.rid}/files/web/index.html", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_preview_files_refuse_traversal_hidden_names_and_links(site: Make) -> None:
    s = site(setup=website)
    s.start()
    folder = s.proj.state_dir / "previews" / s.rid
    with s.login("pat") as pat:
        assert preview(s, pat)["state"] == "done"
        (folder / "web" / ".staging").write_text("not for the web", encoding="utf-8")
        (s.proj.state_dir / "secret.txt").write_text("not for the web", encoding="utf-8")
        os.symlink(s.proj.state_dir / "secret.txt", folder / "web" / "link.txt")
        os.symlink(s.proj.state_dir, folder / "web" / "up")
        os.symlink(s.proj.state_dir, folder / "shortcut")
        base = f"{s.url}/previews/{s.rid}/files"
        refused = [f"{base}/web/%2e%2e/%2e%2e/%2e%2e/secret.txt", f"{base}/web/..%2f..%2f..%2fsecret.txt",
                   f"{base}/web/link.txt", f"{base}/web/up/secret.txt", f"{base}/shortcut/secret.txt",
                   f"{base}/web/%2e%2e/preview.json", f"{base}/web/", f"{base}/web/hls",
                   f"{base}/nochannel/index.html", f"{base}/web/.staging",
                   f"{base}/.{s.rid}/index.html", f"{s.url}/previews/..%2f..%2fstate/files/web/index.html"]
        for url in refused:
            r = pat.send(pat.build_request("GET", url), follow_redirects=False)
            assert r.status_code == 404 and "not for the web" not in r.text, url
        assert pat.get(f"{base}/web/index.html").status_code == 200


def test_a_recorded_release_is_previewed_from_its_page(site: Make, cli: Any) -> None:
    s = site(setup=website)
    s.start()
    s.proj.channels.pop("drop-a")
    s.proj.write()
    assert cli(s.proj, "release", s.proj.manifest_path).exit_code == 0
    before = [(e.action, e.message) for e in s.store().events(s.rid)]
    with s.login("pat") as pat:
        page = pat.get(f"/releases/{s.rid}").text
        assert "No preview yet." in page and "Preview every channel" in page
        r = pat.post(f"/previews/{s.rid}", data={"csrf": field(page, "csrf")})
        assert r.status_code == 303
        done = s.wait_task(pat, int(r.headers["location"].rsplit("/", 1)[1]))
        assert done["state"] == "done", done
        assert "Preview of every channel" in pat.get(f"/releases/{s.rid}").text
        r = pat.post(f"/previews/{s.rid}", data={"csrf": "forged"})
        assert r.status_code == 403
    with s.login("vera") as viewer:
        r = viewer.post(f"/previews/{s.rid}", data={"csrf": field(viewer.get("/").text, "csrf")})
        assert r.status_code == 403
    assert [(e.action, e.message) for e in s.store().events(s.rid)] == before  # nothing recorded
