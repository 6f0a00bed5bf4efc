"""The HTML pages: sign-in, dashboard, release, releases to start, tasks.

Every page works without JavaScript; ``console.js`` only refreshes the parts marked
``data-live`` from their fragment URLs.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from publisher.errors import FourEyes, InputError
from publisher.models import State

from .app import Call, Console, endpoint
from .auth import LOGIN_COOKIE, SESSION_COOKIE, same
from .core import Detail, StatusRow, Verb, hashes_digest
from .previews import preview_routes
from .tasks import Outcome, Task
from .users import user_routes

log = logging.getLogger("publisher.console")
OVERDUE = timedelta(minutes=2)  # the service lifts an embargo within seconds
RANK = {"failed": 0, "deferred": 1, "overdue": 2, "awaiting": 3, "processing": 4, "pending": 5,
        "scheduled": 6, "live": 7, "withdrawn": 8, "cancelled": 9}
DASHBOARD_RELEASES = 100
CONFIRM = {Verb.withdraw, Verb.cancel}
LABELS = {Verb.approve: "Approve", Verb.retry: "Retry", Verb.update: "Update texts and captions",
          Verb.repair: "Repair", Verb.withdraw: "Withdraw", Verb.cancel: "Cancel (not yet live)"}


# --- sign-in -------------------------------------------------------------------------------------
def login_page(call: Call, message: str = "", status: int = 200) -> Response:
    if call.who is not None and not message:
        return RedirectResponse("/", 303)
    token = call.request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    nxt = call.field("next") or call.request.query_params.get("next", "/")
    response = call.render("login.html.j2", status, token=token, next=_safe_next(nxt), message=message,
                           name=call.field("name"))
    call.console.gate.set_login_token(call.request, response, token)
    return response


def login(call: Call) -> Response:
    gate, accounts = call.console.gate, call.console.core.accounts
    if not same(call.field("token"), call.request.cookies.get(LOGIN_COOKIE, "")):
        return login_page(call, "The sign-in form had expired. Please try again.", 403)
    name, address = call.field("name").strip(), gate.address(call.request)
    if gate.limiter.blocked(name, address):
        log.warning("sign-in refused for %r from %s: too many failed attempts", name, address)
        return login_page(call, "Too many failed attempts. Wait a minute, then try again.", 429)
    user = accounts.verify_password(name, call.field("password")) if name else None
    if user is None:
        gate.limiter.failed(name, address)
        log.warning("failed sign-in for %r from %s", name, address)
        return login_page(call, "Wrong user name or password.", 401)
    gate.limiter.succeeded(name, address)
    sid, _csrf = accounts.new_session(user.name, gate.settings.session_hours)
    log.info("%s signed in from %s", user.name, address)
    response = RedirectResponse(_safe_next(call.field("next")), 303)
    gate.set_session(call.request, response, sid)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def logout(call: Call) -> Response:
    sid = call.request.cookies.get(SESSION_COOKIE, "")
    if sid:
        call.console.core.accounts.end_session(sid)
    log.info("%s signed out", call.user)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _safe_next(value: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


# --- dashboard -----------------------------------------------------------------------------------
@dataclass
class Line:
    row: StatusRow
    title: str
    status: str  # the state, or "overdue" / "awaiting"
    when: datetime | None


def dashboard_lines(call: Call) -> tuple[list[Line], dict[str, str]]:
    q = call.request.query_params
    filters = {k: q.get(k, "").strip() for k in ("state", "channel", "from", "to")}
    core = call.console.core
    states = [str(s) for s in State]
    state = filters["state"] if filters["state"] in (*states, "overdue", "awaiting") else ""
    first, last = _day(filters["from"]), _day(filters["to"])
    selection = core.selection(
        state=state if state in states else None,
        channel=filters["channel"] if filters["channel"] in core.channels() else None,
        limit=0 if (first or last) else DASHBOARD_RELEASES)
    titles = core.titles(selection.releases)
    now, zone = datetime.now(UTC), core.zone
    lines = []
    for row in selection.rows:
        status = str(row.state)
        waiting = row.state in (State.SCHEDULED, State.PENDING)
        if waiting and row.publish_at and row.publish_at < now - OVERDUE:
            status = "overdue"
        elif row.state is State.PENDING and row.note == "awaiting approval":
            status = "awaiting"
        when = row.publish_at or row.updated_at
        day = when.astimezone(zone).date() if when else None
        if (first and (day is None or day < first)) or (last and (day is None or day > last)):
            continue
        if state in ("overdue", "awaiting") and status != state:
            continue
        lines.append(Line(row, titles.get(row.release, ""), status, when))
    lines.sort(key=lambda ln: -(ln.when.timestamp() if ln.when else 0))
    lines.sort(key=lambda ln: RANK[ln.status])
    filters["state"], filters["from"], filters["to"] = state, first.isoformat() if first else "", \
        last.isoformat() if last else ""
    return lines, filters


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def dashboard(call: Call) -> Response:
    lines, filters = dashboard_lines(call)
    return call.render("dashboard.html.j2", lines=lines, filters=filters, states=tuple(str(s) for s in State),
                       channels=call.console.core.channels(), live_query=str(call.request.query_params))


def dashboard_fragment(call: Call) -> Response:
    lines, _ = dashboard_lines(call)
    return call.render("dashboard_rows.html.j2", lines=lines)


# --- a release -----------------------------------------------------------------------------------
@dataclass
class Action:
    verb: Verb
    label: str
    confirm: bool
    channels: list[str]
    hint: str = ""


def actions(call: Call, d: Detail) -> list[Action]:
    """The buttons this user's role allows and the release's states make sense of."""
    assert call.who is not None
    states = {name: p.state for name, p in d.publications.items()}

    def on(*wanted: str) -> list[str]:
        return [n for n, s in states.items() if s in wanted]

    core = call.console.core
    offered: list[Action] = []
    approved = d.approval[2] if d.approval else None
    if core.require_approval and (d.awaiting or approved != d.hashes):
        hint = ("You submitted this release: another approver must approve it (four eyes)."
                if d.submitter == call.user else "")
        offered.append(Action(Verb.approve, "Approve this content", False, [], hint))
    retry = [n for n, p in d.publications.items()
             if p.state in ("failed", "deferred", "processing")
             or (p.state == "pending" and p.note != "awaiting approval")]
    wanted = {Verb.retry: retry, Verb.update: on("live", "scheduled"), Verb.repair: list(states),
              Verb.withdraw: on("live", "scheduled", "processing", "failed", "deferred"),
              Verb.cancel: on("scheduled", "pending", "deferred", "failed")}
    for verb, channels in wanted.items():
        if channels and verb in core.verbs():
            offered.append(Action(verb, LABELS[verb], verb in CONFIRM, channels))
    return [a for a in offered if call.who.may(a.verb)]


def release_context(call: Call, d: Detail) -> dict[str, Any]:
    return {"d": d, "tasks": call.console.tasks.about(d.release.id)[:5],
            "publications": d.publications}


def release_page(call: Call) -> Response:
    rid = call.request.path_params["rid"]
    d = call.console.core.detail(rid)
    if d is None:
        return call.render("message.html.j2", 404, title="Not found", message=f"No release '{rid}'.")
    return call.render("release.html.j2", actions=actions(call, d), seen=hashes_digest(d.hashes),
                       previewed=call.console.core.last_preview(rid),
                       may_preview=call.who is not None and call.who.may("preview"),
                       require_approval=call.console.core.require_approval, **release_context(call, d))


def release_fragment(call: Call) -> Response:
    d = call.console.core.detail(call.request.path_params["rid"])
    if d is None:
        return Response("", 404)
    return call.render("release_live.html.j2", **release_context(call, d))


def act(call: Call) -> Response:
    """POST /releases/{rid}/{verb}: checks, confirmation where it destroys, then a background task."""
    assert call.who is not None
    rid, name = call.request.path_params["rid"], call.request.path_params["verb"]
    core = call.console.core
    if name not in core.verbs():
        return call.render("message.html.j2", 404, title="Not found", message=f"No action '{name}'.")
    verb = Verb(name)
    if not call.who.may(verb):
        log.warning("%s (%s) may not %s %s: refused", call.user, call.who.user.role.value, verb.value, rid)
        return call.render("message.html.j2", 403, title="Not allowed",
                           message=f"Your role ({call.who.user.role.value}) cannot {verb.value}. "
                                   "Ask an admin if you need to.")
    d = core.detail(rid)
    if d is None:
        return call.render("message.html.j2", 404, title="Not found", message=f"No release '{rid}'.")
    channel = call.field("channel") or None
    if channel is not None and channel not in d.publications:
        return call.render("message.html.j2", 400, title="No such channel",
                           message=f"{rid} has no publication on '{channel}'.")
    if verb in CONFIRM and call.field("confirm") != "yes":
        return call.render("confirm.html.j2", verb=verb, label=LABELS[verb], d=d, channel=channel or "")
    try:
        core.precheck(verb, rid, call.user, call.field("seen"))
    except FourEyes as exc:
        log.warning("%s may not approve %s: four eyes", call.user, rid)
        return call.render("message.html.j2", 403, title="Another approver is needed", message=str(exc))
    except InputError as exc:
        return call.render("message.html.j2", 409, title="Not done", message=str(exc))
    keep = call.field("keep_private") == "yes"
    call.console.tasks.start(verb.value, rid, call.user,
                             lambda task: core.run_verb(verb, rid, channel, call.user, task,
                                                          keep_private=keep))
    return RedirectResponse(f"/releases/{rid}#activity", 303)


# --- releases to start, tasks --------------------------------------------------------------------
def start_page(call: Call) -> Response:
    core = call.console.core
    found = core.candidates()
    recent = {c.path: call.console.tasks.about(c.path)[:1] for c in found}
    return call.render("start.html.j2", candidates=found, recent=recent, folder=core.releases_dir(),
                       may_start=call.who is not None and call.who.may("start"))


def start(call: Call) -> Response:
    assert call.who is not None
    what = call.request.path_params["action"]
    core = call.console.core
    if what not in ("check", "plan", "preview", "release"):
        return call.render("message.html.j2", 404, title="Not found", message=f"No action '{what}'.")
    if not call.who.may("preview" if what == "preview" else "start"):
        log.warning("%s (%s) may not %s from the releases folder: refused", call.user,
                    call.who.user.role.value, what)
        return call.render("message.html.j2", 403, title="Not allowed",
                           message=f"Your role ({call.who.user.role.value}) cannot {what} releases.")
    relative = call.field("manifest")
    try:
        manifest = core.manifest(relative)
    except InputError as exc:
        return call.render("message.html.j2", 400, title="Not a manifest", message=str(exc))
    work = {"check": lambda t: _problems(core.check, manifest, t),
            "plan": lambda t: _problems(core.plan, manifest, t),
            "preview": lambda t: _problems(core.preview, manifest, t),
            "release": lambda t: core.start_release(manifest, call.user, t)}[what]
    task = call.console.tasks.start(what, relative, call.user, work)
    return RedirectResponse(f"/tasks/{task.id}", 303)


def _problems(step: Any, manifest: Any, task: Task) -> Outcome:
    try:
        outcome: Outcome = step(manifest, task)
    except InputError as exc:
        return Outcome(False, f"{task.what}: problems found", [str(p) for p in exc.problems])
    return outcome


def task_page(call: Call, fragment: bool = False) -> Response:
    task = call.console.tasks.get(int(call.request.path_params["tid"]))
    if task is None:
        return call.render("message.html.j2", 404, title="Not found",
                           message="No such task (tasks are forgotten when the console restarts).")
    candidates = (task.subject, task.outcome.release if task.outcome else "")
    rid = next((r for r in candidates if r and call.console.core.exists(r)), "")
    return call.render("task_live.html.j2" if fragment else "task.html.j2", task=task, release=rid)


def routes(console: Console) -> list[Route]:
    e = endpoint
    return [
        Route("/login", e(console, login_page, public=True), methods=["GET"]),
        Route("/login", e(console, login, public=True), methods=["POST"]),
        Route("/logout", e(console, logout), methods=["POST"]),
        Route("/", e(console, dashboard), methods=["GET"]),
        Route("/fragments/dashboard", e(console, dashboard_fragment), methods=["GET"]),
        Route("/releases/{rid}", e(console, release_page), methods=["GET"]),
        Route("/fragments/releases/{rid}", e(console, release_fragment), methods=["GET"]),
        Route("/releases/{rid}/{verb}", e(console, act), methods=["POST"]),
        *preview_routes(console),
        Route("/start", e(console, start_page), methods=["GET"]),
        Route("/start/{action}", e(console, start), methods=["POST"]),
        Route("/tasks/{tid:int}", e(console, task_page), methods=["GET"]),
        Route("/fragments/tasks/{tid:int}", e(console, lambda c: task_page(c, True)), methods=["GET"]),
        *user_routes(console),
    ]
