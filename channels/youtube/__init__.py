"""The ``youtube`` kind: the adapter (``adapter``), its config block, quota settings and overrides
(``options``), video metadata rules (``meta``), the quota budget shared through the state store
(``quota``), the API client and exactly-once upload (``upload``) and the first sign-in (``auth``)."""
