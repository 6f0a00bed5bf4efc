"""The ``youtube`` kind against the loopback HTTPS YouTube Data API fake (tests/fakes/youtube_server.py).

The fake holds one channel per environment, so every video not deleted there belongs to the
release under test; ``remote_objects`` also checks the title, which carries the release's title.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conformance.base import ConformanceEnv
from tests.fakes.youtube_server import YouTubeFake

KIND = "youtube"


@contextmanager
def environment(tmp_path: Path) -> Iterator[ConformanceEnv]:
    with YouTubeFake(tmp_path / "youtube") as fake:
        credentials = fake.write_credentials(tmp_path / "secrets" / "youtube.json")

        def videos(release_id: str) -> list[str]:
            return sorted(fake.live_videos())

        def public(release_id: str) -> list[str]:
            with fake.model.lock:
                out = []
                for vid in fake.live_videos():
                    v = fake.model.videos[vid]
                    fake.model.flip_scheduled(v)
                    if v.status.get("privacyStatus") == "public":
                        out.append(str(v.snippet.get("title", "")))
                return out

        def live_video() -> Any:
            return next(fake.model.videos[v] for v in fake.live_videos())

        def caption(release_id: str, lang: str) -> str:
            with fake.model.lock:
                v = live_video()
                return next((v.caption_bytes[cid].decode() for cid, c in v.captions.items()
                             if c["snippet"]["language"] == lang), "")

        def delete_caption(release_id: str) -> None:
            with fake.model.lock:
                v = live_video()
                cid = next(cid for cid, c in v.captions.items() if c["snippet"]["language"] == "en")
                del v.captions[cid], v.caption_bytes[cid]

        yield ConformanceEnv(
            channel_config={
                "kind": "youtube", "credentials": str(credentials), "api_root": fake.url,
                "ca_bundle": str(fake.certfile), "chunk_mib": 0.25, "timeout": 10,
                "playlist": "PLpublisher",
            },
            remote_objects=videos,
            is_public=lambda rid: bool(public(rid)),
            public_title=lambda rid: (public(rid) or [""])[0],
            activity=lambda: len(fake.model.log),
            public_caption=caption,
            damage=delete_caption,
        )
