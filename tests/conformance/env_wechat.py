"""The ``wechat`` kind against the loopback HTTPS WeChat fake (tests/fakes/wechat_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conformance.base import ConformanceEnv
from tests.fakes.wechat_server import serve_wechat

KIND = "wechat"
SECRET_ENV = "PUBLISHER_CONFORMANCE_WECHAT_SECRET"


@contextmanager
def environment(tmp_path: Path) -> Iterator[ConformanceEnv]:
    with serve_wechat(tmp_path / "tls") as server:
        fake = server.fake

        def objects(release_id: str) -> list[str]:
            return sorted(fake.objects_for(f"{release_id}.jpg"))

        def live_title(release_id: str) -> str:
            titles = [a["title"] for k, a in fake.objects_for(f"{release_id}.jpg").items()
                      if k.startswith("article:")]
            return titles[0] if titles else ""

        yield ConformanceEnv(
            channel_config={
                "kind": "wechat", "appid": fake.appid, "secret_env": SECRET_ENV,
                "api_root": server.url, "ca_bundle": str(server.ca_bundle),
                "author": "入境事务处", "poll_interval": 0.05, "publish_wait": 10,
            },
            remote_objects=objects,
            is_public=lambda rid: bool(live_title(rid)),
            public_title=live_title,
            env={SECRET_ENV: fake.secret},
            activity=lambda: len(fake.calls),
        )
