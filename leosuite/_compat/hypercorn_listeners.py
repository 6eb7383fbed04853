"""hypercorn internals: wrapping the listeners its trio worker accepts on.

hypercorn 0.18's ``worker_serve`` makes its own ``trio.SocketListener`` for each socket
and hands them to ``trio.serve_listeners``, with no seam for another listener. The
``trio`` its ``hypercorn.trio.run`` module sees is replaced by a view of trio whose
``serve_listeners`` wraps each listener with the function set on the ``Config`` the
connections are served with (:func:`set_listener_wrapper`), read from the
``partial(TCPServer, app, config, ...)`` handler it is given. Everything else is
trio's own.

Other hypercorn versions accept on plain listeners, with a warning: check
``worker_serve`` again before widening the pin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from types import ModuleType
from typing import Any

import hypercorn.trio.run as hypercorn_run
import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer

__all__ = ["ListenerWrapper", "install_listener_wrapping", "set_listener_wrapper"]

log = logging.getLogger("leosuite.http")

#: The version prefix this was written for.
PATCHED_FOR = "0.18."
_WRAP_ATTRIBUTE = "_leosuite_listener_wrapper"

#: Turns the listener hypercorn made into the one it accepts on.
ListenerWrapper = Callable[[trio.SocketListener], trio.abc.Listener[trio.SocketStream]]


def set_listener_wrapper(config: Config, wrap: ListenerWrapper) -> None:
    """The listeners served with ``config`` accept through ``wrap(listener)``."""
    setattr(config, _WRAP_ATTRIBUTE, wrap)


def _config_of(handler: object) -> Config | None:
    if isinstance(handler, partial) and handler.func is TCPServer and len(handler.args) > 1:
        config = handler.args[1]
        if isinstance(config, Config):
            return config
    return None


async def _serve_listeners(handler: Any, listeners: list[Any], **kwargs: Any) -> None:
    wrap: ListenerWrapper | None = getattr(_config_of(handler), _WRAP_ATTRIBUTE, None)
    if wrap is not None:
        listeners = [
            wrap(listener) if isinstance(listener, trio.SocketListener) else listener
            for listener in listeners
        ]
    await trio.serve_listeners(handler, listeners, **kwargs)


class _TrioForHypercorn(ModuleType):
    """trio, but for ``serve_listeners``."""

    serve_listeners = staticmethod(_serve_listeners)

    def __getattr__(self, name: str) -> Any:
        return getattr(trio, name)


_installed: list[bool] = []


def install_listener_wrapping() -> bool:
    """Give hypercorn's trio worker the view of trio above, once, if hypercorn is the
    version this was written for; return whether listeners can be wrapped."""
    if not _installed:
        supported = version("hypercorn").startswith(PATCHED_FOR)
        if supported and getattr(hypercorn_run, "trio", None) is trio:
            hypercorn_run.trio = _TrioForHypercorn("trio")  # type: ignore[attr-defined]
        elif not isinstance(getattr(hypercorn_run, "trio", None), _TrioForHypercorn):
            supported = False
            log.warning("hypercorn %s: listeners are not wrapped", version("hypercorn"))
        _installed.append(supported)
    return _installed[0]
