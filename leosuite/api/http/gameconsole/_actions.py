"""The ``{target, action, authkey}`` envelope of GameConsole, on :class:`ServerOps`.

=====================  ===================================================  ==========
target / action        does                                                 leosuite
=====================  ===================================================  ==========
management / status    every server the account may see, keyed by handle    status
management / servers   ``{"servers": [name, ...]}``                          list
server / status        one server's state                                   status
server / start         start it, unless it is running already               start
server / stop          SIGTERM to it (the origin's ``Process.destroy``)     kill
server / forcestop     SIGKILL to it (``destroyForcibly``)                  force_kill
server / command       one line to its console, dropped when not running    command
server / log           console text from ``readIndex``                      log
=====================  ===================================================  ==========

Every request is made as the account of its ``authkey`` (or ``Authorization: Bearer``),
with the permission checks and audit entries of leosuite's own API: a server the account
may not see is 404, as an unknown one. A ``log`` request may instead name a handle
(:mod:`._handles`) and carry no token, as the client sends it. An action the server's
state makes moot (a start of a running server, a stop of a stopped one) does nothing
and answers the state, as the origin did. States are the origin's two: ``started``
while a process exists (starting, running, stopping), ``stopped`` otherwise.
"""

from __future__ import annotations

import base64
import sqlite3
from typing import Any

import msgspec

from ....auth.permissions import may_see_server_owners
from ....errors import AuthError, Conflict, InvalidInput, MethodNotAllowed, NotFound
from ....store import accounts
from ....supervision.states import ACTIVE_STATES, COMMAND_STATES, PowerAction, State
from ...context import ApiContext
from ...requests import bearer_token
from ...server_ops import ConsoleIndex, ServerOps
from ._handles import ServerHandles

__all__ = ["ACTIONS", "Envelope", "GameConsoleActions"]

#: The actions of each target.
ACTIONS = {
    "management": ("status", "servers"),
    "server": ("status", "start", "stop", "forcestop", "command", "log"),
}
#: The power action each of the origin's power actions is, and the state it needs.
_POWER: dict[str, PowerAction] = {"start": "start", "stop": "kill", "forcestop": "force_kill"}
#: Seconds a ``"blocking": true`` log request waits for output (the origin's eight tries).
BLOCKING_WAIT = 8.0
_ACTIVE = frozenset(state.value for state in ACTIVE_STATES)
_COMMANDABLE = frozenset(state.value for state in COMMAND_STATES)
_AT_REST_AFTER_FAILURE = frozenset({State.CRASHED.value, State.BACKOFF.value})


class Envelope(msgspec.Struct, kw_only=True):
    """A request to ``/service`` without ``?service=`` (unknown fields are ignored, as
    the origin did; a missing ``target`` is ``server``, as there)."""

    target: str = "server"
    action: str = ""
    authkey: str | None = None
    server: str | None = None
    command: str | None = None
    readIndex: ConsoleIndex = 0
    blocking: bool = False


def origin_state(status: str) -> str:
    return "started" if status in _ACTIVE else "stopped"


