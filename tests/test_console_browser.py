"""The console in Chromium through Playwright: sign-in, wrong password, roles, CSRF refusal,
four eyes, a release started from releases_dir going live (the real website channel), withdraw
with confirmation, a preview of each channel kind before release (the player plays from the
preview); axe-core on the login, dashboard, release and preview pages; every page at 390 px.

Pages update live (the release and task pages poll their fragments): the tests wait for the new
state to appear without reloading. Screenshots go to the test's tmp folder and to
``$PUBLISHER_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.console_site import PASSWORD, Site, site  # noqa: F401
from tests.test_player_browser import PLAYS
from tests.test_preview import PUBLIC_WEB, full_project
from tests.test_secrets import Services, services  # noqa: F401

Make = Callable[..., Site]
WAIT = 120_000  # ms: a first encode of the session's master may run inside this


@pytest.fixture
def browser(chromium: Any) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def page(width: int = 1200) -> Any:
        context = chromium.new_context(viewport={"width": width, "height": 900})
        contexts.append(context)
        p = context.new_page()
        p.set_default_timeout(WAIT)
        return p

    yield page
    for c in contexts:
        c.close()


def sign_in(page: Any, s: Site, name: str, password: str = PASSWORD) -> None:
    page.goto(s.url + "/")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def axe_serious(page: Any) -> list[str]:
    """Serious and critical axe-core violations on the page (all of them are printed)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    found = results.response["violations"]
    ran = len(results.response["passes"]) + len(results.response["incomplete"])
    assert ran > 10, "axe-core did not run its rules"
    print(f"axe {page.url}: {ran} rules checked, {len(found)} violation(s)")
    for v in found:
        print(f"axe {page.url}: {v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])} node(s))")
    return [f"{v['id']} ({v['impact']})" for v in found if v["impact"] in ("serious", "critical")]


def fits_390(page: Any) -> bool:
    page.set_viewport_size({"width": 390, "height": 844})
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= 390"))


