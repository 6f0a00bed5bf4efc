"""The public pages and the HTML report as every visitor meets them, in the session's Chromium.

The player pages and the site index are published by the website adapter and served by nginx;
the report is written by `publisher status --html`. Each page is checked with axe-core
(``axe-playwright-python``: no serious or critical violation), with the keyboard alone (Tab
reaches every control, the focus shows, the player's play button works), for its ``lang``
attributes (the page's language on ``<html>``, and no Chinese text inside an element whose
language is not Chinese), and the captions' size on a phone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from channels.website.adapter import Website
from channels.website.options import WebsiteOptions
from publisher.contract import Journal
from publisher.models import Rendition
from tests.conftest import Project
from tests.renditions import job, make_release, session_renditions
from tests.servers.nginx import nginx_server, public_tmp
from tests.test_scheduler import drop

RID = "consular-protection-2026"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A release in three languages and one in English only, published and served by nginx."""
    renditions: dict[str, Rendition] = session_renditions(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("a11y")
    with public_tmp() as base, nginx_server(base / "www", base / "nginx") as nginx:
        opts = WebsiteOptions(kind="website", target=str(base / "www"), public_url=nginx.url,
                              site_title={"en": "Security Bureau videos", "zh-Hant": "保安局影片"})
        web = Website("sb-web", opts, config_dir=tmp, state_dir=tmp)
        web.publish(job(make_release(tmp), renditions, Journal()))
        web.publish(job(make_release(tmp, release_id="travel-safety-2026", languages=["en"],
                                     title={"en": "Travel Safety"}), renditions, Journal()))
        yield nginx.url


@pytest.fixture
def report(project: Callable[[], Project], cli: Any, tmp_path: Path) -> Path:
    """`status --html` over releases that are live, failed and scheduled, one titled in Chinese."""
    proj = project()
    drop(proj, "app-feed")
    bad = drop(proj, "border-signage")
    bad.mkdir()
    (bad / "BROKEN").write_text("playlist rejected: start time is in the past", encoding="utf-8")
    proj.write()
    cli(proj, "release", proj.manifest_path)
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="seconds")
    other = dict(proj.manifest, id="travel-safety-2026", languages=["zh-Hant", "en", "zh-Hans"],
                 publish_at=later)
    proj.manifest_path.write_text(json.dumps(other), encoding="utf-8")  # JSON is YAML too
    cli(proj, "release", proj.manifest_path)
    out = tmp_path / "report.html"
    result = cli(proj, "status", "--html", out)
    assert result.exit_code == 0, result.output
    return out


def serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    found = Axe().run(page).response["violations"]
    return [f"{v['impact']} {v['id']}: {[n['target'] for n in v['nodes']]}" for v in found
            if v["impact"] in ("serious", "critical")]


#: every text node with Han characters whose nearest lang attribute is not Chinese
UNMARKED_CHINESE = """() => {
  const out = [], walk = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    if (!/\\p{Script=Han}/u.test(n.data) || n.parentElement.closest('script, style')) continue;
    const lang = (n.parentElement.closest('[lang]') || {}).lang || '';
    if (!lang.startsWith('zh')) out.push(lang + ': ' + n.data.trim());
  }
  return out;
}"""

#: what has the focus, how the focus shows, and (inside the player's controls) which control
FOCUSED = """() => { const e = document.activeElement, s = getComputedStyle(e);
  return {tag: e.tagName, text: (e.innerText || '').trim(), href: e.getAttribute('href') || '',
          visible: e.matches(':focus-visible') && s.outlineStyle !== 'none'
                   && parseFloat(s.outlineWidth) >= 2};
}"""


def tab_through(page: Any, presses: int = 40) -> list[dict[str, Any]]:
    """Press Tab until the focus comes back to the first stop; the stops in order."""
    stops: list[dict[str, Any]] = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        here = page.evaluate(FOCUSED)
        if stops and here == stops[0]:
            break
        stops.append(here)
    return [s for s in stops if s["tag"] != "BODY"]


def control_in_focus(cdp: Any) -> tuple[str, str] | None:
    """The focused control inside the video's own (browser-drawn) controls: (role, name)."""
    for node in cdp.send("Accessibility.getFullAXTree")["nodes"]:
        props = {p["name"]: p["value"].get("value") for p in node.get("properties", [])}
        role = node.get("role", {}).get("value")
        if props.get("focused") and role not in ("RootWebArea", "Video"):
            return role, node.get("name", {}).get("value", "")
    return None


def test_pages_have_no_serious_axe_violation_and_carry_their_language(site: str, chromium: Any) -> None:
    pages = {f"{RID}/index.html": "en", f"{RID}/index.zh-Hant.html": "zh-Hant",
             f"{RID}/index.zh-Hans.html": "zh-Hans", "index.html": "en", "index.zh-Hant.html": "zh-Hant",
             "index.zh-Hans.html": "zh-Hans"}
    for device in (PHONE, DESKTOP):
        context = chromium.new_context(**device)
        try:
            page = context.new_page()
            for path, lang in pages.items():
                page.goto(site + path)
                assert page.evaluate("() => document.documentElement.lang") == lang, path
                assert serious(page) == [], path
                assert page.evaluate(UNMARKED_CHINESE) == [], path
                assert page.evaluate("() => document.documentElement.scrollWidth") <= \
                    device["viewport"]["width"], path  # type: ignore[index]
        finally:
            context.close()


