"""The ``website`` kind's block in the site config; a release manifest overrides nothing."""

from __future__ import annotations

from channels.transports.options import FileOptions, PublicUrl
from publisher.contract import ChannelOverrides

KIND = "website"


class WebsiteOptions(FileOptions):
    #: the address at which ``target`` is served, e.g. https://www.example.gov.hk/videos/
    public_url: PublicUrl
    #: heading and language of the site-level index.html
    site_title: str = ""
    site_language: str = "en"


Options = WebsiteOptions
Overrides = ChannelOverrides
