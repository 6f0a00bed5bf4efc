"""Which version of a release a channel carries, and what changed between two versions.

A re-run of `publisher release` converges: the world is made to match the manifest. The core
records in each publication's journal (key ``CONTENT``) the fingerprint of what that channel was
last sent; a publication whose fingerprint differs from the release's gets an update. Only a
changed master makes a new version, which is refused (a new id is a new release).
"""

from __future__ import annotations

import hashlib
import json

from publisher.errors import InputError
from publisher.models import Problem, Release

#: the journal key where the core records the fingerprint a channel was last sent
CONTENT = "_content"
_FIELDS = ("title", "description", "tags", "languages", "publish_at", "overrides", "signage")


def fingerprint(release: Release, hashes: dict[str, str]) -> str:
    """What a channel shows of ``release``: texts, times, overrides and the bytes of every file."""
    data = release.model_dump(mode="json", include=set(_FIELDS))
    data["files"] = {k: v for k, v in hashes.items() if k != "manifest"}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def changes(old: Release, old_hashes: dict[str, str], new: Release, new_hashes: dict[str, str]) -> list[str]:
    """The fields that differ between two versions, e.g. ["title.en", "captions.zh-Hant"]."""
    out = []
    for name in ("title", "description"):
        a, b = getattr(old, name), getattr(new, name)
        out += [f"{name}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    out += [name for name in (*_FIELDS[2:], "channels", "repeat") if getattr(old, name) != getattr(new, name)]
    files = (set(old_hashes) | set(new_hashes)) - {"manifest"}
    return out + sorted(k for k in files if old_hashes.get(k) != new_hashes.get(k))


def master_changed(release: Release, old_sha: str, new_sha: str) -> InputError:
    return InputError(Problem(
        str(release.manifest_path), "master",
        f"the master changed (sha256 {old_sha[:12]}… → {new_sha[:12]}…): "
        "a changed master is a new release version, not an update",
        f"give the manifest a new id (e.g. {release.id}-v2) and run `publisher release`"))
