"""Dashboard calls of the WebSocket API: ``server.*`` and the live subscriptions.

``console.subscribe {server, from?}`` streams ``console_output`` pushes (the backlog
from ``from``, then live bytes) from ONE task per subscription that has at most a few
pushes on their way (``PUSHES_ON_THE_WAY``, queued behind the one being written), read
and encoded once for every subscriber at the same index
(:mod:`~leosuite.api.ws.fanout_console`): while the peer is slow the console advances
in the log, not in memory; when the subscriber is more than ``ws.console_max_lag``
behind, it skips ahead and a ``console_overrun {server, skipped}`` push says how much.
``stats.subscribe`` and ``events.subscribe`` push through the drop-if-full path. Every
push that carries a server's state carries its ``actions`` too: the power actions that
state allows.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec
import trio

from ...audit import AuditEvent
from ...auth.permissions import may_see_audit_events
from ...errors import InternalError
from ...supervision.console_file import ConsoleFile
from ...supervision.spec import StateChange
from ...supervision.states import POWER_ACTIONS, PowerAction, allowed_actions
from ..first_of import first_of
from ..fleet_access import (
    TOKEN_RECHECK,
    console_reader,
    mint_console_token,
    still_reads,
    token_wait,
)
from ..fleet_view import foreign_status, foreign_visible
from ..forwarding import console_elsewhere
from ..server_ops import ConsoleIndex, ServerOps, WaitSeconds
from .api import AfterSend, WsApi
from .conn import WsConnection
from .fanout_console import PUSHES_ON_THE_WAY, ConsoleChunks, skip_to
from .protocol import StatusCode, WsError, decode_content, push

__all__ = ["install_dashboard_calls"]


class _Server(msgspec.Struct, forbid_unknown_fields=True):
    server: str


class _MaybeServer(msgspec.Struct, forbid_unknown_fields=True):
    server: str | None = None


class _CreateOptions(msgspec.Struct, forbid_unknown_fields=True):
    type: str | None = None


class _Create(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    type: str
    settings: dict[str, Any] = msgspec.field(default_factory=dict)
    node: str | None = None


class _Destroy(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    delete_files: bool = False


class _Command(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    command: str


class _Settings(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    set: dict[str, Any] | None = None


class _Log(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    readIndex: ConsoleIndex
    max: ConsoleIndex | None = None
    wait: WaitSeconds | None = None
    encoding: Literal["utf-8", "base64"] | None = None
    #: A console token (``server.console_token``) instead of a logged-in session.
    console_token: str | None = None


class _Subscribe(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    # "from" is a Python keyword: the wire name is mapped by rename.
    start: ConsoleIndex | None = msgspec.field(default=None, name="from")
    #: A console token (``server.console_token``) instead of a logged-in session.
    console_token: str | None = None


def install_dashboard_calls(api: WsApi) -> None:
    ctx = api.ctx
    ws_settings = ctx.settings.ws
    #: console_output pushes shared by the subscribers of a console at one index.
    console_chunks = ConsoleChunks(ws_settings.console_batch_bytes)

    def ops(conn: WsConnection) -> ServerOps:
        assert conn.principal is not None
        return ServerOps(ctx, conn.principal, conn.ip)

    # -- server.* ---------------------------------------------------------------------

    async def server_list(conn: WsConnection, content: Any) -> Any:
        caller = ops(conn)
        listing = caller.listing()
        return {**listing, **await caller.owners(listing["servers"])}

    async def server_status(conn: WsConnection, content: Any) -> Any:
        return ops(conn).status(decode_content(content, _MaybeServer).server)

    async def create_options(conn: WsConnection, content: Any) -> Any:
        return ops(conn).create_options(decode_content(content, _CreateOptions).type)

    async def create(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Create)
        return await ops(conn).create(query.server, query.type, query.settings, query.node)

    # A call the HTTP API answers 204 (no body) answers null: the same answer.
    async def destroy(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Destroy)
        await ops(conn).destroy(query.server, delete_files=query.delete_files)
        return None

    async def command(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Command)
        await ops(conn).command(query.server, query.command)
        return None

    async def settings(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Settings)
        return await ops(conn).settings(query.server, query.set)

    async def stats_history(conn: WsConnection, content: Any) -> Any:
        return ops(conn).stats_history(decode_content(content, _Server).server)

    async def read_log(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Log)
        if query.console_token is None:
            await api.require_session(conn)
            reader: ServerOps = ops(conn)
        else:  # minted by any node for this one's server
            reader = await console_reader(ctx, query.console_token, query.server, conn.ip)
        wait = query.wait if query.console_token is None else token_wait(query.wait)
        return await reader.read_log(
            query.server, query.readIndex, limit=query.max, wait=wait, encoding=query.encoding
        )

    def power(action: PowerAction) -> Any:
        async def handler(conn: WsConnection, content: Any) -> Any:
            return await ops(conn).power(decode_content(content, _Server).server, action)

        return handler

    for name, handler in (
        ("server.list", server_list),
        ("server.status", server_status),
        ("server.create_options", create_options),
        ("server.create", create),
        ("server.destroy", destroy),
        ("server.cmd", command),
        ("server.settings", settings),
        ("server.stats_history", stats_history),
    ):
        api.add(name, handler)
    for action in POWER_ACTIONS:
        api.add(f"server.{action}", power(action))

    async def install(conn: WsConnection, content: Any) -> Any:
        return await ops(conn).install(decode_content(content, _Server).server)

    api.add("server.install", install)

    async def console_token(conn: WsConnection, content: Any) -> Any:
        return await mint_console_token(ops(conn), decode_content(content, _Server).server)

    api.add("server.console_token", console_token)

    # -- console ------------------------------------------------------------------------

    async def stream_console(
        conn: WsConnection, server: str, console: ConsoleFile, index: int
    ) -> None:
        batch = ws_settings.console_batch_bytes
        on_the_way: deque[trio.Event] = deque()  # pushes not yet handed to the socket
        unwaited = 0  # bytes pushed since the console last had nothing new
        while True:
            # Caught up with pushes still on their way: a flooding console's growth is
            # seen by its size each time the socket takes one, not at the watch's refresh.
            while on_the_way and console.end_index <= index:
                await on_the_way.popleft().wait()
            if console.end_index > index:
                await trio.lowlevel.checkpoint()
            else:  # after a batch or more, a flood's next bytes are looked for at once
                await console.wait_beyond(index, flooding=unwaited >= batch)
                unwaited = 0
            end = console.end_index
            try:
                if end <= index:  # the log was closed: the server is gone
                    raise InternalError("closed")
                skipped = 0
                if end - index > ws_settings.console_max_lag:
                    skipped = skip_to(index, end, batch) - index
                    index += skipped
                output = console_chunks.output(server, console, index)
            except InternalError:  # closed (the server is gone), or its files unreadable
                conn.push_nowait(push("console_closed", {"server": server, "readIndex": index}))
                return
            skipped += output.old_read_index - index
            if skipped > 0:
                await conn.send_marked(
                    push(
                        "console_overrun",
                        {"server": server, "skipped": skipped, "readIndex": output.old_read_index},
                    )
                )
            sent = await conn.send_shared_marked(output)
            if sent is not None:
                on_the_way.append(sent)
            while len(on_the_way) > PUSHES_ON_THE_WAY or (on_the_way and on_the_way[0].is_set()):
                await on_the_way.popleft().wait()
            unwaited += output.next_index - index
            index = output.next_index

    async def while_allowed(
        conn: WsConnection,
        server: str,
        stream: Awaitable[None],
        reads: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """Run a console stream until it ends or the caller loses ``console`` on the
        server; then a ``console_closed {server, reason: "revoked"}`` push says so. A
        console token's reader (``reads``) is checked against the store every
        ``TOKEN_RECHECK`` seconds too: another node's changes reach no cache here."""
        revoked = False
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal revoked
                while True:
                    with trio.move_on_after(TOKEN_RECHECK if reads else math.inf):
                        await ctx.grants.wait_changed()
                    if reads is not None:
                        lost = not await reads()
                    else:
                        record = ctx.servers.find_record(server)
                        lost = record is not None and "console" not in ops(conn).rights(record)
                    if lost:
                        revoked = True
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(watch)
            await stream
            nursery.cancel_scope.cancel()
        if revoked:
            conn.push_nowait(push("console_closed", {"server": server, "reason": "revoked"}))

    async def console_subscribe(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Subscribe)
        reads: Callable[[], Awaitable[bool]] | None = None
        if query.console_token is None:
            await api.require_session(conn)
            console_elsewhere(ops(conn), query.server)
            ops(conn).with_right(query.server, "console")
        else:  # minted by any node for this one's server
            reader = await console_reader(ctx, query.console_token, query.server, conn.ip)
            reads = lambda: still_reads(reader, query.server)  # noqa: E731
        key = f"console:{query.server}"
        if key in conn.subscriptions:
            raise WsError(
                StatusCode.INVALID_CALL, f"already subscribed to {query.server}'s console"
            )
        console = ctx.servers.console(query.server)
        start = console.end_index if query.start is None else query.start
        if start < 0 or start > console.end_index:
            raise WsError(
                StatusCode.INVALID_ARGUMENT,
                f"from must be 0-{console.end_index}",
                {"field": "from"},
            )
        return AfterSend(
            {"server": query.server, "readIndex": start},
            lambda: conn.start_subscription(
                key,
                lambda _scope: while_allowed(
                    conn, query.server, stream_console(conn, query.server, console, start), reads
                ),
            ),
        )

    def unsubscribe(key_of: Any) -> Any:
        async def handler(conn: WsConnection, content: Any) -> Any:
            key, label = key_of(content)
            scope = conn.subscriptions.pop(key, None)
            if scope is None:
                raise WsError(StatusCode.INVALID_CALL, f"not subscribed to {label}")
            scope.cancel()
            return None

        return handler

    def console_key(content: Any) -> tuple[str, str]:
        server = decode_content(content, _Server).server
        return f"console:{server}", f"{server}'s console"

    api.add("server.log", read_log, public=True)  # a token needs no login
    api.add("console.subscribe", console_subscribe, public=True)
    api.add("console.unsubscribe", unsubscribe(console_key), public=True)

    # -- stats and events ---------------------------------------------------------------

    async def stream_stats(conn: WsConnection) -> None:
        interval = ctx.settings.servers.stats_interval
        with ctx.servers.watching_stats():  # the daemon samples every interval meanwhile
            while True:
                await trio.sleep(interval)
                view = ops(conn)
                servers = {}
                for name in view.visible_names():
                    if "console" not in view.rights(ctx.servers.record(name)):
                        continue  # the live figures are the console right's
                    status = ctx.servers.status(name)
                    if status["status"] in ("running", "starting", "stopping"):
                        servers[name] = {k: status[k] for k in _STATS_FIELDS}
                conn.push_nowait(push("stats", {"servers": servers}))

    async def stream_events(conn: WsConnection) -> None:
        states = ctx.servers.subscribe_states()
        logs = ctx.audit.subscribe()

        async def forward_states() -> None:
            async for change in states:
                record = ctx.servers.find_record(change.server)
                if conn.principal is not None and record is not None and ops(conn).sees(record):
                    conn.push_nowait(push("event", _state_event(change)))

        async def forward_logs() -> None:
            async for entry in logs:
                if conn.principal is not None and may_see_audit_events(conn.principal):
                    conn.push_nowait(push("event", _log_event(entry)))

        async def forward_installs() -> None:
            # Install progress is console text: only those who may read the console get it.
            async for event in installs:
                record = ctx.servers.find_record(event["server"])
                if (
                    conn.principal is not None
                    and record is not None
                    and "console" in ops(conn).rights(record)
                ):
                    conn.push_nowait(push("event", event))

        async def forward_fleet() -> None:
            # The other nodes' servers: a change of the state their node last wrote, or
            # of whether that node is reachable, as this node reads them.
            nodes = ctx.nodes
            if nodes is None or not ctx.settings.store.url:  # one node: no others' servers
                return

            def statuses() -> dict[str, dict[str, Any]]:
                if conn.principal is None:
                    return {}
                view = ops(conn)
                return {r.name: foreign_status(view, r) for r in foreign_visible(view)}

            shown = statuses()
            while True:
                await first_of(nodes.changed.wait, nodes.remote.changed.wait)
                now = statuses()
                for name, status in now.items():
                    before = shown.get(name)
                    if before is not None and before["status"] != status["status"]:
                        event = _fleet_state_event(before["status"], status, ctx.now())
                        conn.push_nowait(push("event", event))
                shown = now

        installs = ctx.servers.installs.events.subscribe()
        with states, logs, installs:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(forward_states)
                nursery.start_soon(forward_logs)
                nursery.start_soon(forward_installs)
                nursery.start_soon(forward_fleet)

    def simple_subscription(key: str, stream: Any) -> Any:
        async def handler(conn: WsConnection, content: Any) -> Any:
            if key in conn.subscriptions:
                raise WsError(StatusCode.INVALID_CALL, f"already subscribed to {key}")
            return AfterSend(
                {"subscribed": key},
                lambda: conn.start_subscription(key, lambda _scope: stream(conn)),
            )

        return handler

    api.add("stats.subscribe", simple_subscription("stats", stream_stats))
    api.add("stats.unsubscribe", unsubscribe(lambda _c: ("stats", "stats")))
    api.add("events.subscribe", simple_subscription("events", stream_events))
    api.add("events.unsubscribe", unsubscribe(lambda _c: ("events", "events")))


#: What a ``stats`` push carries of each running server's status.
_STATS_FIELDS = ("status", "actions", "pid", "uptime", "cpu", "memory", "threads", "disk")


def _state_event(change: StateChange) -> dict[str, Any]:
    return {
        "kind": "state",
        "server": change.server,
        "old": change.old.value,
        "new": change.new.value,
        "reason": change.reason,
        "timestamp": change.timestamp,
        "actions": list(allowed_actions(change.new)),
    }


def _fleet_state_event(old: str, status: dict[str, Any], now: float) -> dict[str, Any]:
    """A state event of a server another node runs, from its status before and now."""
    return {
        "kind": "state",
        "server": status["server"],
        "old": old,
        "new": status["status"],
        "reason": status["last_error"] or "",
        "timestamp": now,
        "actions": status["actions"],
        "node": status["node"],
    }


def _log_event(entry: AuditEvent) -> dict[str, Any]:
    return {
        "kind": "log",
        "id": entry.id,
        "timestamp": entry.timestamp,
        "level": entry.level,
        "topic": entry.topic,
        "session": entry.session,
        "user": entry.user,
        "message": entry.message,
    }
