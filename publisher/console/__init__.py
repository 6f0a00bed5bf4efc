"""`publisher serve`: the browser console over the same engine and state store as the CLI.

``engine`` is the only module here that calls into the core; ``app`` builds the ASGI app,
``auth`` holds sessions, tokens, CSRF and login limits, ``pages`` and ``api`` the endpoints.
"""
