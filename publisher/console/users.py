"""The admin's page: console users (add, disable) and their API tokens (revoke)."""

from __future__ import annotations

import logging

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from publisher.errors import InputError
from publisher.roles import Role

from .app import Call, Console, endpoint

log = logging.getLogger("publisher.console")


def _forbidden(call: Call) -> Response | None:
    assert call.who is not None
    if call.who.may("users"):
        return None
    log.warning("%s (%s) may not manage users: refused", call.user, call.who.user.role.value)
    return call.render("message.html.j2", 403, title="Not allowed",
                       message=f"Your role ({call.who.user.role.value}) cannot manage users.")


def users_page(call: Call, message: str = "", status: int = 200) -> Response:
    refused = _forbidden(call)
    if refused:
        return refused
    return call.render("users.html.j2", status, users=call.console.core.accounts.users(),
                       roles=[r.value for r in Role], message=message)


def add_user(call: Call) -> Response:
    refused = _forbidden(call)
    if refused:
        return refused
    name, role = call.field("name").strip(), call.field("role")
    if role not in {r.value for r in Role}:
        return users_page(call, "Choose a role.", 400)
    try:
        call.console.core.accounts.add_user(name, Role(role), call.field("password"))
    except InputError as exc:
        return users_page(call, str(exc), 400)
    log.info("%s added the user %s (%s)", call.user, name, role)
    return RedirectResponse("/users", 303)


def disable_user(call: Call) -> Response:
    refused = _forbidden(call)
    if refused:
        return refused
    name = call.request.path_params["name"]
    if name == call.user:
        return users_page(call, "You cannot disable yourself; ask another admin.", 400)
    accounts = call.console.core.accounts
    try:
        accounts.disable(name)
    except InputError as exc:
        return users_page(call, str(exc), 404)
    accounts.revoke_tokens(name)
    log.info("%s disabled the user %s and revoked their tokens", call.user, name)
    return RedirectResponse("/users", 303)


def user_routes(console: Console) -> list[Route]:
    return [Route("/users", endpoint(console, users_page), methods=["GET"]),
            Route("/users", endpoint(console, add_user), methods=["POST"]),
            Route("/users/{name}/disable", endpoint(console, disable_user), methods=["POST"])]
