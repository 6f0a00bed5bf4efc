"""The ``wechat`` kind's block in the site config, and what a release manifest may override: the
article's texts."""

from __future__ import annotations

import re

from pydantic import field_validator

from publisher.contract import ChannelOptions, ChannelOverrides, PlainLine, Timeout

KIND = "wechat"


class WeChatOptions(ChannelOptions):
    appid: str
    secret_env: str
    api_root: str = "https://api.weixin.qq.com/"
    ca_bundle: str | None = None
    language: str = "zh-Hans"
    author: str = ""
    auto_publish: bool = True
    #: channel names whose public URL the article links to, in order; default: first website, else YouTube
    link_from: list[str] = []
    poll_interval: float = 3.0
    publish_wait: float = 120.0  # then state ``processing``; status/publish keep polling later
    timeout: Timeout = 120.0

    @field_validator("appid")
    @classmethod
    def _appid(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
            raise ValueError("appid looks wrong: copy it from 公众平台 → 设置与开发 → 基本配置 "
                             "(wx + 16 hex digits)")
        return value

    @field_validator("api_root")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("WeChat answers only over HTTPS: api_root must start with https://")
        return value


class WeChatOverrides(ChannelOverrides):
    """What a release manifest may change for a WeChat channel: the article's texts, as plain
    text in the channel's language (checked against WeChat's limits like the defaults)."""

    title: PlainLine | None = None
    author: PlainLine | None = None
    digest: PlainLine | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("the title is empty; write one, or remove the override to use title")
        return value


Options = WeChatOptions
Overrides = WeChatOverrides
