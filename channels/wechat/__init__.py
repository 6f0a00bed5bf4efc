"""The ``wechat`` kind: an Official Account article for the release (``adapter``), its config block
and overrides (``options``), the article's texts and body (``article``), the cgi-bin API client
(``api``) and repeat re-posts (``repeat``)."""