def shot(page: Any, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("PUBLISHER_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["PUBLISHER_SCREENSHOTS"]) / path.name)


def website(proj: Project) -> None:
    www = proj.root / "www"
    proj.add_channel("web", {"kind": "website", "target": str(www),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.channels.pop("drop-a")


def test_sign_in_wrong_password_roles_and_csrf(site: Make, cli: Any, browser: Any, tmp_path: Path) -> None:
    s = site()
    s.start()
    assert cli(s.proj, "release", s.proj.manifest_path).exit_code == 0
    page = browser()
    page.goto(s.url + f"/releases/{s.rid}")
    assert page.get_by_role("heading", name="Sign in").is_visible()
    assert axe_serious(page) == []
    assert fits_390(page)
    page.set_viewport_size({"width": 1200, "height": 900})
    sign_in(page, s, "vera", "not the password")
    assert page.get_by_role("alert").inner_text() == "Wrong user name or password."
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Publications").wait_for()
    assert page.get_by_text("vera (viewer)").is_visible()
    page.get_by_role("link", name="Consular Protection").click()
    assert page.get_by_role("heading", name="Consular Protection", exact=True).is_visible()
    assert page.get_by_role("button", name="Withdraw…").count() == 0  # a viewer gets no buttons
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, s, "pat")
    page.goto(s.url + f"/releases/{s.rid}")
    # a forged form (a stale or foreign CSRF token) is refused and changes nothing
    page.evaluate("() => document.querySelectorAll('input[name=csrf]').forEach(i => i.value = 'forged')")
    page.get_by_role("button", name="Withdraw on drop-a…").click()
    assert page.get_by_role("heading", name="Refused").is_visible()
    assert "did not come from this console" in page.get_by_role("alert").inner_text()
    assert s.states() == {"drop-a": "live"}
    shot(page, tmp_path / "console-csrf-refused.png")
    # the release page follows changes made elsewhere (here the CLI) without being reloaded
    page.goto(s.url + f"/releases/{s.rid}")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    assert cli(s.proj, "withdraw", s.rid, "--yes").exit_code == 0
    page.locator(".state.s-withdrawn").wait_for()
    assert navigations == []


def test_release_from_releases_dir_goes_live_then_withdraw_with_confirmation(
        site: Make, browser: Any, tmp_path: Path) -> None:
    s = site(setup=website)
    s.start()
    www = s.proj.root / "www"
    page = browser()
    sign_in(page, s, "pat")
    page.get_by_role("link", name="Releases to start").click()
    page.get_by_role("button", name="Check release.yaml").click()
    page.get_by_text("all checks passed").wait_for()  # the task page follows the work live
    page.goto(s.url + "/start")
    page.get_by_role("button", name="Release release.yaml").click()
    page.locator("#task-state", has_text="done").wait_for()
    assert page.get_by_role("cell", name="live").count() == 1
    page.get_by_role("link", name=f"Open the release {s.rid}").click()
    assert page.locator(".state.s-live").count() == 1
    assert (www / s.rid / "video.mp4").is_file()
    assert page.get_by_role("link", name=f"https://www.example.gov.hk/videos/{s.rid}/").is_visible()
    assert axe_serious(page) == []
    shot(page, tmp_path / "console-release.png")
    assert fits_390(page)
    shot(page, tmp_path / "console-release-390.png")
    page.set_viewport_size({"width": 1200, "height": 900})
    page.get_by_role("button", name="Withdraw on web…").click()
    assert page.get_by_role("heading", name="Withdraw: Consular Protection?").is_visible()
    assert (www / s.rid / "video.mp4").is_file()  # nothing happens before the confirmation
    assert axe_serious(page) == [] and fits_390(page)
    page.get_by_role("button", name="Yes, withdraw").click()
    page.locator(".state.s-withdrawn").first.wait_for()  # appears without reloading
    assert not (www / s.rid / "video.mp4").exists()
    assert s.states() == {"web": "withdrawn"}
    page.get_by_role("link", name="Dashboard").first.click()
    assert axe_serious(page) == []
    assert fits_390(page)
    shot(page, tmp_path / "console-dashboard-390.png")


def test_four_eyes_refused_then_approved_by_a_second_user(site: Make, browser: Any, tmp_path: Path) -> None:
    s = site(approval=True)
    s.start()
    target = s.proj.root / "www-drop-a"
    paul = browser()
    sign_in(paul, s, "paul")
    paul.get_by_role("link", name="Releases to start").click()
    paul.get_by_role("button", name="Release release.yaml").click()
    paul.locator("#task-state", has_text="done").wait_for()
    assert paul.get_by_text("awaiting approval").first.is_visible()
    paul.get_by_role("link", name=f"Open the release {s.rid}").click()
    assert paul.get_by_text("another approver must approve it (four eyes)").is_visible()
    paul.get_by_role("button", name="Approve this content").click()
    assert paul.get_by_role("heading", name="Another approver is needed").is_visible()
    assert s.store().approval(s.rid) is None and not (target / s.rid).exists()
    quinn = browser(width=390)
    sign_in(quinn, s, "quinn")
    quinn.goto(s.url + f"/releases/{s.rid}")
    assert quinn.get_by_text("submitted by paul").is_visible()
    assert quinn.evaluate("() => document.documentElement.scrollWidth <= 390")
    shot(quinn, tmp_path / "console-approve-390.png")
    quinn.get_by_role("button", name="Approve this content").click()
    quinn.locator(".state.s-live").first.wait_for()  # released in the background, shown live
    assert (target / s.rid / "index.html").exists()
    assert s.store().approval(s.rid)[0] == "quinn"  # type: ignore[index]
    assert quinn.get_by_role("cell", name="quinn").count() >= 2  # approve and release, by name


def every_kind(services: Services, monkeypatch: pytest.MonkeyPatch) -> Callable[[Project], None]:
    """A website on WebDAV, an app feed with push, WeChat, YouTube (the fakes) and signage."""
    def setup(proj: Project) -> None:
        proj.channels.pop("drop-a")
        full_project(proj, services, monkeypatch)
    return setup


IMAGES_LOADED = """() => Array.from(document.querySelectorAll('main img'))
    .map(i => [i.alt, i.complete && i.naturalWidth > 0])"""


def test_preview_of_each_channel_kind_before_release(
        site: Make, browser: Any, services: Services, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        tmp_path: Path) -> None:
    s = site(setup=every_kind(services, monkeypatch))
    s.start()
    page = browser()
    sign_in(page, s, "pat")
    page.get_by_role("link", name="Releases to start").click()
    assert axe_serious(page) == [] and fits_390(page)  # four buttons a manifest, on a phone too
    page.set_viewport_size({"width": 1200, "height": 900})
    page.get_by_role("button", name="Preview release.yaml").click()
    page.locator("#task-state", has_text="done").wait_for()
    assert axe_serious(page) == [] and fits_390(page)  # the task page
    page.set_viewport_size({"width": 1200, "height": 900})
    page.get_by_role("link", name=f"Open the preview of {s.rid}").click()
    assert page.get_by_role("heading", name="Preview: Consular Protection").is_visible()
    for name, kind in (("dav-web", "website"), ("app", "app-feed"), ("wechat", "wechat"),
                       ("youtube", "youtube"), ("hall", "signage")):
        assert page.get_by_role("heading", name=f"{name} ({kind})", exact=True).is_visible()
    images = page.evaluate(IMAGES_LOADED)
    assert len(images) == 3 + 3 + 1 + 3 + 1 and all(ok for _, ok in images), images
    for text in ("入境事務處", "consular protection, travel safety", "领事保护动画短片。", "lobby"):
        assert page.get_by_text(text).first.is_visible()
    assert axe_serious(page) == []
    shot(page, tmp_path / "console-preview.png")
    assert fits_390(page)
    shot(page, tmp_path / "console-preview-390.png")
    page.set_viewport_size({"width": 1200, "height": 900})
    # one language at a time
    page.get_by_role("link", name="繁體中文", exact=True).click()
    assert page.get_by_role("heading", name="youtube · 繁體中文").is_visible()
    assert page.get_by_role("heading", name="youtube · English").count() == 0
    # the WeChat article as it will read, then the website's player page, which plays
    page.get_by_role("link", name="All languages").click()
    page.get_by_role("link", name="Open the article (wechat, 简体中文)").click()
    assert page.get_by_role("heading", name="领事保护").is_visible()
    assert page.get_by_role("link", name="观看视频").get_attribute("href") == f"{PUBLIC_WEB}{s.rid}/"
    page.go_back()
    page.get_by_role("link", name="Open the player page (dav-web, English)").click()
    assert page.get_by_role("heading", name="Consular Protection").is_visible()
    played = page.evaluate(PLAYS)
    assert played["error"] is None and played["now"] > played["start"] + 0.3, played
    assert f"/previews/{s.rid}/files/dav-web/" in played["src"]
    assert fits_390(page)
    shot(page, tmp_path / "console-preview-player-390.png")
    # nothing went anywhere, nothing was recorded
    assert list(services.dav.root.rglob("*")) == [] and services.youtube.model.log == []
    assert services.wechat.fake.calls == [] and services.fcm.messages == []
    assert s.store().get_release(s.rid) is None
