"""What one run of a schedule does: check its conditions, then perform its steps in
order, each bounded by ``schedules.step_timeout`` (a ``wait`` step by its own length; a
``backup`` step by nothing but the archive's size, since a backup cut short is wasted),
stopping at the first that fails. The outcome is one line of text, stored and audited.

The steps act through :class:`ServerActions`, which the daemon implements on its
:class:`~leosuite.supervision.manager.ServerManager` (:mod:`.actions`).
"""

from __future__ import annotations

from typing import Protocol

import trio

from ..errors import LeosuiteError
from .model import Schedule, Step

__all__ = ["ServerActions", "perform"]


class ServerActions(Protocol):
    """What schedule steps may do to a server, by name."""

    def is_running(self, server: str) -> bool: ...

    async def power(self, server: str, action: str, *, by: int | None) -> None:
        """``start``, ``stop`` or ``restart``; return once the server is up or down."""

    async def command(self, server: str, line: str) -> None: ...

    async def players_online(self, server: str) -> int:
        """How many players are online; InvalidInput when its type cannot tell."""

    async def backup(self, server: str) -> None:
        """Make a backup of the server now (taken by ``schedule``); return once complete."""


async def perform(
    actions: ServerActions, schedule: Schedule, server: str, *, step_timeout: float
) -> str:
    """Run ``schedule`` on ``server`` once; its outcome (``done``, ``skipped: ...``,
    ``failed at step N (...): ...``)."""
    if schedule.only_if_running and not actions.is_running(server):
        return "skipped: the server is not running"
    if schedule.only_if_players:
        if not actions.is_running(server):
            return "skipped: the server is not running (no players online)"
        try:
            with trio.fail_after(step_timeout):
                players = await actions.players_online(server)
        except trio.TooSlowError:
            return "failed: the server did not say how many players are online"
        except LeosuiteError as exc:
            return f"failed: asking for the players online: {exc}"
        if players <= 0:
            return "skipped: no players online"
    for number, step in enumerate(schedule.steps, start=1):
        failure = await _step(actions, schedule, server, step, step_timeout)
        if failure:
            return f"failed at step {number} ({step.text()[:80]}): {failure}"
    return "done"


async def _step(
    actions: ServerActions, schedule: Schedule, server: str, step: Step, step_timeout: float
) -> str:
    """Perform one step; why it failed, or "" when it succeeded."""
    if step.kind == "wait":
        await trio.sleep(step.seconds)
        return ""
    if step.kind == "backup":
        try:
            await actions.backup(server)
        except LeosuiteError as exc:
            return str(exc)[:200]
        return ""
    try:
        with trio.fail_after(step_timeout):
            if step.kind == "command":
                await actions.command(server, step.arg)
            else:
                await actions.power(server, step.kind, by=schedule.created_by)
    except trio.TooSlowError:
        return f"not done within {step_timeout:g} seconds (schedules.step_timeout)"
    except LeosuiteError as exc:
        return str(exc)[:200]
    return ""
