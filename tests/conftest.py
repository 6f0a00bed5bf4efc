"""Shared fixtures: real generated media, a project folder (config + manifest), the CLI."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.media import make_master, make_release_folder

# rich fixes a console's width from COLUMNS when the console is made: made here, with COLUMNS
# unset, the CLI's consoles follow each test's COLUMNS whatever order the tests run in
os.environ.pop("COLUMNS", None)
import publisher.cli.console  # noqa: E402, F401, I001

MANIFEST: dict[str, Any] = {
    "id": "consular-protection-2026",
    "master": "master.mp4",
    "languages": ["en", "zh-Hant", "zh-Hans"],
    "title": {"en": "Consular Protection", "zh-Hant": "領事保護", "zh-Hans": "领事保护"},
    "description": {
        "en": "An animated video on consular protection and travel safety.",
        "zh-Hant": "領事保護動畫短片。",
        "zh-Hans": "领事保护动画短片。",
    },
    "captions": {"en": "subs/en.srt", "zh-Hant": "subs/zh-Hant.vtt", "zh-Hans": "subs/zh-Hans.srt"},
    "thumbnail": "poster.png",
    "tags": ["consular protection", "travel safety"],
}


@pytest.fixture(scope="session")
def master_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s 640x360 25 fps H.264/AAC master, made once per session."""
    return make_master(tmp_path_factory.mktemp("master") / "master.mp4")


@pytest.fixture(scope="session")
def rendition_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One rendition cache for the whole session, so each distinct rendition is encoded once."""
    return tmp_path_factory.mktemp("renditions")


class Project:
    """A folder with publisher.yaml, release.yaml and the media, plus a private state dir."""

    def __init__(self, root: Path, master: Path, cache: Path) -> None:
        self.root = root
        self.state_dir = root / "state"
        self.config_path = root / "publisher.yaml"
        self.manifest_path = root / "release" / "release.yaml"
        make_release_folder(self.manifest_path.parent, master_src=master)
        self.channels: dict[str, dict[str, Any]] = {}
        self.settings: dict[str, Any] = {"cache_dir": str(cache)}
        self.manifest: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v)
                                         for k, v in MANIFEST.items()}

    def add_channel(self, name: str, block: dict[str, Any]) -> None:
        self.channels[name] = block

    def write(self) -> None:
        config = dict(self.settings)
        config["channels"] = self.channels
        self.config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        self.manifest_path.write_text(yaml.safe_dump(self.manifest, allow_unicode=True),
                                      encoding="utf-8")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PUBLISHER_CONFIG"] = str(self.config_path)
        env["PUBLISHER_HOME"] = str(self.state_dir)
        return env


@pytest.fixture
def project(tmp_path: Path, master_file: Path, rendition_cache: Path) -> Callable[[], Project]:
    def make() -> Project:
        root = tmp_path / f"p{len(list(tmp_path.iterdir()))}"
        root.mkdir()
        return Project(root, master_file, rendition_cache)
    return make


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run the CLI in-process: cli(project, "release", path) -> click Result."""
    from typer.testing import CliRunner

    from publisher.cli import app

    def run(proj: Project, *args: str) -> Any:
        for k in ("PUBLISHER_CONFIG", "PUBLISHER_HOME"):
            monkeypatch.setenv(k, proj.env()[k])
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return run


def need(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.fail(f"{binary} is not installed; the README's test command installs it")


CHROMIUM = "/usr/bin/chromium"  # Debian's, driven by Playwright
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for every browser test of the session (a Playwright ``Browser``; open
    a context per test). Browser tests must use it: while it lives, the Playwright sync API cannot
    be started again in this thread."""
    need(CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_for(cond: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()
