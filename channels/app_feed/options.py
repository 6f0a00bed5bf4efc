"""The ``app-feed`` kind's block in the site config, with its optional ``fcm:`` push block; a
release manifest overrides nothing."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, field_validator

from channels.transports.options import FileOptions, PublicUrl
from publisher.contract import ChannelOverrides, Timeout

KIND = "app-feed"


class FcmOptions(BaseModel):
    """``fcm:`` block of an app-feed channel."""

    model_config = ConfigDict(extra="forbid")

    credentials: str  # service-account JSON file, mode 0600
    topic: str  # the app subscribes its users to this topic
    project_id: str | None = None  # default: the credentials file's project_id
    api_root: str = "https://fcm.googleapis.com/"
    ca_bundle: str | None = None
    timeout: Timeout = 30.0

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        if not re.fullmatch(r"[a-zA-Z0-9-_.~%]{1,900}", v):
            raise ValueError("topic may use only letters, digits and - _ . ~ %")
        return v


class AppFeedOptions(FileOptions):
    public_url: PublicUrl  # where ``target`` is served, e.g. https://app.example.gov.hk/feed/
    feed_title: str = "Videos"
    home_page_url: str | None = None
    language: str | None = None  # the feed's language; default: each release's default language
    #: a website channel whose player page becomes each item's ``url`` (else the MP4's URL)
    page_channel: str | None = None
    max_items: int = 100
    #: optional push notification through FCM HTTP v1 when an item goes live (at most once)
    fcm: FcmOptions | None = None


Options = AppFeedOptions
Overrides = ChannelOverrides
