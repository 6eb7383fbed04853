"""hypercorn internals: two shield patches for hypercorn 0.18 under quart-trio.

quart-trio cancels a request's task as soon as its response is sent, which hit
``TCPServer`` in two places:

* when the app answers before a request body has fully arrived (404/405/413 on a big
  body), the cancelled task was running ``TCPServer._close()`` and the connection was
  left hanging: ``_close`` now runs shielded;
* ``TCPServer.protocol_send(Updated(idle=True))`` after every response was cancelled
  too, so the keep-alive idle timer never started: idle keep-alive connections were
  never closed and a graceful shutdown waited its whole ``graceful_timeout`` for them.
  ``protocol_send`` now runs shielded (its socket writes were shielded already).

Other hypercorn versions are served unpatched, with a warning: check both cases
again before widening the pin.
"""

from __future__ import annotations

import logging
from importlib.metadata import version

import trio
from hypercorn.events import Event
from hypercorn.trio.tcp_server import TCPServer

__all__ = ["HYPERCORN_VERSION", "PATCHED_FOR", "install_shield_patches"]

log = logging.getLogger("leosuite.http")

HYPERCORN_VERSION = version("hypercorn")
#: The version prefix the patches were written for.
PATCHED_FOR = "0.18."

_original_close = TCPServer._close
_original_protocol_send = TCPServer.protocol_send
_installed: list[bool] = []


async def _shielded_close(self: TCPServer) -> None:
    with trio.CancelScope(shield=True):
        await _original_close(self)


async def _shielded_protocol_send(self: TCPServer, event: Event) -> None:
    with trio.CancelScope(shield=True):
        await _original_protocol_send(self, event)


def install_shield_patches() -> bool:
    """Patch ``TCPServer`` once if hypercorn is the version this was written for;
    return whether the patches are in place."""
    if not _installed:
        supported = HYPERCORN_VERSION.startswith(PATCHED_FOR)
        if supported:
            TCPServer._close = _shielded_close  # type: ignore[method-assign]
            TCPServer.protocol_send = _shielded_protocol_send  # type: ignore[method-assign]
        else:  # pragma: no cover - only with another hypercorn pinned
            log.warning("hypercorn %s: the shield patches are not applied", HYPERCORN_VERSION)
        _installed.append(supported)
    return _installed[0]
