"""How a command does its WebSocket work: ``run_ws(work)`` runs it under
``trio.run``, where ``work`` opens the connection with :func:`open_session`.

A lone exception that crossed a nursery (a ``KeyboardInterrupt``, a call's error) is
raised as itself; a connection that could not be opened or was lost is raised as
:class:`WsConnectionError` with a hint at the usual cause, which the ``leosuite``
command prints as one line before it exits with status 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import trio

from ..ws import WsClient, WsConnectionError, open_ws_client

__all__ = ["open_session", "run_ws"]

T = TypeVar("T")

_HINT = "is 'leosuite serve' running there? (--ws-url sets the address)"


@contextlib.asynccontextmanager
async def open_session(url: str, token: str) -> AsyncIterator[WsClient]:
    """A connection to ``url`` authenticated with the saved ``token``."""
    async with open_ws_client(url) as ws:
        await ws.authenticate(token)
        yield ws


def run_ws(work: Callable[[], Awaitable[T]]) -> T:
    """``trio.run(work)``, its errors as the module docstring says."""
    try:
        try:
            return trio.run(work)
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
    except WsConnectionError as exc:
        raise WsConnectionError(f"{exc.message}; {_HINT}") from None