def escape_log(text: str) -> str:
    """Console text as the origin sent it: backslashes doubled, newlines as ``\\n``."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


class GameConsoleActions:
    def __init__(self, ctx: ApiContext, handles: ServerHandles) -> None:
        self._ctx = ctx
        self._handles = handles

    async def answer(self, body: Envelope, ip: str) -> Any:
        actions = ACTIONS.get(body.target)
        if actions is None:
            raise MethodNotAllowed(f"unknown target {body.target[:40]!r} (management, server)")
        if body.action not in actions:
            raise MethodNotAllowed(
                f"unknown action {body.action[:40]!r} for target {body.target!r} "
                f"({', '.join(actions)})"
            )
        token = bearer_token(body.authkey) or None
        if body.target == "management":
            ops = await self._caller(token, ip)
            if body.action == "servers":
                return {"servers": ops.visible_names()}
            assert token is not None
            return await self._overview(ops, token)
        if not body.server:
            raise InvalidInput("server: a server name is required", field="server")
        if token is None and body.action == "log":
            ops, name = await self._by_handle(body.server, ip)
        else:
            ops = await self._caller(token, ip)
            assert token is not None
            found = self._handles.name_for(token, body.server)
            if found is None:
                raise NotFound(f"no server {body.server[:80]!r}", field="server")
            name = found
        if body.action == "log":
            return await self._log(ops, name, body)
        if body.action == "command":
            await self._command(ops, name, body.command)
        elif body.action in _POWER:
            started = await self._power(ops, name, _POWER[body.action])
            if started:
                return {"stage-changed": "now", **self._state(ops, name, body.server)}
        return self._state(ops, name, body.server, named=body.action == "status")

    async def _caller(self, token: str | None, ip: str) -> ServerOps:
        if not token:
            raise AuthError("an authkey is required (log in with ?service=password)")
        principal = await self._ctx.auth.authenticate(token, ip=ip)
        return ServerOps(self._ctx, principal, ip)

    async def _by_handle(self, handle: str, ip: str) -> tuple[ServerOps, str]:
        grant = self._handles.grant(handle)
        if grant is None:
            raise AuthError("an authkey is required, or a server key from a status answer")
        token, name = grant
        try:
            ops = await self._caller(token, ip)
        except AuthError:
            self._handles.forget(handle)
            raise
        return ops, name

    def _state(self, ops: ServerOps, name: str, key: str, *, named: bool = False) -> dict[str, Any]:
        status = ops.status(name)
        answer: dict[str, Any] = {"state": origin_state(status["status"]), "server-id": key}
        if named:
            answer["server-name"] = name
        answer["readIndex"] = status["readIndex"]
        answer["bufSize"] = self._ctx.settings.servers.retention_bytes
        return answer

    async def _overview(self, ops: ServerOps, token: str) -> dict[str, Any]:
        statuses = ops.status(None)["servers"]
        ids = [ops.manager.record(n).owner_id for n in statuses]
        # Whose a server is shows to an ADMIN, and to its owner; anyone else gets "".
        every, own = may_see_server_owners(ops.principal), ops.principal.account_id
        owners = await self._owner_names([i for i in ids if every or i == own])
        answer: dict[str, Any] = {}
        for name, status in statuses.items():
            handle = self._handles.make(token, name)
            entry: dict[str, Any] = {
                "state": origin_state(status["status"]),
                "status": status["status"],
                "server-id": handle,
                "server-name": name,
                "smalldescription": name,
                "owner": owners.get(ops.manager.record(name).owner_id, ""),
                "readIndex": status["readIndex"],
                "bufSize": self._ctx.settings.servers.retention_bytes,
            }
            # The client shows a stopped server without exitCode as crashed.
            if status["status"] not in _AT_REST_AFTER_FAILURE:
                entry["exitCode"] = status["exit_code"] or 0
            answer[handle] = entry
        return answer

    async def _owner_names(self, ids: list[int | None]) -> dict[int | None, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}

        def names(conn: sqlite3.Connection) -> dict[int | None, str]:
            found = (accounts.get(conn, i) for i in sorted(wanted))
            return {a.id: a.username for a in found if a is not None}

        return await self._ctx.db.call(names)

    async def _power(self, ops: ServerOps, name: str, action: PowerAction) -> bool:
        """Do ``action`` if the server's state allows it; whether it was a start."""
        ops.with_right(name, "power")  # refused even when the state makes it moot
        if action not in ops.status(name)["actions"]:
            return False
        await ops.power(name, action)
        return action == "start"

    async def _command(self, ops: ServerOps, name: str, line: str | None) -> None:
        if line is None:
            raise InvalidInput("command: the command to send is required", field="command")
        ops.may_operate(ops.with_right(name, "commands"), "command")
        if ops.status(name)["status"] not in _COMMANDABLE:
            return
        try:
            await ops.command(name, line)
        except Conflict:
            if ops.status(name)["status"] in _COMMANDABLE:
                raise  # its stdin is closed or it does not read it: not a moot command

    async def _log(self, ops: ServerOps, name: str, body: Envelope) -> dict[str, Any]:
        end = ops.status(name)["readIndex"]
        index = body.readIndex if body.readIndex <= end else 0  # a console it no longer has
        wait = BLOCKING_WAIT if body.blocking else None
        answer = await ops.read_log(name, index, limit=None, wait=wait, encoding=None)
        if answer.encoding == "utf-8":
            text = answer.data
        else:  # bytes that are not UTF-8 are shown replaced, as the origin decoded them
            text = base64.b64decode(answer.data).decode("utf-8", "replace")
        status = ops.status(name)["status"]
        return {
            "state": origin_state(status),
            "status": status,
            "server-id": body.server,
            "log": escape_log(text),
            "oldReadIndex": answer.oldReadIndex,
            "nextReadIndex": answer.nextReadIndex,
            "readIndex": answer.readIndex,
        }
