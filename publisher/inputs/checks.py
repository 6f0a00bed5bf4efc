"""``publisher check``: everything that can be known before anything is sent.

Loads the site config and the manifest (each ``overrides`` block checked against its channel
kind's override schema), picks the channels, probes and fully decodes the master, checks
captions against its duration, and asks each channel's offline ``validate``. Every problem is
collected and raised at once. No network, no writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from publisher.contract import AccountState, Channel, override_class, override_problems
from publisher.errors import InputError
from publisher.inputs.captionqa import caption_quality
from publisher.inputs.captions import check_captions
from publisher.inputs.config import SiteConfig
from publisher.inputs.manifest import PastCheck, load_release
from publisher.inputs.media import decode_check, probe_master, require_ffmpeg, sha256_file
from publisher.inputs.snapshots import Snapshots, Source
from publisher.models import MasterInfo, Problem, Release


@dataclass
class Prepared:
    """A release ready to run: validated release, master facts, channel adapters, content hashes."""

    config: SiteConfig
    release: Release
    master: MasterInfo
    channels: dict[str, Channel]
    hashes: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    #: caption quality: among the warnings, and errors under ``check --strict``
    quality: list[Problem] = field(default_factory=list)
    #: False when the full decode check of the master is left to the encode (``release``)
    decoded: bool = True


def select_channels(config: SiteConfig, release: Release, only: list[str] | None) -> list[Problem]:
    """Problems with the channel names a manifest or ``--only`` asks for."""
    problems = []
    known = sorted(config.options)
    for name in release.channels:
        if name not in config.options:
            problems.append(Problem(str(release.manifest_path), "channels",
                                    f"channel '{name}' is not in {config.path.name}",
                                    f"use one of: {', '.join(known)}"))
    for i, rule in enumerate(release.repeat):
        for name in rule.channels:
            if name not in (release.channels or known):
                problems.append(Problem(str(release.manifest_path), f"repeat[{i}].channels",
                                        f"channel '{name}' is not a channel of this release",
                                        f"use one of: {', '.join(release.channels or known)}"))
    for name in only or []:
        if name not in (release.channels or known):
            problems.append(Problem("--only", name, f"channel '{name}' is not a channel of this release",
                                    f"use one of: {', '.join(release.channels or known)}"))
    return problems


def channel_names(config: SiteConfig, release: Release, only: list[str] | None) -> list[str]:
    names = release.channels or sorted(config.options)
    return [n for n in names if not only or n in only]


def channel_kinds(config: SiteConfig) -> dict[str, str]:
    """Channel name -> kind, for reading a manifest's overrides (which imports no adapter)."""
    return {name: opts.kind for name, opts in config.options.items()}


def build_channels(config: SiteConfig, release: Release, names: list[str], state_dir: Path,
                   accounts: AccountState | None = None) -> tuple[dict[str, Channel], list[Problem]]:
    """Adapters with their options exactly as configured. Each reads the manifest's overrides
    through its kind's override schema; a stored release whose overrides that schema no longer
    accepts is refused here, before anything is sent."""
    channels: dict[str, Channel] = {}
    problems: list[Problem] = []
    for name in names:
        kind = config.options[name].kind
        bad = override_problems(name, kind, override_class(kind), release.overrides.get(name) or {},
                                str(release.manifest_path))
        if bad:
            problems += bad
            continue
        channels[name] = config.channel(name, state_dir, accounts=accounts)
    return channels, problems


def content_hashes(release: Release, master: MasterInfo,
                   sources: dict[str, Source] | None = None) -> dict[str, str]:
    """sha256 of everything a person approves: manifest, master, captions, thumbnail (of their
    snapshots when ``sources`` has them)."""
    def digest(key: str, path: Path) -> str:
        return sources[key].sha256 if sources and key in sources else sha256_file(path)

    hashes = {"manifest": sha256_file(release.manifest_path), "master": master.sha256}
    for lang, path in sorted(release.captions.items()):
        hashes[f"captions.{lang}"] = digest(f"captions.{lang}", path)
    if release.thumbnail:
        hashes["thumbnail"] = digest("thumbnail", release.thumbnail)
    return hashes


def prepare(config: SiteConfig, manifest: Path, state_dir: Path,
            only: list[str] | None = None, past: PastCheck | None = None,
            snapshots: Snapshots | None = None, accounts: AccountState | None = None, *,
            decode: bool = True) -> Prepared:
    """Everything checked, nothing sent. With ``snapshots`` (``release``, ``update``), the master,
    captions and thumbnail are copied as they are hashed, and every check reads the copies; a
    refused release leaves no copy behind. ``decode=False`` leaves the full decode pass to
    the caller (``release`` makes it in the encode's read)."""
    try:
        return _prepare(config, manifest, state_dir, only, past, snapshots, accounts, decode)
    except BaseException:
        if snapshots is not None:
            snapshots.discard_new()
        raise


def _prepare(config: SiteConfig, manifest: Path, state_dir: Path, only: list[str] | None,
             past: PastCheck | None, snapshots: Snapshots | None,
             accounts: AccountState | None, decode: bool) -> Prepared:
    require_ffmpeg()
    release = load_release(manifest, past, channels=channel_kinds(config), zone=config.settings.timezone)
    problems = select_channels(config, release, only)
    if problems:
        raise InputError(problems)
    channels, problems = build_channels(config, release, channel_names(config, release, only), state_dir,
                                        accounts)
    sources = take_snapshots(release, snapshots) if snapshots is not None else {}

    def checked(key: str, path: Path) -> Path:
        return sources[key].path if key in sources else path

    master_file = checked("master", release.master)
    master = probe_master(master_file, sha256=sources["master"].sha256 if sources else None,
                          shown_as=release.master)
    master = master.model_copy(update={"path": release.master})
    if decode:
        decode_check(master_file, shown_as=release.master)
    warnings = []
    if not master.has_audio:
        warnings.append(f"{release.master.name} has no audio track; channels that need sound get silence")
    quality: list[Problem] = []
    for lang, path in release.captions.items():
        found = check_captions(checked(f"captions.{lang}", path), field=f"captions.{lang}",
                               duration=master.duration, shown_as=path)
        problems += found
        if not found:
            quality += caption_quality(checked(f"captions.{lang}", path), lang, field=f"captions.{lang}",
                                       shown_as=path)
    warnings += [str(p) for p in quality]
    for ch in channels.values():
        problems += ch.validate(release)
        warnings += [str(w) for w in ch.warnings()]
        problems += ch.credential_problems()
    if problems:
        raise InputError(problems)
    return Prepared(config, release, master, channels, content_hashes(release, master, sources), warnings,
                    quality, decoded=decode)


def take_snapshots(release: Release, snapshots: Snapshots) -> dict[str, Source]:
    """Read-only copies of the master, captions and thumbnail, keyed like ``content_hashes``."""
    files = {"master": release.master, **{f"captions.{lang}": p for lang, p in release.captions.items()}}
    if release.thumbnail:
        files["thumbnail"] = release.thumbnail
    return {key: snapshots.take(path) for key, path in files.items()}
