"""The ``website`` kind's block in the site config; a release manifest overrides nothing."""

from __future__ import annotations

from channels.transports.options import FileOptions, PublicUrl
from publisher.contract import ChannelOverrides

KIND = "website"


class WebsiteOptions(FileOptions):
    #: the address at which ``target`` is served, e.g. https://www.example.gov.hk/videos/
    public_url: PublicUrl
    #: heading of the site's index pages: one text, or one per language ({en: ..., zh-Hant: ...})
    site_title: str | dict[str, str] = ""
    #: language of the site's index.html; the other languages get index.<lang>.html
    site_language: str = "en"

    def site_titles(self, fallback: str) -> dict[str, str]:
        """The site's title by language, always with one for ``site_language``."""
        given = self.site_title if isinstance(self.site_title, dict) else (
            {self.site_language: self.site_title} if self.site_title else {})
        titles = {lang: text for lang, text in given.items() if text}
        default = titles.get(self.site_language) or next(iter(titles.values()), fallback)
        return {**titles, self.site_language: default}


Options = WebsiteOptions
Overrides = ChannelOverrides
