"""``logfile.list`` / ``logfile.subscribe`` / ``logfile.unsubscribe``: a server's own log
files, listed as ``server_logfile`` lists them, and live.

``logfile.subscribe {server, file, from?}`` streams ``logfile_output`` pushes shaped as
``console_output`` with a ``file`` field (the backlog from ``from``, default only new
bytes, then live bytes), from one task per subscription with at most one push queued.
Bytes no longer readable (rotated away, or the subscriber more than
``ws.console_max_lag`` behind) are skipped and a ``logfile_overrun {server, file,
skipped, readIndex}`` push says how many. A ``logfile_closed {server, file, reason}``
push ends a stream: ``revoked`` (the ``console`` right was taken away), ``gone`` (the
server was destroyed) or ``refused`` (the path became a link, or not a regular file;
``message`` says which).
"""

from __future__ import annotations

from typing import Any

import msgspec
import trio

from ...errors import LeosuiteError
from ...supervision.console_answer import encode_console_data
from ...supervision.logfile_follow import LogFollower
from ..logfile_ops import LogFileOps
from ..server_ops import ConsoleIndex, ServerOps
from .api import AfterSend, WsApi
from .conn import WsConnection
from .protocol import StatusCode, WsError, decode_content, push

__all__ = ["MAX_SUBSCRIPTIONS", "install_logfile_calls"]

#: How often a waiting stream looks whether its server still exists.
_GONE_CHECK = 5.0
#: The most log files one connection follows at once.
MAX_SUBSCRIPTIONS = 16


class _Server(msgspec.Struct, forbid_unknown_fields=True):
    server: str


class _File(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    file: str


class _Subscribe(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    file: str
    # "from" is a Python keyword: the wire name is mapped by rename.
    start: ConsoleIndex | None = msgspec.field(default=None, name="from")


def install_logfile_calls(api: WsApi) -> None:
    ctx = api.ctx
    ws_settings = ctx.settings.ws

    def ops(conn: WsConnection) -> ServerOps:
        assert conn.principal is not None
        return ServerOps(ctx, conn.principal, conn.ip)

    def closed(conn: WsConnection, where: dict[str, Any], reason: str, **more: Any) -> None:
        conn.push_nowait(push("logfile_closed", {**where, "reason": reason, **more}))

    async def stream(
        conn: WsConnection, where: dict[str, Any], server_id: int, follower: LogFollower, index: int
    ) -> None:
        batch = ws_settings.console_batch_bytes
        with follower.using():
            while True:
                try:
                    with trio.move_on_after(_GONE_CHECK):
                        await follower.wait_beyond(index)
                    record = ctx.servers.find_record(where["server"])
                    if record is None or record.id != server_id:
                        ctx.logfiles.forget_server(server_id)  # wakes every other waiter
                        closed(conn, where, "gone")
                        return
                    end = follower.end_index
                    if end <= index:
                        continue
                    skipped = 0
                    if end - index > ws_settings.console_max_lag:
                        skipped = end - batch - index
                        index = end - batch
                    chunk = await follower.read(index, batch)
                except LeosuiteError as exc:
                    if follower.closed:  # the server was destroyed
                        closed(conn, where, "gone")
                    else:
                        closed(conn, where, "refused", message=exc.message)
                    return
                skipped += chunk.old_read_index - index
                if skipped > 0:
                    overrun = {**where, "skipped": skipped, "readIndex": chunk.old_read_index}
                    await conn.send_and_wait(push("logfile_overrun", overrun))
                if not chunk.data:  # only skipped bytes (the file was emptied): on from there
                    index = chunk.next_read_index
                    continue
                answer = encode_console_data(chunk, None)
                output = {
                    **where,
                    "readIndex": answer.oldReadIndex,
                    "nextReadIndex": answer.nextReadIndex,
                    "data": answer.data,
                    "encoding": answer.encoding,
                }
                await conn.send_and_wait(push("logfile_output", output))
                index = answer.nextReadIndex

    async def while_allowed(conn: WsConnection, where: dict[str, Any], run: Any) -> None:
        """Run a stream until it ends or the caller loses ``console`` on the server."""
        revoked = False
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal revoked
                while True:
                    await ctx.grants.wait_changed()
                    record = ctx.servers.find_record(where["server"])
                    if record is not None and "console" not in ops(conn).rights(record):
                        revoked = True
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(watch)
            await run
            nursery.cancel_scope.cancel()
        if revoked:
            closed(conn, where, "revoked")

    async def subscribe(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Subscribe)
        record, follower = await LogFileOps(ops(conn)).follower(query.server, query.file)
        where = {"server": query.server, "file": follower.name}
        key = f"logfile:{query.server}:{follower.name}"
        if key in conn.subscriptions:
            raise WsError(
                StatusCode.INVALID_CALL, f"already subscribed to {query.server}'s {follower.name}"
            )
        if sum(k.startswith("logfile:") for k in conn.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise WsError(
                StatusCode.INVALID_CALL,
                f"this connection follows {MAX_SUBSCRIPTIONS} log files already",
            )
        await follower.read(0, 0)  # a refusal now is the call's answer
        end = follower.end_index
        start = end if query.start is None else query.start
        if start > end:
            raise WsError(StatusCode.INVALID_ARGUMENT, f"from must be 0-{end}", {"field": "from"})
        return AfterSend(
            {**where, "readIndex": start},
            lambda: conn.start_subscription(
                key,
                lambda _scope: while_allowed(
                    conn, where, stream(conn, where, record.id, follower, start)
                ),
            ),
        )

    async def unsubscribe(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _File)
        name = "/".join(part for part in query.file.split("/") if part not in ("", "."))
        scope = conn.subscriptions.pop(f"logfile:{query.server}:{name}", None)
        if scope is None:
            raise WsError(StatusCode.INVALID_CALL, f"not subscribed to {query.server}'s {name}")
        scope.cancel()
        return None

    async def listing(conn: WsConnection, content: Any) -> Any:
        return await LogFileOps(ops(conn)).listing(decode_content(content, _Server).server)

    api.add("logfile.list", listing)
    api.add("logfile.subscribe", subscribe)
    api.add("logfile.unsubscribe", unsubscribe)
