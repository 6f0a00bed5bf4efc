"""Who is asking: sessions (server-side, in the state store), API tokens, a trusted proxy's
single-sign-on header; CSRF tokens, login limits, and what each role may do.

The peer address is the TCP peer. Forwarded headers (X-Forwarded-For, X-Forwarded-Proto) and the
sign-on header are believed only from an address in ``trusted_proxies``.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from publisher.inputs.config import ConsoleSettings
from publisher.roles import Role
from publisher.store.accounts import Accounts, User

from .core import Verb

log = logging.getLogger("publisher.console.auth")
SESSION_COOKIE = "publisher_session"
LOGIN_COOKIE = "publisher_login"

#: the least role each action needs (roles are cumulative)
NEEDS: dict[Verb | str, Role] = {
    Verb.approve: Role.approver, Verb.retry: Role.publisher, Verb.update: Role.publisher,
    Verb.repair: Role.publisher, Verb.withdraw: Role.publisher, Verb.cancel: Role.publisher,
    "start": Role.publisher, "preview": Role.publisher, "users": Role.admin,
}


@dataclass
class Identity:
    user: User
    csrf: str  # "" for API tokens, which need none
    via: str  # "session", "token" or "header"
    new_session: str = ""  # a session made on this request (single sign-on): set its cookie

    def may(self, action: Verb | str) -> bool:
        return self.user.role.allows(NEEDS[action])


class LoginLimiter:
    """At most ``limit`` failed logins per (user name, address) in ``window`` seconds."""

    def __init__(self, limit: int = 5, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = self.clock()
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, name: str, address: str) -> bool:
        with self._lock:
            return len(self._recent((name.lower(), address))) >= self.limit

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            self._recent((name.lower(), address)).append(self.clock())

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop((name.lower(), address), None)


class Gate:
    """Resolves the identity behind a request, for one console."""

    def __init__(self, accounts: Accounts, settings: ConsoleSettings) -> None:
        self.accounts = accounts
        self.settings = settings
        self.limiter = LoginLimiter()

    # --- where the request comes from -------------------------------------------------------
    def trusted(self, request: Request) -> bool:
        peer = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self.settings.trusted_proxies)

    def address(self, request: Request) -> str:
        """The client's address: the peer, or the last hop a trusted proxy names."""
        peer = request.client.host if request.client else "unknown"
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded and self.trusted(request):
            return forwarded.split(",")[-1].strip() or peer
        return peer

    def https(self, request: Request) -> bool:
        if request.url.scheme == "https":
            return True
        return self.trusted(request) and request.headers.get("x-forwarded-proto", "") == "https"

    # --- who is asking ----------------------------------------------------------------------
    def identify(self, request: Request, *, api: bool = False) -> Identity | None:
        bearer = request.headers.get("authorization", "")
        if api and bearer[:7].lower() == "bearer ":
            user = self.accounts.token_user(bearer[7:].strip())
            return Identity(user, "", "token") if user else None
        sid = request.cookies.get(SESSION_COOKIE, "")
        found = self.accounts.session_user(sid) if sid else None
        header = self.settings.auth.header
        if header and header.lower() in request.headers:
            return self._single_sign_on(request, request.headers[header.lower()].strip(), found)
        return Identity(found[0], found[1], "session") if found else None

    def _single_sign_on(self, request: Request, name: str,
                        found: tuple[User, str] | None) -> Identity | None:
        if not self.trusted(request):
            log.warning("ignored the %s header from %s, which is not a trusted proxy",
                        self.settings.auth.header, self.address(request))
            return Identity(found[0], found[1], "session") if found else None
        if found and found[0].name == name:
            return Identity(found[0], found[1], "header")
        user = self.accounts.user(name)
        if user is None or user.disabled:
            log.warning("single sign-on: %r from %s is not an enabled console user", name,
                        self.address(request))
            return None
        sid, csrf = self.accounts.new_session(user.name, self.settings.session_hours)
        log.info("single sign-on: %s from %s", user.name, self.address(request))
        return Identity(user, csrf, "header", new_session=sid)

    # --- cookies ----------------------------------------------------------------------------
    def set_session(self, request: Request, response: Response, sid: str) -> None:
        response.set_cookie(SESSION_COOKIE, sid, max_age=int(self.settings.session_hours * 3600), path="/",
                            secure=self.https(request), httponly=True, samesite="strict")

    def set_login_token(self, request: Request, response: Response, token: str) -> None:
        """The login form's CSRF token goes in a cookie and in the form (double submit)."""
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/login", secure=self.https(request),
                            httponly=True, samesite="strict")


def same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and secrets.compare_digest(a.encode(), b.encode())


def same_origin(request: Request, https: bool) -> bool:
    """A browser's Origin header, when it sends one, must be this console."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"{'https' if https else 'http'}://{host}", f"{request.url.scheme}://{host}")
