"""The Transcoder: plan renditions for a release, then make the missing ones and hand each over
(``on_ready``) as soon as it is checked and in the cache."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pysubs2

from publisher.errors import InputError, TranscodeError
from publisher.inputs.captions import check_captions, load_captions, to_webvtt
from publisher.inputs.cues import to_ass_text
from publisher.inputs.media import decode_check
from publisher.models import FileInfo, MasterInfo, Problem, Release, Rendition, RenditionRequest
from publisher.transcode import ffmpeg as ff
from publisher.transcode.cache import Cache
from publisher.transcode.images import make_image
from publisher.transcode.loudness import Measurement, forget_loudness, measure
from publisher.transcode.planner import (
    Hashes,
    Job,
    Output,
    PlannedRendition,
    TranscodePlan,
    VideoSpec,
    box,
    ffmpeg_version,
    fit,
    resolve,
)
from publisher.transcode.profiles import CaptionParams, ImageParams, Mp4Params
from publisher.transcode.verify import Probed, check_hls, check_mp4, master_durations

Ready = Callable[[Rendition], None]
#: outputs checked (ffprobe) and stills made at once after the encode
FINISHERS = 3
Progress = Callable[[float, str], None]


def write_burn_file(spec: VideoSpec, source: Path, target: Path) -> None:
    """The captions as an ASS file styled for a hall screen: Noto CJK, ≥ 5 % of the height, white on
    a dark box (ASS border style 3: the box takes the outline's colour and the outline's width as
    its padding), so the text keeps its contrast over any picture. Cue text is escaped for libass
    (``publisher.inputs.cues``): what the author wrote is what is drawn."""
    w, h = spec.width, spec.height
    subs = pysubs2.SSAFile()
    subs.info.update({"PlayResX": str(w), "PlayResY": str(h), "WrapStyle": "0",
                      "ScaledBorderAndShadow": "yes"})
    subs.styles = {"Default": pysubs2.SSAStyle(
        fontname=spec.burn_font, fontsize=max(8, round(h * spec.burn_size * spec.burn_line_per_em)),
        primarycolor=pysubs2.Color(255, 255, 255),
        outlinecolor=pysubs2.Color(0, 0, 0, round(255 * (1 - spec.burn_box_opacity))),
        outline=max(1.0, round(h * spec.burn_box_padding, 1)), shadow=0, borderstyle=3,
        alignment=pysubs2.Alignment.BOTTOM_CENTER,
        marginl=round(w * 0.05), marginr=round(w * 0.05), marginv=round(h * 0.06))}
    subs.events = [pysubs2.SSAEvent(start=cue.start, end=cue.end, style="Default", text=to_ass_text(cue))
                   for cue in load_captions(source)]
    subs.save(str(target), format_="ass", encoding="utf-8")


class Transcoder:
    def __init__(self, cache_dir: Path, *, ffmpeg: str = "ffmpeg", share_encodes: bool = True) -> None:
        self.cache = Cache(cache_dir)
        self.ffmpeg = ffmpeg
        sibling = Path(ffmpeg).with_name("ffprobe")
        self.ffprobe = str(sibling) if "/" in ffmpeg and sibling.exists() else "ffprobe"
        self.share_encodes = share_encodes  # False only to measure the gain in the benchmark
        self._version = ""

    @property
    def version(self) -> str:
        if not self._version:
            self._version = ffmpeg_version(self.ffmpeg)
        return self._version

    # --- plan ---------------------------------------------------------------------------------
    def plan(self, release: Release, master: MasterInfo,
             requests: dict[str, list[RenditionRequest]]) -> TranscodePlan:
        hashes = Hashes()
        plan = TranscodePlan(items=[], release=release, master=master)
        items: dict[str, PlannedRendition] = {}
        problems: list[Problem] = []
        for channel, wanted in requests.items():
            for request in wanted:
                try:
                    job, text = resolve(channel, request, release, master, self.version, hashes)
                except InputError as e:
                    problems.extend(e.problems)
                    continue
                plan.index[(channel, request.token())] = job.key
                if job.key in items:
                    if channel not in items[job.key].channels:
                        items[job.key].channels.append(channel)
                    continue
                plan.jobs[job.key] = job
                resolved = RenditionRequest(profile=job.profile.name,
                                            params=job.params.model_dump(mode="json"))
                items[job.key] = PlannedRendition(
                    key=job.key, request=resolved, channels=[channel],
                    cached=job.passthrough or self.cache.peek(job.key), description=text)
        if problems:
            raise InputError(problems)
        plan.items = list(items.values())
        return plan

    # --- run ----------------------------------------------------------------------------------
    def run(self, plan: TranscodePlan, *, on_ready: Ready | None = None,
            on_progress: Progress | None = None, verify_as: Path | None = None,
            on_verified: Callable[[], None] | None = None) -> dict[str, Rendition]:
        """Make what the plan misses. With ``verify_as`` (the master's name for messages), also
        check that the master decodes to the end, in the same read as the encode where there is
        one: a master that fails stops the encode, leaves nothing in the cache and raises
        ``InputError``; ``on_verified`` is called once it passed."""
        assert plan.master is not None and plan.release is not None, "plan() makes the plan"
        master, release = plan.master, plan.release
        ready: dict[str, Rendition] = {}

        def done(rendition: Rendition) -> None:
            ready[rendition.key] = rendition
            if on_ready is not None:
                on_ready(rendition)

        def verified() -> None:
            if on_verified is not None:
                on_verified()

        missing: list[Job] = []
        for item in plan.items:
            job = plan.jobs[item.key]
            if job.passthrough:
                done(self._passthrough(job, master))
            elif (cached := self.cache.load(job.key)) is not None:
                done(cached)
            else:
                missing.append(job)
        videos = [j for j in missing if j.encodes]
        if verify_as is not None and not self._reads_everything(videos, master):
            encoded = [key for key, job in plan.jobs.items() if job.encodes and key in ready]
            if not encoded:  # a cached encode of these bytes proves they decode
                decode_check(master.path, ffmpeg=self.ffmpeg, shown_as=verify_as)
            verify_as = None
        if verify_as is None:
            verified()
        if missing:
            with self.cache.exclusive():
                # another worker may have made some of them while this one waited for the lock
                for job in list(missing):
                    if (cached := self.cache.load(job.key)) is not None:
                        missing.remove(job)
                        done(cached)
                videos = [j for j in missing if j.encodes]
                stills = [j for j in missing if not j.encodes]
                if verify_as is None:  # stills first: seconds, not minutes
                    for job in stills:
                        done(self._still(job, master, release))
                # nothing of an unchecked master enters the cache before the encode has checked it
                later: list[Callable[[], None]] = [
                    functools.partial(lambda j: done(self._still(j, master, release)), job)
                    for job in stills] if verify_as is not None else []
                if videos:
                    self._encode(videos, master, done, on_progress, verify_as, verified, later)
                else:
                    if verify_as is not None:  # another worker encoded them meanwhile: they passed
                        verified()
                    for task in later:
                        task()
        return {item.key: ready[item.key] for item in plan.items}

    @staticmethod
    def _reads_everything(videos: list[Job], master: MasterInfo) -> bool:
        """True when encoding ``videos`` decodes every stream the full decode check would."""
        audio = any(spec.audio is not None for job in videos for spec, _ in job.encodes)
        return bool(videos) and (audio or not master.has_audio)

    def _passthrough(self, job: Job, master: MasterInfo) -> Rendition:
        if not master.path.is_file() or master.path.stat().st_size != master.bytes:
            raise TranscodeError(f"the master {master.path} changed since it was checked; run again")
        return Rendition(
            key=job.key, profile=job.profile.name, folder=master.path.parent, main=master.path.name,
            files=[FileInfo(name=master.path.name, bytes=master.bytes, sha256=master.sha256)],
            width=master.width, height=master.height, duration=master.duration, passthrough=True)

    def _still(self, job: Job, master: MasterInfo, release: Release) -> Rendition:
        work = self.cache.work_dir()
        try:
            folder = work / job.key
            folder.mkdir()
            if isinstance(job.params, ImageParams):
                name = f"{job.profile.name}.jpg"
                w, h = make_image(job.params, master, job.image_source, folder, name,
                                  ffmpeg=self.ffmpeg, ffprobe=self.ffprobe)
                rendition = Rendition(key=job.key, profile=job.profile.name, folder=folder, main=name,
                                      width=w, height=h)
            else:
                assert isinstance(job.params, CaptionParams)
                problems = [p for lang, path in job.captions.items()
                            for p in check_captions(path, field=f"captions.{lang}", duration=master.duration)]
                if problems:
                    raise InputError(problems)
                for lang, path in job.captions.items():
                    (folder / f"{lang}.vtt").write_text(to_webvtt(path), encoding="utf-8")
                rendition = Rendition(key=job.key, profile=job.profile.name, folder=folder,
                                      duration=master.duration)
            return self.cache.commit(folder, rendition)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _encode(self, jobs: list[Job], master: MasterInfo, done: Ready, on_progress: Progress | None,
                verify_as: Path | None = None, verified: Callable[[], None] = lambda: None,
                after: list[Callable[[], None]] | None = None) -> None:
        """Encode ``jobs`` in one ffmpeg run, then check and hand over each output, and run
        ``after`` (stills of a master checked by this encode), a few at a time: the cores are
        idle once the encode is done, and the checks are single-threaded ffprobe runs."""
        work = self.cache.work_dir()
        try:
            encodes = self._encodes(jobs, work)
            try:
                loud = self._encode_all(jobs, encodes, master, work, on_progress, verify_as is not None)
            except TranscodeError:
                if verify_as is not None:  # the master's fault, or the encode's?
                    try:
                        decode_check(master.path, ffmpeg=self.ffmpeg, shown_as=verify_as)
                    except InputError:
                        forget_loudness(master, self.cache.root)
                        raise
                raise
            if verify_as is not None:
                verified()
            expected = master_durations(master, self.ffprobe)

            def finish(job: Job) -> None:
                if isinstance(job.params, Mp4Params) and job.params.max_bytes:
                    self._shrink(job, master, work, loud)
                probed = self._check(job, master, work, expected)
                main = "master.m3u8" if job.encodes[0][1].container == "hls" else "video.mp4"
                done(self.cache.commit(work / job.key, Rendition(
                    key=job.key, profile=job.profile.name, folder=work / job.key, main=main,
                    width=probed.width, height=probed.height, duration=probed.duration)))

            # single files first: they are checked quickest, and WeChat's chain is the longest
            ordered = sorted(jobs, key=lambda j: j.encodes[0][1].container == "hls")
            tasks: list[Callable[[], None]] = [*(functools.partial(finish, job) for job in ordered),
                                               *(after or [])]
            with ThreadPoolExecutor(FINISHERS, thread_name_prefix="finish") as pool:
                futures = [pool.submit(task) for task in tasks]
            errors = [e for f in futures if (e := f.exception()) is not None]
            for e in errors:
                if not isinstance(e, TranscodeError):
                    raise e
            if errors:
                raise TranscodeError("\n".join(map(str, errors)))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _encode_all(self, jobs: list[Job], encodes: list[ff.Encode], master: MasterInfo, work: Path,
                    on_progress: Progress | None, verify: bool) -> Measurement | None:
        """The loudness measurement (once per master) and the one ffmpeg run; returns the former."""
        loud = None
        if any(e.spec.audio is not None and e.spec.audio.loudness is not None for e in encodes):
            if on_progress:
                on_progress(0.0, "measuring loudness (EBU R128)")
            loud = measure(master, self.cache.root, self.ffmpeg)
        args = ff.build_args(master, encodes, loud, self.ffmpeg, self._fontsdir(encodes), verify=verify)
        what = f"encoding {len(jobs)} rendition{'s' * (len(jobs) > 1)}"
        ff.run(args, cwd=work, duration=master.duration, what=what, on_progress=on_progress)
        return loud

    def _encodes(self, jobs: list[Job], work: Path) -> list[ff.Encode]:
        """Group outputs by identical video spec (one encoder each); write subtitle files."""
        encodes: list[ff.Encode] = []
        for job in jobs:
            for spec, output in job.encodes:
                path = f"{job.key}/{output.name}"
                (work / path).parent.mkdir(parents=True, exist_ok=True)
                same = [e for e in encodes if e.spec == spec] if self.share_encodes else []
                if same:
                    same[0].outputs.append((output, path))
                    continue
                enc = ff.Encode(spec=spec, outputs=[(output, path)])
                if spec.burn is not None:
                    enc.burn_file = f"burn-{len(encodes)}.ass"
                    write_burn_file(spec, spec.burn, work / enc.burn_file)
                encodes.append(enc)
        return encodes

    def _fontsdir(self, encodes: list[ff.Encode]) -> str:
        files = [e.spec.burn_font_file for e in encodes if e.burn_file]
        return str(Path(files[0]).parent) if files else ""

    def _check(self, job: Job, master: MasterInfo, work: Path, expected: list[float]) -> Probed:
        folder = work / job.key
        first = job.encodes[0][1]
        if first.container == "hls":
            rungs = [(o.name, spec) for spec, o in job.encodes]
            return check_hls(folder, rungs, master, expected, self.ffprobe, first.segment_seconds)
        max_bytes = job.params.max_bytes if isinstance(job.params, Mp4Params) else None
        return check_mp4(folder / first.name, job.encodes[0][0], expected, self.ffprobe, max_bytes)

    def _shrink(self, job: Job, master: MasterInfo, work: Path, loud: Measurement | None) -> None:
        """WeChat: re-encode at a lower bitrate (then a lower height) until the file fits."""
        assert isinstance(job.params, Mp4Params) and job.params.max_bytes
        cap, floors = job.params.max_bytes, job.params.min_kbps or {360: 300}
        spec, output = job.encodes[0]
        path = work / job.key / output.name
        for _ in range(4):
            size = path.stat().st_size
            if size <= cap:
                return
            kbps = int((spec.kbps or 1000) * cap * 0.95 / size)
            height = spec.height
            while kbps < floors.get(height, min(floors.values())):
                lower = [h for h in floors if h < height]
                if not lower:
                    raise TranscodeError(f"{job.profile.name}: cannot fit under {cap} bytes at 360p or above")
                height = max(lower)
            w, h = fit(master.width, master.height, *box(height))
            spec = replace(spec, width=w, height=h, pic_width=w, pic_height=h, kbps=kbps,
                           maxrate=int(kbps * 1.1), bufsize=kbps * 2)
            job.encodes = [(spec, Output(key=job.key, container="mp4", name=output.name))]
            args = ff.build_args(master, [ff.Encode(spec, [(output, f"{job.key}/{output.name}")])],
                                 loud, self.ffmpeg)
            ff.run(args, cwd=work, duration=master.duration, what=f"re-encoding {job.profile.name} smaller")
