"""Admin REST API: what Drawpile's server has and leosuite has no counterpart for,
answered in the origin's shapes with a state that says so (never a bare 404), so that
Drawpile's web admin shows each page instead of an error.

* ``GET /listserverwhitelist/`` → ``{"enabled": false, "whitelist": [], "_locked":
  true, "supported": false, "message"}``: leosuite announces sessions to no list server,
  so there is nothing to allow (the web admin shows the page read-only, "locked").
  ``PUT`` → 400 saying so.
* ``GET /extbans/`` → ``{"config": {...: ""}, "bans": [], "status": {"active": false,
  "started": false, ...}, "supported": false, "message"}``: there is no external ban
  list (the web admin shows "inactive, stopped"); leosuite's own bans are
  ``/banlist/``. ``POST /extbans/refresh`` → 400 and ``PUT /extbans/:id`` (a number)
  → 404, as the origin answers while external bans are off.
* ``GET /locks/`` → ``{"supported": false, "sections": {...: false}, "password":
  false}`` (the web admin says locks are not supported); ``PUT`` → 400.

Reading needs an ADMIN account like everything else; the refusals are not audited
(nothing changes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response

from ...auth.service import Principal
from ...errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["EXTBANS", "LOCKS", "WHITELIST", "register"]

NO_LIST_SERVERS = (
    "not supported: leosuite announces sessions to no list server, so it keeps no "
    "list server whitelist"
)
NO_EXTBANS = "not supported: leosuite has no external ban list; its own bans are /banlist/"
NO_LOCKS = (
    "not supported: leosuite has no admin section locks; every ADMIN account may change everything"
)

WHITELIST: dict[str, Any] = {
    "enabled": False,
    "whitelist": [],
    "_locked": True,
    "supported": False,
    "message": NO_LIST_SERVERS,
}
EXTBANS: dict[str, Any] = {
    "config": {
        "extBansUrl": "",
        "extBansCheckInterval": 0,
        "extBansCacheUrl": "",
        "extBansCacheKey": "",
    },
    "bans": [],
    "status": {
        "url": "",
        "intervalMsecs": 0,
        "started": False,
        "active": False,
        "msecsUntilNextCheck": 0,
    },
    "supported": False,
    "message": NO_EXTBANS,
}
#: The sections the origin can lock, none of them locked.
LOCKS: dict[str, Any] = {
    "supported": False,
    "sections": dict.fromkeys(
        ("accounts", "bans", "extbans", "listserverwhitelist", "server", "sessions"), False
    ),
    "password": False,
}


def register(routes: AdminRoutes) -> None:
    from .app import admin_json

    async def whitelist_get(principal: Principal) -> Response:
        return admin_json(WHITELIST)

    async def whitelist_put(principal: Principal) -> Response:
        raise InvalidInput(NO_LIST_SERVERS)

    async def extbans_get(principal: Principal) -> Response:
        return admin_json(EXTBANS)

    async def extbans_refresh(principal: Principal) -> Response:
        raise InvalidInput(NO_EXTBANS)

    async def extban_put(principal: Principal, ban_id: int) -> Response:
        raise NotFound(f"no external ban {ban_id}: {NO_EXTBANS}", field="id")

    async def locks_get(principal: Principal) -> Response:
        return admin_json(LOCKS)

    async def locks_put(principal: Principal) -> Response:
        raise InvalidInput(NO_LOCKS)

    routes.add("/listserverwhitelist", whitelist_get, ["GET"])
    routes.add("/listserverwhitelist", whitelist_put, ["PUT"])
    routes.add("/extbans", extbans_get, ["GET"])
    routes.add("/extbans/refresh", extbans_refresh, ["POST"])
    routes.add("/extbans/<int:ban_id>", extban_put, ["PUT"])
    routes.add("/locks", locks_get, ["GET"])
    routes.add("/locks", locks_put, ["PUT"])
