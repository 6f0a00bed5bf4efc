"""``signage``: the share digital-signage players poll, one sub-folder per site (player group).

Each site folder holds ``<release-id>.mp4`` files, ``SHA256SUMS`` (media only), and the same
playlist twice: ``playlist.json`` (its shape is in the README) and ``playlist.m3u8``. A player that
reads at any instant must see a playlist whose files exist and match, so every change keeps
``playlist items ⊆ SHA256SUMS ⊆ files``: adding writes media, then sums, then playlists;
removing writes playlists, then sums, then deletes media. Each file is written under a temporary
name and renamed. Items whose ``end`` has passed drop out whenever a site is written, and
``prune`` does it for every site (the scheduler calls it).

A repeat run (``job.options.repeat``, once per occurrence) re-shows the release: with a window
(the occurrence's ``window``, today's start/end) every site's item gets that start and end;
without one, an item that has ended (``signage.end`` or an earlier window) comes back from the
occurrence for as long as it was shown before. These times replace ``signage.start``/``end``
(the rule's ``until`` ends the repeats) and the journal's ``shown`` keeps them for later
publishes and updates; ``repeat`` is the last occurrence taken up. Media that an ended item took
away are copied again.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from channels.files import FileChannel
from channels.signage.options import KIND, SignageOptions, SignageOverrides
from channels.transports.base import Target, join, parse_sums, random_name, sums_text, write_atomic
from publisher.contract import Job, Preview, PreviewFolder, Shown, register
from publisher.errors import NotFound, Rejected, Transient
from publisher.models import (
    Outcome,
    Problem,
    Release,
    RemoteStatus,
    Rendition,
    RenditionRequest,
    RepeatSpec,
    State,
)

SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MEDIA_NAME = re.compile(r"^[a-z0-9-]{3,64}\.mp4$")
Item = dict[str, Any]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _ended(item: Item, now: datetime) -> bool:
    return bool(item.get("end")) and datetime.fromisoformat(item["end"]) <= now


@register
class Signage(FileChannel):
    kind = KIND
    Options = SignageOptions
    Overrides = SignageOverrides
    options: SignageOptions

    # --- offline ---------------------------------------------------------------------------
    def _language(self, release: Release) -> str:
        return self.options.language or release.default_language

    def renditions(self, release: Release) -> list[RenditionRequest]:
        return [RenditionRequest(profile="signage", params={"language": self._language(release)})]

    def _sites(self, release: Release) -> list[str]:
        wanted = release.signage.sites if release.signage and release.signage.sites else None
        return [s for s in self.options.sites if wanted is None or s in wanted]

    def validate(self, release: Release) -> list[Problem]:
        problems = super().validate(release)
        where = f"channels.{self.name}.sites"
        for site in self.options.sites:
            if not SITE_NAME.match(site):
                problems.append(Problem(file="", field=where, message=f"site name {site!r} is not a plain "
                                        "folder name", fix="use letters, digits, '.', '_' or '-'"))
        spec = release.signage
        if spec and spec.sites:
            unknown = sorted(set(spec.sites) - set(self.options.sites))
            if unknown:
                problems.append(Problem(
                    file=str(release.manifest_path), field="signage.sites",
                    message=f"unknown site(s) {', '.join(unknown)} for channel {self.name}",
                    fix=f"use names from the site config: {', '.join(self.options.sites)}"))
        start = self._start(release)
        if spec and spec.end and start and spec.end <= start:
            problems.append(Problem(file=str(release.manifest_path), field="signage.end",
                                    message="ends before it starts", fix="set end after start/publish_at"))
        return problems

    @staticmethod
    def _start(release: Release) -> datetime | None:
        return (release.signage.start if release.signage else None) or release.publish_at

    # --- helpers ---------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[Target]:
        """The target, with this machine's other publisher processes kept out of the playlists
        (each change reads, edits and rewrites them)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir / "playlists.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self.target() as t:
                yield t
        finally:
            os.close(fd)  # releases the lock

    def _item(self, job: Job, r: Rendition) -> Item:
        release, lang = job.release, self._language(job.release)
        shown = job.journal.get("shown")  # a repeat's times replace signage.start/end
        start = shown["start"] if shown else _iso(self._start(release)) or job.journal.get("start")
        end = shown["end"] if shown else _iso(release.signage.end if release.signage else None)
        return {"id": release.id, "file": f"{release.id}.mp4", "sha256": r.main_sha256,
                "bytes": r.file(r.main).bytes, "duration": round(r.duration, 3), "start": start,
                "end": end, "title": release.text("title", lang), "language": lang}

    def _window_rule(self, release: Release) -> RepeatSpec | None:
        """The daily repeat rule the manifest's ``window`` override implies (made by the core)."""
        window = self.overrides_as(SignageOverrides, release).window
        return next((rule for rule in release.repeat
                     if window and rule.window == window and rule.channels == [self.name]), None)

    def _first_window(self, job: Job) -> None:
        """With a window override, the item is listed from the first window on: the one open at
        publish time (or at ``signage.start``), else the next; the daily repeat moves it on."""
        rule = self._window_rule(job.release)
        if rule is None or job.journal.get("shown"):
            return
        at = max(job.now(), self._start(job.release) or job.now())
        zone = ZoneInfo(rule.timezone)
        start, end = (time.fromisoformat(t) for t in (rule.window or "").split("-"))
        day = at.astimezone(zone).date() - timedelta(days=1)
        for _ in range(3):
            opens = datetime.combine(day, start, zone)
            closes = datetime.combine(day + timedelta(days=end <= start), end, zone)
            if closes.astimezone(UTC) > at:
                job.journal.put("shown", {"start": opens.astimezone(UTC).isoformat(),
                                          "end": closes.astimezone(UTC).isoformat()})
                return
            day += timedelta(days=1)

    def _repeat(self, job: Job, r: Rendition) -> None:
        """Take up a new repeat occurrence: journal the times to show it (before any change)."""
        j, repeat = job.journal, job.options.repeat
        if repeat is None or (j.get("repeat") and repeat.at <= datetime.fromisoformat(j.get("repeat"))):
            return
        occurrence = repeat.at.isoformat()
        if repeat.window:
            j.put("shown", {"start": repeat.window[0].isoformat(), "end": repeat.window[1].isoformat()})
        else:
            before = self._item(job, r)
            if before["end"] and _ended(before, job.now()):
                start, end = (datetime.fromisoformat(before[k]) for k in ("start", "end"))
                again = datetime.fromisoformat(occurrence)
                j.put("shown", {"start": again.isoformat(),
                                "end": (again + (end - start)).isoformat() if end > start else None})
        j.put("repeat", occurrence)

    @staticmethod
    def read_playlist(t: Target, site: str) -> list[Item]:
        try:
            data = json.loads(t.get_bytes(join(site, "playlist.json")))
        except NotFound:
            return []
        except ValueError as exc:
            raise Transient(f"{t.where}/{site}/playlist.json is not valid JSON ({exc}); "
                            "it is rewritten on the next run") from None
        return list(data.get("items", []))

    def _write(self, t: Target, site: str, items: list[Item], now: datetime) -> None:
        """Make the site's playlists list ``items`` (minus ended ones), keeping
        playlist items ⊆ SHA256SUMS ⊆ files at every instant."""
        current = self.read_playlist(t, site)
        wanted = sorted((i for i in items if not _ended(i, now)), key=lambda i: (i["start"], i["id"]))
        ids = {i["id"] for i in wanted}
        removed = [i for i in current if i["id"] not in ids]
        if removed:  # first the playlists, then the sums, then the media
            staying = [i for i in current if i["id"] in ids]
            self._put_lists(t, site, staying, now, sums_first=False)
            for i in removed:
                if MEDIA_NAME.match(str(i.get("file", ""))):  # never trust a path from the share
                    t.delete(join(site, i["file"]))
            current = staying
        if wanted != current:  # media are in place: sums, then the playlists
            self._put_lists(t, site, wanted, now, sums_first=True)

    @staticmethod
    def _put_lists(t: Target, site: str, items: list[Item], now: datetime, *, sums_first: bool) -> None:
        doc = {"version": 1, "site": site, "generated_at": now.isoformat(), "items": items}
        playlist = json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
        # plain M3U players know no schedule: they get only what is on air now
        m3u = ["#EXTM3U"] + [f"#EXTINF:{i['duration']:.3f},{' '.join(str(i['title']).split())}\n{i['file']}"
                             for i in items
                             if datetime.fromisoformat(i["start"]) <= now]
        steps = [(sums_text({i["file"]: i["sha256"] for i in items}), "SHA256SUMS"),
                 ("\n".join(m3u).encode() + b"\n", "playlist.m3u8"), (playlist, "playlist.json")]
        for data, name in steps if sums_first else reversed(steps):
            write_atomic(t, data, join(site, name))

    def preview(self, job: Job, folder: PreviewFolder) -> Preview:
        """A frame of the signage rendition with its burned subtitles, and the playlist item."""
        r, lang = job.renditions["signage"], self._language(job.release)
        item = self._item(job, r)
        folder.write("item.json", json.dumps(item, ensure_ascii=False, indent=1))
        folder.still("frame.jpg", r.main_path, lang)
        fields = (("Title", item["title"]), ("Sites", ", ".join(self._sites(job.release))),
                  ("Shown from", item["start"] or "publish time"), ("Until", item["end"] or "withdrawn"))
        return Preview([Shown(lang, fields, page="item.json", image="frame.jpg")])

    # --- verbs -----------------------------------------------------------------------------
    def publish(self, job: Job) -> Outcome:
        r = job.renditions.get("signage")
        if r is None or not r.main:
            raise Rejected("the 'signage' rendition is missing; run the release again to encode it")
        j = job.journal
        j.delete("withdrawn")
        if not self._start(job.release) and not j.get("start"):  # no date given: from the first
            j.put("start", _iso(job.now()))  # publish on, fixed so publishing again changes nothing
        self._first_window(job)
        self._repeat(job, r)
        item = self._item(job, r)
        if item["end"] and _ended(item, job.now()) and j.get("shown"):
            return Outcome(state=State.LIVE, remote_id=item["file"], checksum=item["sha256"],
                           note=f"shown until {item['end']}; it comes back at the next repeat")
        if item["end"] and _ended(item, job.now()):
            raise Rejected(f"signage.end ({item['end']}) has passed; change it in the manifest "
                           "or leave this channel out")
        sites = self._sites(job.release)
        with self._writing() as t:
            if job.options.repair:
                self._forget_damaged(t, job, sites, item)
            todo = [s for s in sites if (j.get("live") or {}).get(s) != item]
            staged: dict[str, str] = dict(j.get("staged") or {})
            for site in todo:  # the slow part: a verified copy per site in the private staging area
                if staged.get(site) == item["sha256"] or ((j.get("live") or {}).get(site, {}).get(
                        "sha256") == item["sha256"] and t.exists(join(site, item["file"]))):
                    continue  # (an ended item's media were taken away: copied again)
                staging = j.get("staging")
                if not staging or not t.exists(staging):
                    staging = join(t.staging_root, random_name())
                    j.put("staging", staging)  # named first: a crash leaves a folder we know
                    staged = {}
                    t.mkdir(t.staging_root, private=True)
                    t.mkdir(staging, private=True)
                tmp = join(staging, f"{site}.mp4")
                t.put_file(r.main_path, tmp)
                if t.sha256(tmp) != item["sha256"]:
                    raise Transient(f"{t.where}: read-back of {tmp} did not match; sent again on retry")
                staged[site] = item["sha256"]
                j.put("staged", staged)
            if job.stage_only:
                return Outcome(state=State.SCHEDULED, remote_id=item["file"], checksum=item["sha256"],
                               note="media staged privately; added to the playlists at publish_at")
            for site in todo:
                self._go_live(t, job, site, item)
            for site in set(j.get("live") or {}) - set(sites):  # dropped from signage.sites
                self._remove(t, job, site)
            if j.get("staging"):
                t.delete(j.get("staging"))
                j.delete("staging")
                j.delete("staged")
            return self._outcome(t, item, sites)

    def _forget_damaged(self, t: Target, job: Job, sites: list[str], item: Item) -> None:
        """For a repair: a site whose copy is missing, differs or is not listed is done again."""
        live: dict[str, Item] = dict(job.journal.get("live") or {})
        for site in sites:
            listed = next((i for i in self.read_playlist(t, site) if i["id"] == item["id"]), None)
            try:
                intact = listed == item and t.sha256(join(site, item["file"])) == item["sha256"]
            except NotFound:
                intact = False
            if not intact:
                live.pop(site, None)
        job.journal.put("live", live)

    def _go_live(self, t: Target, job: Job, site: str, item: Item) -> None:
        j = job.journal
        now = job.now()
        tmp = join(j.get("staging") or "-", f"{site}.mp4")
        dst = join(site, item["file"])
        items = [i for i in self.read_playlist(t, site) if i["id"] != item["id"]]
        if (j.get("staged") or {}).get(site) == item["sha256"] and t.exists(tmp):
            if t.exists(dst):  # new content under the same name: take the old item out first
                self._write(t, site, items, now)
                t.delete(dst)
            t.mkdir(site)
            t.publish_modes(tmp)  # readable by the players' account from the moment it appears
            t.move(tmp, dst)  # going live is a rename
        elif not t.exists(dst) or t.sha256(dst) != item["sha256"]:
            j.put("staged", {s: v for s, v in (j.get("staged") or {}).items() if s != site})
            raise Transient(f"{t.where}/{site}: the staged copy of {item['file']} is gone; "
                            "it is sent again on retry")
        self._write(t, site, [*items, item], now)
        j.put("live", {**(j.get("live") or {}), site: item})

    def _remove(self, t: Target, job: Job, site: str) -> None:
        items = self.read_playlist(t, site)
        self._write(t, site, [i for i in items if i["id"] != job.release.id], job.now())
        t.delete(join(site, f"{job.release.id}.mp4"))  # also when a crash left it unlisted
        live = dict(job.journal.get("live") or {})
        if live.pop(site, None) is not None:
            job.journal.put("live", live)

    def _outcome(self, t: Target, item: Item, sites: list[str]) -> Outcome:
        return Outcome(state=State.LIVE, remote_id=item["file"], checksum=item["sha256"],
                       url=f"{t.where.rstrip('/')}/{sites[0]}/playlist.json" if sites else "",
                       note=f"on {len(sites)} site(s): {', '.join(sites)}")

    def update(self, job: Job) -> Outcome:
        return self.publish(job)

    def withdraw(self, job: Job) -> Outcome:
        with self._writing() as t:
            for site in self.options.sites:
                self._remove(t, job, site)
            if job.journal.get("staging"):
                t.delete(job.journal.get("staging"))
        for key in ("live", "staged", "staging", "start", "shown", "repeat"):
            job.journal.delete(key)
        job.journal.put("withdrawn", True)
        return Outcome(state=State.WITHDRAWN)

    def housekeeping(self, now: datetime) -> list[str]:
        return self.prune(now)

    def prune(self, now: datetime) -> list[str]:
        """Drop ended items from every site's playlist (and their files); return 'site/file' gone."""
        gone = []
        with self._writing() as t:
            for site in self.options.sites:
                items = self.read_playlist(t, site)
                ended = [i for i in items if _ended(i, now)]
                if ended:
                    self._write(t, site, items, now)
                    gone += [f"{site}/{i['file']}" for i in ended]
        return gone

    def status(self, job: Job) -> RemoteStatus:
        rid = job.release.id
        live: dict[str, Item] = job.journal.get("live") or {}
        drift: list[str] = []
        found: dict[str, Item] = {}
        with self.target() as t:
            for site in self.options.sites:
                item = next((i for i in self.read_playlist(t, site) if i["id"] == rid), None)
                if item is None:
                    if site in live and not _ended(live[site], job.now()):
                        drift.append(f"{site}: not in the playlist")
                    continue
                found[site] = item
                if _ended(item, job.now()):
                    drift.append(f"{site}: ended at {item['end']} but still listed (dropped at the next run)")
                try:
                    sums = parse_sums(t.get_bytes(join(site, "SHA256SUMS")))
                    actual = t.sha256(join(site, item["file"]))
                except NotFound:
                    drift.append(f"{site}: {item['file']} or SHA256SUMS is missing")
                    continue
                if not actual == item["sha256"] == sums.get(item["file"]):
                    drift.append(f"{site}: {item['file']} does not match its sums")
                if site in live and live[site] != item:
                    drift.append(f"{site}: the playlist item differs from what publisher wrote")
            where = t.where.rstrip("/")
        if found:
            first = next(iter(found))
            return RemoteStatus(state=State.LIVE, remote_id=found[first]["file"],
                                checksum=found[first]["sha256"], url=f"{where}/{first}/playlist.json",
                                drift=drift, detail=f"in the playlist of {', '.join(found)}")
        if live and all(_ended(i, job.now()) for i in live.values()):
            if job.journal.get("shown"):  # the store keeps it live between repeat windows
                return RemoteStatus(state=State.LIVE, detail="between repeat windows", drift=drift)
            return RemoteStatus(state=State.WITHDRAWN, detail="its signage end time has passed", drift=drift)
        state = State.WITHDRAWN if job.journal.get("withdrawn") else State.SCHEDULED \
            if job.journal.get("staged") else State.PENDING
        return RemoteStatus(state=state, drift=drift)
