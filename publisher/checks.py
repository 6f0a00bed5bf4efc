"""``publisher check``: everything that can be known before anything is sent.

Loads the site config and the manifest, picks the channels, merges per-release overrides into
their options, probes and fully decodes the master, checks captions against its duration, and
asks each channel's offline ``validate``. Every problem is collected and raised at once. No
network, no writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from publisher.captions import check_captions
from publisher.config import SiteConfig
from publisher.contract import Channel, channel_class
from publisher.errors import InputError
from publisher.media import decode_check, probe_master, require_ffmpeg, sha256_file
from publisher.models import MasterInfo, Problem, Release
from publisher.release import PastCheck, load_release


@dataclass
class Prepared:
    """A release ready to run: validated release, master facts, channel adapters, content hashes."""

    config: SiteConfig
    release: Release
    master: MasterInfo
    channels: dict[str, Channel]
    hashes: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def select_channels(config: SiteConfig, release: Release, only: list[str] | None) -> list[Problem]:
    """Problems with the channel names a manifest or ``--only`` asks for."""
    problems = []
    known = sorted(config.options)
    for name in release.channels:
        if name not in config.options:
            problems.append(Problem(str(release.manifest_path), "channels",
                                    f"channel '{name}' is not in {config.path.name}",
                                    f"use one of: {', '.join(known)}"))
    for name in release.overrides:
        if name not in config.options:
            problems.append(Problem(str(release.manifest_path), f"overrides.{name}",
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


def build_channels(config: SiteConfig, release: Release, names: list[str],
                   state_dir: Path) -> tuple[dict[str, Channel], list[Problem]]:
    """Adapters with the manifest's ``overrides`` merged into their options."""
    channels: dict[str, Channel] = {}
    problems: list[Problem] = []
    for name in names:
        opts = config.options[name]
        override = release.overrides.get(name)
        if override:
            try:
                merged = {**opts.model_dump(), **override}
                opts = channel_class(opts.kind).Options.model_validate(merged)
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err["loc"])
                    problems.append(Problem(str(release.manifest_path), f"overrides.{name}.{loc}",
                                            str(err["msg"]), "correct or remove the override"))
                continue
        channels[name] = config.channel(name, state_dir, opts)
    return channels, problems


def content_hashes(release: Release, master: MasterInfo) -> dict[str, str]:
    """sha256 of everything a person approves: manifest, master, captions, thumbnail."""
    hashes = {"manifest": sha256_file(release.manifest_path), "master": master.sha256}
    for lang, path in sorted(release.captions.items()):
        hashes[f"captions.{lang}"] = sha256_file(path)
    if release.thumbnail:
        hashes["thumbnail"] = sha256_file(release.thumbnail)
    return hashes


def prepare(config: SiteConfig, manifest: Path, state_dir: Path,
            only: list[str] | None = None, past: PastCheck | None = None) -> Prepared:
    require_ffmpeg()
    release = load_release(manifest, past)
    problems = select_channels(config, release, only)
    if problems:
        raise InputError(problems)
    channels, problems = build_channels(config, release, channel_names(config, release, only), state_dir)
    master = probe_master(release.master)
    decode_check(release.master)
    warnings = []
    if not master.has_audio:
        warnings.append(f"{release.master.name} has no audio track; channels that need sound get silence")
    for lang, path in release.captions.items():
        problems += check_captions(path, field=f"captions.{lang}", duration=master.duration)
    for name, ch in channels.items():
        problems += ch.validate(release)
        try:
            present = ch.credentials_present()
        except InputError as exc:
            problems += exc.problems
        else:
            if not present:
                problems.append(Problem(str(config.path), f"channels.{name}",
                                        "the channel's credentials or secret are missing",
                                        "see `publisher channels` and the README's channel section"))
    if problems:
        raise InputError(problems)
    return Prepared(config, release, master, channels, content_hashes(release, master), warnings)
