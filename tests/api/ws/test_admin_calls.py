"""``account.*`` and ``ban.*`` over the WebSocket API: ADMIN only, the same answers,
guards and audit entries as the admin API's ``/accounts/`` and ``/banlist/``, and
hostile values refused with the documented error shape. Over real sockets."""

from __future__ import annotations

from typing import Any

import trio

from leosuite.store import audit as audit_table
from tests.client.test_docs_match_api import ws_names
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.admin_accounts import admin_client
from tests.helpers.daemon import RunningDaemon
from tests.helpers.ws import WsClient, ws_client

CALLS: dict[str, Any] = {
    "account.list": {},
    "account.create": {"username": "sneaky", "password": "long-enough-1", "flags": "ADMIN"},
    "account.set": {"id": 1, "locked": True},
    "account.delete": {"id": 1},
    "ban.list": {},
    "ban.add": {"ip": "10.9.9.9"},
    "ban.remove": {"id": 1},
}
PERMISSION_DENIED, INVALID_ARGUMENT, MODEL_EXCEPTION = 2, 12, 11
GENERAL_FAILURE, ENTITY_NOT_FOUND = 1, 8


async def audit_messages(daemon: RunningDaemon, topic: str) -> list[str]:
    entries: list[audit_table.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, limit=1000, newest_first=False)
    )
    return [e.message for e in entries if e.topic == topic]


async def refused(client: WsClient, kind: str, content: Any, status: int, field: str) -> str:
    """Call and check the refusal (status, field); its message."""
    answer = await client.call(kind, content)
    assert answer["status_code"] == status, (kind, content, answer)
    if status == INVALID_ARGUMENT:
        assert answer["content"] == {"field": field}, answer
    elif status == MODEL_EXCEPTION:
        pointer = answer["content"]["errors"][0]["source"]["pointer"]
        assert pointer == "/content" + (f"/{field}" if field else ""), answer
    message: str = answer["status_string"]
    return message


def test_the_calls_are_documented() -> None:
    assert set(CALLS) - ws_names("api.md") == set()


