"""The ``signage`` kind: the share digital-signage players poll (``adapter``), its config block and
the daily window a release manifest may set (``options``)."""
