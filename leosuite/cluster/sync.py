"""What one node changes, the others take at once: bans, ended tokens and the settings
an administrator changes at run time, over the :class:`~.bus.Bus`.

An event says only *what kind of thing* changed; the store is the truth, and a node
that receives one reads that kind again from it:

* ``ban``: the ban list is read again; a new ban closes the WebSocket connections
  and chat members it covers at once (:meth:`BanList.reload`), and every listener
  refuses its addresses from then on;
* ``token``: every cached token is checked against the store, those gone end with
  their connections, the others re-read their account at their next use
  (:meth:`AuthService.recheck_tokens`, ``mark_stale``), and the chat re-checks the
  connections it holds without a token (``AuthService.on_store_changed``);
* ``settings``: the chat's server settings and every server's grants are read again.

A resync (the bus may have lost events) re-reads the same. Changes are published
after the store took them, one event per kind however many changes come at once, so
that a burst of changes costs the other nodes one re-read.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from ..api.grants import ServerGrants
from ..auth.bans import BanList
from ..auth.service import AuthService
from ..community.service import ChatService
from ..store.db import Database
from .bus import Bus, ClusterEvent

__all__ = ["KINDS", "run_cluster_sync"]

log = logging.getLogger("leosuite.cluster")

#: The kinds of event this module publishes and takes.
KINDS = ("ban", "token", "settings")


class _Outbox:
    """The kinds changed here and not yet published (each once, however often)."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.wake = trio.Event()

    def mark(self, kind: str) -> Callable[[], None]:
        def changed() -> None:
            if kind not in self.kinds:
                self.kinds.append(kind)
            self.wake.set()

        return changed

    async def run(self, bus: Bus) -> None:
        while True:
            await self.wake.wait()
            self.wake = trio.Event()
            kinds, self.kinds = self.kinds, []
            for kind in kinds:
                try:
                    await bus.publish(kind, {})
                except Exception:
                    log.exception("could not publish a %r event", kind)


async def _take(
    bus: Bus, kind: str, reread: Callable[[], Awaitable[None]], task_status: trio.TaskStatus[None]
) -> None:
    """Re-read ``kind`` for each event of it (those queued meanwhile count as one),
    and once when subscribed: what changed between the daemon's first read and now."""
    with bus.subscribe(kind) as events:
        await _reread(kind, reread)
        task_status.started()
        async for _event in events:
            _drain(events)
            await _reread(kind, reread)


async def _reread(kind: str, reread: Callable[[], Awaitable[None]]) -> None:
    try:
        await reread()
    except Exception:
        log.exception("could not take a %r change another node made; it waits "
                      "for the next one", kind)  # fmt: skip


def _drain(events: trio.MemoryReceiveChannel[ClusterEvent]) -> None:
    while True:
        try:
            events.receive_nowait()
        except trio.WouldBlock:
            return


async def run_cluster_sync(
    bus: Bus,
    *,
    db: Database,
    auth: AuthService,
    bans: BanList,
    chat: ChatService,
    grants: ServerGrants,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Publish this node's changes and take the other nodes'; never returns."""

    async def reread_tokens() -> None:
        auth.mark_stale()
        await auth.recheck_tokens()
        for recheck in list(auth.on_store_changed):
            await recheck()

    async def reread_bans() -> None:
        await bans.reload()

    async def reread_settings() -> None:
        await chat.reload_server_settings()
        await grants.reload(db)

    outbox = _Outbox()
    hooks: list[tuple[list[Callable[[], None]], Callable[[], None]]] = [
        (bans.on_changed, outbox.mark("ban")),
        (auth.on_tokens_ended, outbox.mark("token")),
        (chat.on_server_settings_changed, outbox.mark("settings")),
        (grants.on_changed, outbox.mark("settings")),
    ]
    for callbacks, callback in hooks:
        callbacks.append(callback)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(_take, bus, "ban", reread_bans)
            await nursery.start(_take, bus, "token", reread_tokens)
            await nursery.start(_take, bus, "settings", reread_settings)
            nursery.start_soon(outbox.run, bus)
            task_status.started()
    finally:
        for callbacks, callback in hooks:
            callbacks.remove(callback)
