""":class:`~.runner.ServerActions` on the daemon's servers: what schedule steps do.

``start`` and ``restart`` return once the server has left ``starting`` (ready, or
failed); ``stop`` once it has exited. "Players online" types its type's
``players_command`` and reads the console's answer with ``players_pattern``. ``backup``
is the backup service's, given by the daemon (none: the step fails saying so).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable

import trio

from ..errors import Conflict, InvalidInput
from ..supervision.manager import ServerManager
from ..supervision.states import PowerAction, State

__all__ = ["ManagerActions", "players_query"]

#: How often a step looks whether a starting server is up.
_POLL = 0.2


def players_query(manager: ServerManager, type_name: str) -> tuple[str, re.Pattern[str]] | None:
    """The command and pattern servers of ``type_name`` are asked players with, if any."""
    stype = manager.stype(type_name)
    if not stype.players_command or not stype.players_pattern:
        return None
    try:
        return stype.players_command, re.compile(stype.players_pattern)
    except re.error:
        return None


class ManagerActions:
    def __init__(
        self, manager: ServerManager, backup: Callable[[str], Awaitable[None]] | None = None
    ) -> None:
        self._manager = manager
        self._backup = backup

    def is_running(self, server: str) -> bool:
        return self._manager.supervisor(server).state is State.RUNNING

    async def power(self, server: str, action: str, *, by: int | None) -> None:
        power: PowerAction
        if action == "start":
            power = "start"
        elif action == "stop":
            power = "stop"
        elif action == "restart":
            power = "restart"
        else:
            raise InvalidInput(f"unknown power action {action!r}")
        if action == "start" and self.is_running(server):
            return  # already what the step asks for
        if action == "stop" and self._manager.supervisor(server).state is State.STOPPED:
            return
        state = await self._manager.power(server, power, by=by)
        while action != "stop" and state is State.STARTING:
            await trio.sleep(_POLL)
            state = self._manager.supervisor(server).state
        if action != "stop" and state is not State.RUNNING:
            raise Conflict(f"the server did not start (now {state.value})")

    async def command(self, server: str, line: str) -> None:
        await self._manager.command(server, line)

    async def backup(self, server: str) -> None:
        if self._backup is None:
            raise Conflict("backups are not running")
        await self._backup(server)

    async def players_online(self, server: str) -> int:
        query = players_query(self._manager, self._manager.record(server).type)
        if query is None:
            raise InvalidInput("this server's type does not say how to ask for players online")
        command, pattern = query
        index = self._manager.console(server).end_index
        await self._manager.command(server, command)
        text = ""
        while True:
            answer = await self._manager.read_log(
                server, index, limit=None, wait=5.0, encoding="utf-8"
            )
            data = answer.data
            if answer.encoding == "base64":
                data = base64.b64decode(data).decode("utf-8", "replace")
            text = (text + data)[-65536:]
            index = answer.nextReadIndex
            found = pattern.search(text)
            if found and found.groups() and (found.group(1) or "").isdigit():
                return int(found.group(1))
