"""The JSON API for scripts: the same fields as `publisher status --json`, and the verbs.

GET requests accept an API token (``Authorization: Bearer ...``) or a console session; POST
requests need a token. A verb starts a task and answers 202 with the task's URL.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from publisher.contract import redact
from publisher.errors import FourEyes, InputError

from .app import Call, Console, endpoint
from .core import Verb, hashes_digest
from .tasks import Task

log = logging.getLogger("publisher.console")


def _json(data: Any, status: int = 200) -> JSONResponse:
    """Every answer passes through ``redact``: no known secret reaches a script."""
    return JSONResponse(_clean(data), status, headers={"Cache-Control": "no-store"})


def _clean(data: Any) -> Any:
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {k: _clean(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_clean(v) for v in data]
    return data


def releases(call: Call) -> Response:
    return _json(call.console.core.records())


def release(call: Call) -> Response:
    rid = call.request.path_params["rid"]
    if not call.console.core.exists(rid):
        return _json({"error": f"no release '{rid}'"}, 404)
    return _json(call.console.core.records(rid))


def verb(call: Call) -> Response:
    assert call.who is not None
    rid, name = call.request.path_params["rid"], call.request.path_params["verb"]
    core = call.console.core
    if call.who.via != "token":
        return _json({"error": "POST needs an API token: Authorization: Bearer TOKEN"}, 401)
    if name not in core.verbs():
        return _json({"error": f"no verb '{name}'; use one of {', '.join(core.verbs())}"}, 404)
    action = Verb(name)
    if not call.who.may(action):
        log.warning("%s (%s) may not %s %s over the API: refused", call.user, call.who.user.role.value,
                    name, rid)
        return _json({"error": f"the role {call.who.user.role.value} cannot {name}"}, 403)
    if not core.exists(rid):
        return _json({"error": f"no release '{rid}'"}, 404)
    try:
        body = json.loads(call.request.state.body or b"{}")
    except ValueError:
        return _json({"error": "the body is not JSON"}, 400)
    if not isinstance(body, dict):
        return _json({"error": "the body must be a JSON object"}, 400)
    channel = body.get("channel") or None
    if channel is not None and not any(r["channel"] == channel for r in core.records(rid)):
        return _json({"error": f"{rid} has no publication on '{channel}'"}, 400)
    seen = str(body.get("seen") or hashes_digest(core.store.release_hashes(rid)))
    try:
        core.precheck(action, rid, call.user, seen)
    except FourEyes as exc:
        return _json({"error": str(exc)}, 403)
    except InputError as exc:
        return _json({"error": str(exc)}, 409)
    keep = bool(body.get("keep_private", False))
    task = call.console.tasks.start(name, rid, call.user, lambda t: core.run_verb(
        action, rid, channel, call.user, t, keep_private=keep))
    return _json({"task": task.id, "url": f"/api/tasks/{task.id}"}, 202)


def task(call: Call) -> Response:
    found = call.console.tasks.get(int(call.request.path_params["tid"]))
    if found is None:
        return _json({"error": "no such task"}, 404)
    return _json(task_record(found))


def task_record(t: Task) -> dict[str, Any]:
    o = t.outcome
    return {"id": t.id, "what": t.what, "subject": t.subject, "user": t.user, "state": t.state.value,
            "started": t.started.isoformat(timespec="seconds"),
            "finished": t.finished.isoformat(timespec="seconds") if t.finished else "",
            "headline": o.headline if o else "", "lines": o.lines if o else [],
            "results": o.table if o else [], "release": o.release if o else ""}


def routes(console: Console) -> list[Route]:
    return [Route("/api/releases", endpoint(console, releases, api=True), methods=["GET"]),
            Route("/api/releases/{rid}", endpoint(console, release, api=True), methods=["GET"]),
            Route("/api/releases/{rid}/{verb}", endpoint(console, verb, api=True), methods=["POST"]),
            Route("/api/tasks/{tid:int}", endpoint(console, task, api=True), methods=["GET"])]
