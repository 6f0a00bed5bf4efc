"""The ASGI app: routes, the identity and CSRF checks every request passes, security headers.

Handlers are plain functions run in a worker thread (the store and the core are synchronous);
each gets a ``Call``: the request, its form, and who is asking.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from publisher.contract import redact

from .auth import Gate, Identity, same, same_origin
from .core import Core
from .tasks import Tasks

log = logging.getLogger("publisher.console")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY"),
           (b"cross-origin-opener-policy", b"same-origin")]
MAX_BODY = 64 * 1024  # forms and API requests are small


class Console:
    """What every handler shares: the core, the gate, background tasks and the templates."""

    def __init__(self, core: Core, tasks: Tasks | None = None) -> None:
        self.core = core
        self.gate = Gate(core.accounts, core.config.settings.console)
        self.tasks = tasks or Tasks()
        self.app: ASGIApp | None = None
        self.templates = Environment(loader=PackageLoader("assets", "templates/console"),
                                     autoescape=select_autoescape(default=True, default_for_string=True),
                                     trim_blocks=True, lstrip_blocks=True, finalize=_redacted)

    def local(self, value: Any) -> str:
        return self.core.local(value)

    def render(self, call: Call | None, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        page = self.templates.get_template(template).render(
            site=self.core.site_name, zone=self.core.zone.key, me=call.who if call else None,
            csrf=call.who.csrf if call and call.who else "", local=self.local, **context)
        return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


@dataclass
class Call:
    console: Console
    request: Request
    form: FormData | None
    who: Identity | None

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return self.console.render(self, template, status, **context)

    @property
    def user(self) -> str:
        assert self.who is not None
        return self.who.user.name


Handler = Callable[[Call], Response]


def endpoint(console: Console, handler: Handler, *, public: bool = False, api: bool = False) -> Any:
    """Wraps a handler: reads the form, finds who is asking, refuses the unauthenticated and
    cross-site, then runs the handler in a worker thread."""

    async def run(request: Request) -> Response:
        form = None
        if request.method == "POST" and not api:
            form = await request.form(max_files=0, max_fields=50)
        body = await request.body() if api and request.method == "POST" else b""
        request.state.body = body
        return await run_in_threadpool(checked, request, form)

    def checked(request: Request, form: FormData | None) -> Response:
        gate = console.gate
        who = gate.identify(request, api=api)
        if request.method == "POST" and not same_origin(request, gate.https(request)):
            log.warning("refused a cross-site %s %s from %s", request.method, request.url.path,
                        gate.address(request))
            return _refuse(console, api, 403, "cross-site request refused")
        if who is None and not public:
            if api:
                return JSONResponse({"error": "authentication required: send Authorization: Bearer TOKEN"},
                                    401, headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"})
            if request.method == "GET":
                return RedirectResponse(f"/login?next={request.url.path}", 303)
            return console.render(None, "login.html.j2", 401, token="", next="/",
                                  message="Your session has ended; sign in again.")
        if (request.method == "POST" and not api and who is not None
                and not same(call_field(form, "csrf"), who.csrf)):
            log.warning("refused a POST to %s without a valid CSRF token (%s from %s)", request.url.path,
                        who.user.name, gate.address(request))
            return _refuse(console, api, 403, "the form has expired or did not come from this console; "
                                              "go back, reload the page and try again")
        response = handler(Call(console, request, form, who))
        if who is not None and who.new_session:
            gate.set_session(request, response, who.new_session)
        return response

    return run


def _redacted(value: Any) -> Any:
    """Every value a page shows passes here: no known secret reaches a page."""
    return redact(value) if isinstance(value, str) else value


def call_field(form: FormData | None, name: str) -> str:
    value = form.get(name) if form is not None else None
    return value if isinstance(value, str) else ""


def _refuse(console: Console, api: bool, status: int, message: str) -> Response:
    if api:
        return JSONResponse({"error": message}, status)
    return console.render(None, "message.html.j2", status, title="Refused", message=message)


class SecurityHeaders:
    """Adds the CSP and friends to every response, and refuses oversized bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if length.isdigit() and int(length) > MAX_BODY:
            await Response("request too large", 413)(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":  # a response's own policy (a preview's) stands
                own = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in own)]
            await send(message)

        await self.app(scope, receive, with_headers)
