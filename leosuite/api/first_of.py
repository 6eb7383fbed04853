"""Waiting for whichever of several things happens first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from ..errors import LeosuiteError

__all__ = ["first_of"]


async def first_of(*waits: Callable[[], Awaitable[None]]) -> None:
    """Return once one of ``waits`` returned (the others cancelled); raises the error
    one of them raised (a server destroyed meanwhile), not a group of it."""
    failed: list[LeosuiteError] = []
    async with trio.open_nursery() as nursery:

        async def one(wait: Callable[[], Awaitable[None]]) -> None:
            try:
                await wait()
            except LeosuiteError as exc:
                failed.append(exc)
            nursery.cancel_scope.cancel()

        for wait in waits:
            nursery.start_soon(one, wait)
    if failed:
        raise failed[0]
