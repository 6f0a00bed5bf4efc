"""`publisher status`: the table in the operator's zone, the stable JSON/CSV fields, filters, and
the self-contained HTML report, opened in headless Chromium and screenshotted."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from publisher.report import FIELDS
from tests.conftest import Project
from tests.test_scheduler import drop, iso

SCREENSHOTS = Path(os.environ.get("PUBLISHER_SCREENSHOTS", "/tmp/publisher-screenshots"))
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


def released(project: Callable[[], Project], cli: Any, *, publish_in: timedelta | None = None,
             broken: str = "", zone: str | None = None) -> Project:
    """A release on three drop channels: live, live, and (optionally) one that fails."""
    proj = project()
    drop(proj, "app-feed"), drop(proj, "immd-web")
    bad = drop(proj, "signage")
    if broken:
        bad.mkdir()
        (bad / "BROKEN").write_text(broken, encoding="utf-8")
    if zone:
        proj.settings["timezone"] = zone
    if publish_in is not None:
        proj.manifest["publish_at"] = iso(datetime.now(UTC) + publish_in)
    proj.write()
    cli(proj, "release", proj.manifest_path)
    return proj


def test_json_and_csv_have_the_documented_fields(project: Callable[[], Project], cli: Any) -> None:
    proj = released(project, cli, publish_in=timedelta(days=2))
    result = cli(proj, "status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data) == 3
    for row in data:
        assert tuple(row) == FIELDS
        assert row["state"] == "scheduled" and row["release"] == proj.manifest["id"]
        assert ISO_UTC.match(row["updated_at"]) and ISO_UTC.match(row["publish_at"])
        assert len(row["checksum"]) == 64
    wanted = datetime.fromisoformat(proj.manifest["publish_at"])
    assert datetime.fromisoformat(data[0]["publish_at"]) == wanted
    text = cli(proj, "status", "--csv").stdout
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(FIELDS)
    names = ["app-feed", "immd-web", "signage"]
    assert [r["channel"] for r in parsed] == [r["channel"] for r in data] == names
    assert parsed[0] == data[0]
    both = cli(proj, "status", "--json", "--csv")
    assert both.exit_code == 2


def test_filters(project: Callable[[], Project], cli: Any) -> None:
    proj = released(project, cli, broken="upload refused: file too large\nsecond line of the error")
    def channels(*args: str) -> list[str]:
        result = cli(proj, "status", "--json", *args)
        assert result.exit_code == 0, result.output
        return [r["channel"] for r in json.loads(result.stdout)]
    assert channels("--state", "failed") == ["signage"]
    assert channels("--state", "live") == ["app-feed", "immd-web"]
    assert channels("--channel", "immd-web") == ["immd-web"]
    assert channels("--since", "1h") == ["app-feed", "immd-web", "signage"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
    assert channels("--since", future) == []
    assert channels(proj.manifest["id"]) == ["app-feed", "immd-web", "signage"]
    bad = cli(proj, "status", "--state", "online")
    assert bad.exit_code == 2 and "pending" in bad.output
    bad_since = cli(proj, "status", "--since", "last tuesday")
    assert bad_since.exit_code == 2 and "--since" in bad_since.output
    unknown = cli(proj, "status", "no-such-release")
    assert unknown.exit_code == 2 and "no release" in unknown.output


def test_table_shows_times_in_the_operators_zone(project: Callable[[], Project], cli: Any) -> None:
    proj = released(project, cli, publish_in=timedelta(days=1))
    table = cli(proj, "status").stdout
    assert "Asia/Hong_Kong" in table and "HKT" in table and "scheduled" in table
    ny = released(project, cli, publish_in=timedelta(days=1), zone="America/New_York")
    table = cli(ny, "status").stdout
    assert "America/New_York" in table and ("EST" in table or "EDT" in table) and "HKT" not in table


def test_failed_error_is_one_line_in_the_table_and_whole_in_json(
        project: Callable[[], Project], cli: Any) -> None:
    proj = released(project, cli, broken="upload refused: file too large\nsecond line of the error")
    table = cli(proj, "status").stdout
    assert "file too large second line" in table
    row = [r for r in json.loads(cli(proj, "status", "--json").stdout) if r["channel"] == "signage"][0]
    assert "\n" in row["error"] and row["state"] == "failed"


def test_html_report_is_self_contained_and_readable(project: Callable[[], Project], cli: Any,
                                                      tmp_path: Path, chromium: Any) -> None:
    proj = project()
    drop(proj, "app-feed")
    proj.add_channel("ocmfa-web", {"kind": "drop", "target": str(proj.root / "web"),
                                   "public_url": "https://www.mfa.gov.hk/videos/"})
    bad = drop(proj, "border-signage")
    bad.mkdir()
    (bad / "BROKEN").write_text("playlist rejected: start time is in the past\n  at site LWR-1",
                               encoding="utf-8")
    proj.manifest["title"]["en"] = "Consular Protection <script>alert(1)</script>"
    proj.write()
    cli(proj, "release", proj.manifest_path)
    other = dict(proj.manifest, id="travel-safety-2026")
    proj.manifest_path.write_text(json.dumps(other), encoding="utf-8")  # JSON is YAML too
    cli(proj, "release", proj.manifest_path)
    cli(proj, "withdraw", "travel-safety-2026", "--channel", "app-feed", "--yes")
    report = tmp_path / "report.html"
    result = cli(proj, "status", "--html", report)
    assert result.exit_code == 0, result.output
    page = report.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert 'href="https://www.mfa.gov.hk/videos/consular-protection-2026/"' in page
    assert "data:image/png;base64," in page  # the poster, embedded
    assert "playlist rejected: start time is in the past\n  at site LWR-1" in page  # the error in full
    assert not re.search(r'src="(https?:)?//', page)  # links to live copies, but nothing loaded from afar
    assert "<link" not in page and "<script" not in page and "@import" not in page
    assert "Event history" in page and "HKT" in page

    requests: list[str] = []
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        view = context.new_page()
        view.on("request", lambda r: requests.append(r.url))
        view.goto(report.as_uri())
        cells = view.locator("#summary tbody tr").first.locator("td.state")
        assert cells.count() == 3
        colours = {view.locator("#summary tbody tr").nth(i).locator("td.state").nth(j).inner_text():
                   view.locator("#summary tbody tr").nth(i).locator("td.state").nth(j).evaluate(
                       "e => getComputedStyle(e).backgroundColor")
                   for i in range(2) for j in range(3)}
        assert colours["live"] == "rgb(30, 123, 52)" and colours["failed"] == "rgb(179, 38, 30)"
        assert colours["withdrawn"] == "rgb(123, 42, 143)"
        width = view.locator("img").first.evaluate("e => e.naturalWidth")
        assert width > 0  # the embedded poster decodes
        assert view.locator("section.release").count() == 2
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = view.screenshot(full_page=True)
        (SCREENSHOTS / "status-report.png").write_bytes(shot)
        assert len(shot) > 20_000
    finally:
        context.close()
    assert all(u.startswith(("file:", "data:")) for u in requests), requests


def test_since_reads_ages_and_times_in_the_operators_zone() -> None:
    from zoneinfo import ZoneInfo

    from publisher.errors import InputError
    from publisher.report import parse_since

    hk, now = ZoneInfo("Asia/Hong_Kong"), datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert parse_since("2026-12-01T10:00", hk, now) == datetime(2026, 12, 1, 2, tzinfo=UTC)
    assert parse_since("2026-12-01T10:00+00:00", hk, now) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert parse_since("7d", hk, now) == now - timedelta(days=7)
    assert parse_since("90m", hk, now) == now - timedelta(minutes=90)
    with pytest.raises(InputError, match="--since"):
        parse_since("yesterday", hk, now)


def test_html_report_fits_a_phone_and_names_the_site_and_releases(
        project: Callable[[], Project], cli: Any, tmp_path: Path, chromium: Any) -> None:
    proj = project()
    drop(proj, "app-feed"), drop(proj, "immd-web")
    bad = drop(proj, "lobby-signage-kowloon")
    bad.mkdir()
    (bad / "BROKEN").write_text("playlist rejected: /srv/signage/lobby/playlists/current-playlist-2026.xml",
                                encoding="utf-8")
    proj.settings["site_name"] = "Immigration Department videos"
    proj.write()
    cli(proj, "release", proj.manifest_path)
    report = tmp_path / "phone.html"
    assert cli(proj, "status", "--html", report).exit_code == 0
    page = report.read_text(encoding="utf-8")
    assert "<title>Immigration Department videos — release status</title>" in page
    assert "publisher.yaml" not in page
    assert ('release of “<span lang="en">Consular Protection</span>” to app-feed, immd-web, '
            'lobby-signage-kowloon') in page
    assert not re.search(r"release of [0-9a-f]{12}", page)
    context = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                   is_mobile=True, has_touch=True)
    try:
        view = context.new_page()
        view.goto(report.as_uri())
        assert view.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways page scroll
        boxes = view.locator(".scroll")
        assert boxes.count() == 3
        widths = [boxes.nth(i).evaluate("e => [e.scrollWidth, e.clientWidth]") for i in range(3)]
        assert all(client <= 390 for _, client in widths)
        assert any(inner > client for inner, client in widths), widths  # a wide table scrolls in its box
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / "status-report-phone.png").write_bytes(view.screenshot(full_page=True))
    finally:
        context.close()
    del proj.settings["site_name"]
    proj.write()
    assert cli(proj, "status", "--html", report).exit_code == 0
    assert f"<title>{proj.root.name} — release status</title>" in report.read_text(encoding="utf-8")
