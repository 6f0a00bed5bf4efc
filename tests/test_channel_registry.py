"""The channel registry finds kinds through their options modules: loading a site config or a
release manifest imports no adapter and none of the libraries the adapters use; an adapter's
module is imported when an adapter of its kind is built."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from publisher.contract import (
    Channel,
    ChannelOverrides,
    channel_class,
    option_classes,
    override_class,
)
from tests.conftest import Project

HEAVY = {"requests", "urllib3", "paramiko", "httplib2", "google", "googleapiclient", "google_auth_httplib2",
         "google_auth_oauthlib", "jinja2", "markupsafe", "pysubs2"}
KINDS = {"website", "app-feed", "signage", "youtube", "wechat"}

LOAD = """
import json, sys
from pathlib import Path
from publisher.inputs.config import load_config
from publisher.contract import option_classes, override_class
from publisher.inputs.manifest import load_release

config = load_config(Path(sys.argv[1]))
release = load_release(Path(sys.argv[2]), channels={n: o.kind for n, o in config.options.items()})
print(json.dumps({"kinds": sorted(option_classes()), "overrides": release.overrides,
                  "schemas": {k: override_class(k).__name__ for k in option_classes()},
                  "modules": sorted(sys.modules)}))
"""


def every_kind(project: Callable[[], Project], tmp_path: Path) -> Project:
    proj = project()
    (proj.root / "secrets").mkdir()
    proj.add_channel("web", {"kind": "website", "target": "www", "public_url": "https://www.example.gov.hk/v/"})
    proj.add_channel("app", {"kind": "app-feed", "target": "sftp://u@127.0.0.1:9/f", "key_file": "secrets/k",
                             "public_url": "https://app.example.gov.hk/f/",
                             "fcm": {"credentials": "secrets/fcm.json", "topic": "news"}})
    proj.add_channel("hall", {"kind": "signage", "target": "webdav://127.0.0.1:9/s", "sites": ["hall"]})
    proj.add_channel("yt", {"kind": "youtube", "credentials": "secrets/yt.json", "quota_pool": "gcp"})
    proj.add_channel("wx", {"kind": "wechat", "appid": "wx0123456789abcdef", "secret_env": "WX_SECRET"})
    proj.manifest["overrides"] = {"yt": {"privacy": "unlisted"}, "wx": {"digest": "摘要"},
                                  "hall": {"window": "09:00-18:00"}}
    proj.write()
    return proj


def test_loading_a_config_and_a_manifest_imports_no_adapter(project: Callable[[], Project],
                                                            tmp_path: Path) -> None:
    proj = every_kind(project, tmp_path)
    out = subprocess.run([sys.executable, "-c", LOAD, str(proj.config_path), str(proj.manifest_path)],
                         capture_output=True, text=True, check=True)
    found = json.loads(out.stdout)
    assert set(found["kinds"]) == KINDS
    assert found["overrides"] == {"yt": {"privacy": "unlisted"}, "wx": {"digest": "摘要"},
                                  "hall": {"window": "09:00-18:00"}}
    assert found["schemas"] == {"website": "ChannelOverrides", "app-feed": "ChannelOverrides",
                                "signage": "SignageOverrides", "youtube": "YouTubeOverrides",
                                "wechat": "WeChatOverrides"}
    modules = set(found["modules"])
    assert not HEAVY & {m.split(".")[0] for m in modules}
    channels = {m for m in modules if m == "channels" or m.startswith("channels.")}
    packages = {"channels", "channels.transports", *(f"channels.{k.replace('-', '_')}" for k in KINDS)}
    assert channels - packages == {"channels.transports.options",
                                   *(f"channels.{k.replace('-', '_')}.options" for k in KINDS)}


def test_building_an_adapter_imports_its_module_and_finds_its_class() -> None:
    assert set(option_classes()) >= KINDS
    for kind in KINDS:
        options = option_classes()[kind]
        cls = channel_class(kind)
        assert issubclass(cls, Channel) and cls.kind == kind
        assert cls.Options is options and cls.Overrides is override_class(kind)
        assert cls.__module__ == f"channels.{kind.replace('-', '_')}.adapter"
        assert issubclass(override_class(kind), ChannelOverrides)
    for lookup in (channel_class, override_class):
        with pytest.raises(KeyError):
            lookup("fax")


def test_an_unknown_kind_names_the_kinds_there_are(project: Callable[[], Project], cli: Callable[..., object],
                                                   tmp_path: Path) -> None:
    proj = project()
    proj.add_channel("fax", {"kind": "fax", "number": "1868"})
    proj.write()
    result = cli(proj, "channels")
    output = str(getattr(result, "output", ""))
    assert getattr(result, "exit_code", None) == 2
    assert "unknown channel kind 'fax'" in output
    assert all(kind in output for kind in KINDS)