def test_player_works_with_the_keyboard_alone(site: str, chromium: Any) -> None:
    context = chromium.new_context(**PHONE)
    try:
        page = context.new_page()
        page.goto(f"{site}{RID}/index.zh-Hant.html")
        page.evaluate("() => { document.querySelector('video').muted = true; }")
        cdp = context.new_cdp_session(page)
        stops, controls = [], []
        for _ in range(30):
            page.keyboard.press("Tab")
            here = page.evaluate(FOCUSED)
            if here["tag"] == "VIDEO":
                control = control_in_focus(cdp)
                if control is None:
                    assert here["visible"], "the player shows no focus"
                    continue
                controls.append(control)
                if control == ("button", "play"):
                    page.keyboard.press("Enter")
                    page.wait_for_function("() => document.querySelector('video').currentTime > 0.3")
                continue
            if here["tag"] == "BODY":
                break
            assert here["visible"], f"no visible focus on {here}"
            stops.append(here["text"])
        assert stops == ["English", "繁體中文", "简体中文", "下載影片（MP4）"]
        assert ("button", "play") in controls and ("slider", "video time scrubber") in controls
        assert page.evaluate("() => document.querySelector('video').paused") is False
    finally:
        context.close()


def test_site_index_works_with_the_keyboard(site: str, chromium: Any) -> None:
    context = chromium.new_context(**PHONE)
    try:
        page = context.new_page()
        page.goto(site + "index.zh-Hant.html")
        stops = tab_through(page)
        assert all(s["visible"] for s in stops), stops
        assert [s["text"] for s in stops] == ["English", "繁體中文", "简体中文", "Travel Safety", "領事保護",
                                              'Consular Protection <Travel> & "Safety"', "领事保护"]
        page.reload()
        for _ in range(5):
            page.keyboard.press("Tab")
        page.keyboard.press("Enter")  # on the release's title in this language: its page in it
        page.wait_for_url(f"{site}{RID}/index.zh-Hant.html")
    finally:
        context.close()


def cue_font_px(context: Any, page: Any) -> float:
    """The font size Chromium gives the showing caption (the ::cue box inside the video)."""
    page.evaluate("""async () => { const v = document.querySelector('video'); v.muted = true;
        if (v.readyState < 1) await new Promise(r => v.addEventListener('loadedmetadata', r, {once: true}));
        const seeked = new Promise(r => v.addEventListener('seeked', r, {once: true}));
        v.currentTime = 1.0; await seeked; }""")
    page.wait_for_function("""() => Array.from(document.querySelector('video').textTracks)
        .some(t => t.mode === 'showing' && t.activeCues && t.activeCues.length > 0)""")
    page.wait_for_timeout(200)  # the cue box is laid out on the next frame
    cdp = context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]
    sizes: list[float] = []

    def walk(node: dict[str, Any]) -> None:
        attrs = node.get("attributes", [])
        if dict(zip(attrs[::2], attrs[1::2], strict=True)).get("pseudo") == "cue":
            style = cdp.send("CSS.getComputedStyleForNode", {"nodeId": node["nodeId"]})["computedStyle"]
            size = next(s["value"] for s in style if s["name"] == "font-size")
            sizes.append(float(size.removesuffix("px")))
        for child in node.get("children", []) + node.get("shadowRoots", []):
            walk(child)

    walk(root)
    assert sizes, "no caption on the screen"
    return min(sizes)


def test_captions_are_readable_on_a_phone_and_scale_with_the_player(site: str, chromium: Any) -> None:
    sizes = {}
    for name, device in (("phone", PHONE), ("desktop", DESKTOP)):
        context = chromium.new_context(**device)
        try:
            for lang in ("en", "zh-Hant"):
                page = context.new_page()
                page.goto(f"{site}{RID}/" + ("index.html" if lang == "en" else f"index.{lang}.html"))
                sizes[name, lang] = cue_font_px(context, page)
        finally:
            context.close()
    assert sizes["phone", "en"] >= 16 and sizes["phone", "zh-Hant"] >= 16, sizes
    assert sizes["desktop", "en"] > sizes["phone", "en"] * 1.5, sizes  # grows with the player


def test_report_has_no_serious_axe_violation_and_works_with_the_keyboard(report: Path, chromium: Any) -> None:
    for device in (PHONE, DESKTOP):
        context = chromium.new_context(**device)
        try:
            page = context.new_page()
            page.goto(report.as_uri())
            assert page.evaluate("() => document.documentElement.lang") == "en"
            assert serious(page) == []
            assert page.evaluate(UNMARKED_CHINESE) == []
            stops = tab_through(page, 80)
            assert stops and all(s["visible"] for s in stops), [s for s in stops if not s["visible"]]
            assert {s["href"] for s in stops} >= {f"#r-{RID}", "#r-travel-safety-2026"}
        finally:
            context.close()
