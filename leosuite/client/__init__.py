"""Python clients of a running leosuite daemon, and the ``leosuite`` client commands.

    from leosuite.client import HttpClient, login, open_ws_client

    client = HttpClient("http://127.0.0.1:8975")        # the HTTP API, sync, stdlib only
    login(client, "admin", password)                     # proof-of-work, sets client.token
    client.post("/api/server_list")

    async with open_ws_client("ws://127.0.0.1:8976/") as ws:   # the WebSocket API, trio
        await ws.authenticate(client.token)
        await ws.call("server.list")

``token_file``, ``save_token`` and ``load_saved_token`` read and write the token that
``leosuite login`` saves. Every error is a :class:`~leosuite.errors.LeosuiteError`::

    LeosuiteError
    ├── ApiError             HTTP: the daemon cannot be reached, or an answer with no
    │                        more specific class (the message ends "(HTTP <status>)")
    ├── InvalidInput         HTTP 400
    ├── AuthError            HTTP 403; WebSocket login refused, or the daemon pushed
    │                        ``session_closed`` (console streams raise it)
    ├── NotFound             HTTP 404
    ├── Conflict             HTTP 409
    ├── TooLarge             HTTP 413
    ├── WsCallError          WebSocket: an answer with a non-zero status_code
    │                        (status_code, status_string, content)
    └── WsConnectionError    WebSocket: cannot connect, or the connection ended
                             (calls in flight and console streams raise it)

The WebSocket names load trio on first use, so the HTTP-only commands start without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .http import ApiError as ApiError
from .http import HttpClient as HttpClient
from .http import load_saved_token as load_saved_token
from .http import login as login
from .http import save_token as save_token
from .http import token_file as token_file

if TYPE_CHECKING:
    from .ws import ConsoleData as ConsoleData
    from .ws import ConsoleEvent as ConsoleEvent
    from .ws import ConsoleOverrun as ConsoleOverrun
    from .ws import ConsoleStream as ConsoleStream
    from .ws import Push as Push
    from .ws import WsCallError as WsCallError
    from .ws import WsClient as WsClient
    from .ws import WsConnectionError as WsConnectionError
    from .ws import open_ws_client as open_ws_client

__all__ = [
    "ApiError",
    "ConsoleData",
    "ConsoleEvent",
    "ConsoleOverrun",
    "ConsoleStream",
    "HttpClient",
    "Push",
    "WsCallError",
    "WsClient",
    "WsConnectionError",
    "load_saved_token",
    "login",
    "open_ws_client",
    "save_token",
    "token_file",
]

_FROM_WS = frozenset(
    {
        "ConsoleData",
        "ConsoleEvent",
        "ConsoleOverrun",
        "ConsoleStream",
        "Push",
        "WsCallError",
        "WsClient",
        "WsConnectionError",
        "open_ws_client",
    }
)


def __getattr__(name: str) -> object:
    """The WebSocket client's names, imported from :mod:`.ws` when first asked for."""
    if name not in _FROM_WS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import ws

    value = getattr(ws, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
