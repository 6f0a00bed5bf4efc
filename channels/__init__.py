"""Channel adapters: one sub-package per kind (``website``, ``app_feed``, ``signage``, ``youtube``,
``wechat``), plus what several kinds share (``files``, ``transports``).

A kind is found by ``publisher.contract``'s registry, never by importing this package's modules
up front: a sub-package is a kind when its ``options`` module defines ``KIND`` (with ``Options``,
the channel's block in the site config, and ``Overrides``, what a release manifest may change).
Its ``adapter`` module, which imports the heavy libraries (Google's client, paramiko, requests,
Jinja2), is imported only when an adapter of that kind is built.
"""
