"""The ``website`` kind: a release folder with an HLS/MP4 player page per language (``adapter``),
its config block (``options``) and the pages it renders (``pages``)."""
