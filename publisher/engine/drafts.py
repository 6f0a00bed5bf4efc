"""Which texts of a recorded release are machine drafts no person has reviewed yet: drafted by
``publisher draft``, unchanged since (same sha256), and not covered by a later approval."""

from __future__ import annotations

from publisher.inputs.drafting import TEXT_FIELDS, digest
from publisher.models import Release
from publisher.store import Store
from publisher.store.drafts import drafts


def current(release: Release, hashes: dict[str, str]) -> dict[str, str]:
    """sha256 of each text and caption file as the release has it now, keyed as drafts are."""
    now = {f"captions.{lang}": hashes.get(f"captions.{lang}", "") for lang in release.captions}
    for name in TEXT_FIELDS:
        values = release.title if name == "title" else release.description
        now.update({f"{name}.{lang}": digest(text) for lang, text in values.items()})
    now.update({f"tags.{tag}": digest(tag) for tag in release.tags})
    return now


def unreviewed(store: Store, release: Release, hashes: dict[str, str]) -> list[str]:
    found = drafts(store, release.id)
    if not found:
        return []
    approval = store.approval(release.id)
    now = current(release, hashes)
    return [d.key for d in found
            if now.get(d.key) == d.sha256 and (approval is None or approval[1] < d.at)]


def warning(store: Store, release: Release, hashes: dict[str, str]) -> list[str]:
    keys = unreviewed(store, release, hashes)
    if not keys:
        return []
    return [f"machine drafts no person has reviewed: {', '.join(keys)} (edit them, or approve them "
            "with `publisher approve`)"]
