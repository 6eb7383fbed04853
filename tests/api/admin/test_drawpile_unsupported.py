"""The pages of Drawpile's web admin leosuite has no counterpart for (list server
whitelist, external bans, section locks): answered in the origin's shapes with a state
that says "not supported", and every change refused with a message, never a 404 of the
router."""

from __future__ import annotations

from typing import Any

import trio

from tests.helpers.daemon import RunningDaemon
from tests.helpers.drawpile_admin import admin_audit, web_admin
from tests.helpers.http import assert_admin_error

SECTIONS = {"accounts", "bans", "extbans", "listserverwhitelist", "server", "sessions"}


async def test_reads_in_the_origins_shape(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with daemon.admin() as http:
            admin = web_admin(http)
            whitelist = (await admin.getListserverWhitelist()).json()
            assert (whitelist["enabled"], whitelist["whitelist"]) == (False, [])
            assert (whitelist["_locked"], whitelist["supported"]) == (True, False)
            assert "not supported" in whitelist["message"]
            extbans = (await admin.getExtBanList()).json()
            assert extbans["bans"] == []
            status = extbans["status"]
            assert (status["active"], status["started"], status["url"]) == (False, False, "")
            assert extbans["config"]["extBansCacheKey"] == ""
            assert "not supported" in extbans["message"]
            locks = (await admin.getLocks()).json()
            assert (locks["supported"], locks["password"]) == (False, False)
            assert locks["sections"] == dict.fromkeys(SECTIONS, False)
            for path in ("/listserverwhitelist", "/extbans", "/locks"):
                for variant in (path, path + "/", "/api" + path, "/api" + path + "/"):
                    assert (await http.get(variant, headers=admin.auth)).status_code == 200


async def test_changes_are_refused_with_a_reason(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with daemon.admin() as http:
            admin = web_admin(http)
            calls: list[tuple[Any, int, str]] = [
                (admin.setListserverWhitelist({"enabled": True, "whitelist": ["x"]}), 400, "list"),
                (admin.refreshExtBans(), 400, "external ban"),
                (admin.changeExtBan(1, {"enabled": True}), 404, "external ban"),
                (admin.changeExtBan(2**40, {"enabled": False}), 404, "external ban"),
                (admin.putLocks(["server"], ""), 400, "locks"),
                (admin.putLocks([], "pw"), 400, "locks"),
            ]
            for pending, status, says in calls:
                message = assert_admin_error(await pending, status)
                assert message.startswith("not supported") or "not supported" in message
                assert says in message
            assert (await admin.send("/extbans/", "DELETE", None)).status_code == 405
            assert (await admin.changeExtBan("refresh", {"enabled": True})).status_code == 405
            assert (await admin.changeExtBan("x", {"enabled": True})).status_code == 404
    assert await admin_audit(daemon) == []