async def test_every_call_is_refused_without_admin(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        await add_account(daemon, "plain")
        await add_account(daemon, "host1", "HOST")
        await add_account(daemon, "mod1", "MOD")
        before = await daemon.ctx.db.call(lambda conn: audit_table.count(conn))
        for user in ("plain", "host1", "mod1"):
            async with ws_client(daemon) as client:
                await client.login(user, PASSWORD)
                for kind, content in CALLS.items():
                    answer = await client.call(kind, content)
                    assert answer["status_code"] == PERMISSION_DENIED, (user, kind, answer)
                    assert answer["status_string"].endswith("needs the ADMIN flag"), answer
                    assert answer["content"] is None
                    # Refused before the content is looked at: no hint about its validity.
                    junk = await client.call(kind, {"nonsense": "x" * 10_000})
                    assert junk["status_code"] == PERMISSION_DENIED, (user, kind, junk)
                assert (await client.call("server.list", {}))["status_code"] == 0
        async with ws_client(daemon, login=True) as admin:
            listed = await admin.ok("account.list", {})
            assert [a["username"] for a in listed["accounts"]] == [
                "admin",
                "plain",
                "host1",
                "mod1",
            ]
            assert await admin.ok("ban.list", {}) == []
            assert not any(a["locked"] for a in listed["accounts"])
        # Nothing changed, so nothing was audited under admin, Ban or Unban.
        after: list[audit_table.AuditEntry] = await daemon.ctx.db.call(
            lambda conn: audit_table.page(conn, offset=0, limit=1000, newest_first=False)
        )
        assert not [e for e in after[before:] if e.topic in ("admin", "Ban", "Unban")]


async def test_accounts_as_admin(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with ws_client(daemon, login=True) as admin:
            listed = await admin.ok("account.list", {})
            minimum = daemon.ctx.settings.auth.min_password_length
            assert listed["password_policy"] == {"min_length": minimum, "max_length": 1024}
            (me,) = listed["accounts"]
            assert set(me) == {"id", "username", "locked", "flags", "created", "lastLogin"}
            assert (me["username"], me["flags"], me["locked"]) == ("admin", "ADMIN", False)
            assert me["lastLogin"] is not None  # this very login made a token

            made = await admin.ok(
                "account.create",
                {"username": "friend", "password": "friend-pass-1", "flags": "host, mod"},
            )
            assert made == {"id": made["id"], "username": "friend", "locked": False,
                            "flags": "HOST,MOD"}  # fmt: skip
            async with admin_client(daemon) as rest:  # the admin API sees the same account
                assert (await rest.get(f"/accounts/{made['id']}/")).json() == made
            new = (await admin.ok("account.list", {}))["accounts"][1]
            assert (new["username"], new["lastLogin"]) == ("friend", None)

            async with ws_client(daemon) as friend:
                await friend.login("friend", "friend-pass-1")
                changed = await admin.ok(
                    "account.set", {"id": made["id"], "flags": "MOD", "locked": True}
                )
                assert (changed["flags"], changed["locked"]) == ("MOD", True)
                closed = await friend.next_push("session_closed")  # its session ends at once
                assert "account locked" in closed["content"]["reason"]

            reset = await admin.ok(
                "account.set", {"id": made["id"], "locked": False, "password": "brand-new-pass"}
            )
            assert reset["locked"] is False
            async with ws_client(daemon) as friend:
                await friend.login("friend", "brand-new-pass")
            gone = await admin.ok("account.delete", {"id": made["id"]})
            assert gone["username"] == "friend"
            assert [a["username"] for a in (await admin.ok("account.list", {}))["accounts"]] == [
                "admin"
            ]

        messages = await audit_messages(daemon, "admin")
        assert messages == [
            f"account 'friend' (id {made['id']}) created, flags HOST,MOD",
            f"account 'friend' (id {made['id']}) changed: locked, flags MOD",
            f"account 'friend' (id {made['id']}) changed: password changed, unlocked",
            f"account 'friend' (id {made['id']}) deleted",
        ]
        assert not any("friend-pass-1" in m or "brand-new-pass" in m for m in messages)


async def test_hostile_account_values(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        other = await add_account(daemon, "other")
        async with ws_client(daemon, login=True) as admin:
            create = {"username": "newbie", "password": "newbie-pass-1"}
            for flags in ("ROOT", "HOST,ADMIN;DROP TABLE accounts", "x" * 100_000, "HOST,\x00"):
                text = await refused(
                    admin, "account.create", {**create, "flags": flags}, INVALID_ARGUMENT, "flags"
                )
                assert "unknown flag" in text
                assert len(text) < 500  # a huge value is not echoed whole
            for username in ("", "a b", "x" * 100_000, "ünïcode", "../admin", "admin\n"):
                await refused(
                    admin, "account.create", {**create, "username": username}, INVALID_ARGUMENT,
                    "username",
                )  # fmt: skip
            for password in ("short", "p" * 100_000, "nul\x00-in-the-middle"):
                await refused(
                    admin, "account.create", {**create, "password": password}, INVALID_ARGUMENT,
                    "password",
                )  # fmt: skip
            taken = await refused(
                admin, "account.create", {**create, "username": "OTHER"}, GENERAL_FAILURE, ""
            )
            assert "taken" in taken
            await refused(admin, "account.create", {**create, "admin": True}, MODEL_EXCEPTION,
                          "admin")  # fmt: skip
            await refused(admin, "account.create", {"username": "x"}, MODEL_EXCEPTION, "password")
            await refused(admin, "account.create", [1, 2], MODEL_EXCEPTION, "")

            for bad_id in (0, -1, 2**63, "1", None, 1.5):
                answer = await admin.call("account.set", {"id": bad_id, "locked": True})
                assert answer["status_code"] in (INVALID_ARGUMENT, MODEL_EXCEPTION), answer
            await refused(admin, "account.delete", {"id": 999_999}, ENTITY_NOT_FOUND, "")
            await refused(
                admin, "account.set", {"id": other, "flags": "ADMIN", "admin": False},
                INVALID_ARGUMENT, "admin",
            )  # fmt: skip
            # One bad field changes nothing (the username is checked with the flags).
            await refused(
                admin, "account.set", {"id": other, "locked": True, "flags": "NOPE"},
                INVALID_ARGUMENT, "flags",
            )  # fmt: skip

            # The last unlocked ADMIN (this very account) can be neither deleted, locked
            # nor demoted, as on the admin API.
            for change in ({"locked": True}, {"admin": False}, {"flags": "HOST", "admin": False}):
                text = await refused(admin, "account.set", {"id": 1, **change}, GENERAL_FAILURE, "")
                assert "last unlocked ADMIN" in text
            text = await refused(admin, "account.delete", {"id": 1}, GENERAL_FAILURE, "")
            assert "cannot be deleted" in text
            # A flags edit without ADMIN keeps it, as the admin API does.
            assert (await admin.ok("account.set", {"id": 1, "flags": "HOST"}))["flags"] == (
                "ADMIN,HOST"
            )
            listed = (await admin.ok("account.list", {}))["accounts"]
            assert [(a["username"], a["locked"], a["flags"]) for a in listed] == [
                ("admin", False, "ADMIN,HOST"),
                ("other", False, ""),
            ]

            # With another ADMIN, deleting oneself works and ends one's own session.
            await admin.ok("account.set", {"id": other, "flags": "ADMIN"})
            gone = await admin.ok("account.delete", {"id": 1})
            assert gone["username"] == "admin"
            closed = await admin.next_push("session_closed")
            assert closed["content"]["reason"] == "account deleted"


async def test_bans_as_admin(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with ws_client(daemon, login=True) as admin:
            ban = await admin.ok(
                "ban.add",
                {"ip": "10.20.0.0/16", "comment": "spam", "expires": "2999-01-01T00:00:00Z"},
            )
            assert ban["appliesToYou"] is False
            assert "message" not in ban
            assert (ban["ip"], ban["subnet"], ban["comment"]) == ("10.20.0.0", 16, "spam")
            assert ban["expires"] == "2999-01-01T00:00:00Z"
            assert daemon.ctx.bans.is_banned("10.20.3.4") is not None
            listed = await admin.ok("ban.list", {})
            async with admin_client(daemon) as rest:  # the admin API lists the same ban
                assert (await rest.get("/banlist/")).json() == listed
            del ban["appliesToYou"]
            assert listed == [ban]

            for content, field in (
                ({"ip": "10.0.0.0/33"}, "ip"),
                ({"ip": "not-an-address"}, "ip"),
                ({"ip": "999.1.1.1"}, "ip"),
                ({"ip": "x" * 100_000}, "ip"),
                ({"ip": ""}, "ip"),
                ({"ip": "10.0.0.1", "subnet": -1}, "subnet"),
                ({"ip": "10.0.0.0/8", "subnet": 16}, "subnet"),
                ({"ip": "10.0.0.1", "expires": "2001-01-01"}, "expires"),
                ({"ip": "10.0.0.1", "expires": "tomorrow"}, "expires"),
                ({"ip": "10.0.0.1", "comment": "c" * 100_000}, "comment"),
            ):
                text = await refused(admin, "ban.add", content, INVALID_ARGUMENT, field)
                assert len(text) < 500, text
            await refused(admin, "ban.add", {"ip": "10.0.0.1", "reason": "x"}, MODEL_EXCEPTION,
                          "reason")  # fmt: skip
            await refused(admin, "ban.remove", {"id": 424242}, ENTITY_NOT_FOUND, "")
            await refused(admin, "ban.remove", {"id": 0}, INVALID_ARGUMENT, "id")
            assert len(await admin.ok("ban.list", {})) == 1

            assert await admin.ok("ban.remove", {"id": ban["id"]}) is None
            assert await admin.ok("ban.list", {}) == []
            assert daemon.ctx.bans.is_banned("10.20.3.4") is None
        (added,) = await audit_messages(daemon, "Ban")
        assert added.startswith(f"ban #{ban['id']} of 10.20.0.0/16 added (expires 2999-"), added
        assert "spam" in added
        assert await audit_messages(daemon, "Unban") == [
            f"ban #{ban['id']} of 10.20.0.0/16 removed"
        ]
