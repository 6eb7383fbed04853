"""GameConsole's protocol at ``/service`` (off unless ``http.gameconsole_service``), so
GameConsole's own web client works against leosuite: its config and password login
with proof of work, and its ``{target, action, authkey}`` envelope on leosuite's server
operations and permissions; CORS for the origins of ``http.cors_origins``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from quart import Response

from ._actions import ACTIONS as ACTIONS
from ._actions import Envelope as Envelope
from ._handles import ServerHandles as ServerHandles
from ._login import PasswordBody as PasswordBody
from ._openapi import add_service_path as add_service_path
from ._proofs import PROOF_BITS as PROOF_BITS
from ._proofs import proof_count as proof_count
from ._proofs import solve as solve
from ._routes import CONFIG as CONFIG
from ._routes import SERVICE_PATH as SERVICE_PATH
from ._routes import attach_gameconsole as attach_gameconsole


def gameconsole_openapi_view() -> Callable[[], Awaitable[Response]]:
    """``GET /openapi.json`` of a listener that serves ``/service``."""
    from ..openapi import build
    from ._openapi import openapi_view

    return openapi_view(build(gameconsole=True))
