"""What a channel kind provides to the shared conformance suite (like rclone's backend tests).

Each kind adds ``tests/conformance/env_<kind>.py`` with::

    KIND = "website"          # the channel kind under test

    @contextmanager
    def environment(tmp_path: Path) -> Iterator[ConformanceEnv]:
        ...start loopback servers / make folders, yield an env, then stop them...

A module may define ``ENVIRONMENTS = {"folder": env_a, "webdav": env_b}`` instead of
``environment`` when one kind runs against several targets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ConformanceEnv:
    #: the channel's block for publisher.yaml (absolute paths; secret files already 0600)
    channel_config: dict[str, Any]
    #: identities of every remote object this channel created for the release (videos,
    #: articles, folders, feed items): after publish, re-publish and resume exactly one is expected
    remote_objects: Callable[[str], list[str]]
    #: True when the release is reachable by the public (public path, public video, live article)
    is_public: Callable[[str], bool]
    #: the title the public sees now in the default language ("" if none): proves update works
    public_title: Callable[[str], str]
    #: environment variables the channel needs (secrets named by *_env options)
    env: dict[str, str] = field(default_factory=dict)
    #: changes whenever anything is sent to the channel: the fake's count of requests, or the
    #: (path, inode, mtime) of every file on the target's disk
    activity: Callable[[], Any] = lambda: None
    #: the caption text the public gets in a language; None where a kind publishes no caption files
    public_caption: Callable[[str, str], str] | None = None
    #: damages the live release as a person might by hand (deletes a caption, a screen's video);
    #: None where the kind has nothing a repair sends again
    damage: Callable[[str], None] | None = None


def disk_state(root: Path) -> list[tuple[str, int, int]]:
    """(path, inode, mtime) of everything under ``root``: equal before and after means untouched."""
    if not root.exists():
        return []
    return sorted((str(p.relative_to(root)), p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*"))
