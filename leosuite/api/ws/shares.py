"""WebSocket ``server.share_list {server}`` and ``server.share_set {server, account,
rights}``: the same calls and answers as HTTP ``/api/server_share_*``; the rules are
:mod:`leosuite.api.share_ops`'s."""

from __future__ import annotations

from typing import Any

import msgspec

from ..server_ops import ServerOps
from ..share_ops import RightsList, ShareOps
from .api import WsApi
from .conn import WsConnection
from .protocol import decode_content

__all__ = ["install_share_calls"]


class _List(msgspec.Struct, forbid_unknown_fields=True):
    server: str


class _Set(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    account: str
    rights: RightsList


def install_share_calls(api: WsApi) -> None:
    ctx = api.ctx

    def shares(conn: WsConnection) -> ShareOps:
        assert conn.principal is not None
        return ShareOps(ServerOps(ctx, conn.principal, conn.ip))

    async def share_list(conn: WsConnection, content: Any) -> Any:
        return await shares(conn).share_list(decode_content(content, _List).server)

    async def share_set(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Set)
        return await shares(conn).share_set(query.server, query.account, query.rights)

    api.add("server.share_list", share_list)
    api.add("server.share_set", share_set)
