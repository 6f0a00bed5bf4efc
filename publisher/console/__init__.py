"""`publisher serve`: the browser console over the same engine and state store as the CLI.

``core`` is the only module here that calls into the engine; ``server`` assembles the ASGI app
from ``app`` (the request checks and shared pieces),
``auth`` holds sessions, tokens, CSRF and login limits, ``pages`` and ``api`` the endpoints.
"""
