"""Invite codes over the admin listener (``/sessions/:id/invites``) used by real seed 003
chat clients to join a closed, password-protected channel; counted uses, roles,
revoking, and hostile values."""

from __future__ import annotations

from typing import Any

import trio

from tests.helpers.chat import Chat, chat
from tests.helpers.daemon import RunningDaemon
from tests.helpers.drawpile_admin import Someone, admin_audit, session_id, web_admin
from tests.helpers.http import assert_admin_error
from tests.helpers.rooms import ROOM_PASS, RoomClient

INVITE_KEYS = {"secret", "creator", "at", "maxUses", "uses", "op", "trust"}


async def join_with(client: Chat, code: str | None) -> dict[str, Any]:
    """Send a join of ``#locked`` with ``code`` as its password; the answer frame."""
    await client.send(4, channel="locked", **({} if code is None else {"password": code}))
    return await client.next(
        lambda f: f["type"] in (-1, 4) and f.get("user", client.nick) == client.nick
    )


async def test_codes_open_a_locked_channel_to_chat_clients(daemon: RunningDaemon) -> None:
    Someone(daemon, "founder", "locked", account_id=1)
    sid = session_id(daemon, "locked")
    session = daemon.ctx.chat.core.sessions[sid]
    with trio.fail_after(40):
        async with daemon.admin() as http:
            admin = web_admin(http)
            locked = await admin.changeSession(sid, {"closed": True, "password": "pw-1"})
            assert locked.status_code == 200, locked.text
            created = await admin.createInvite(sid, "2", False, True)
            assert created.status_code == 200, created.text
            invite = created.json()
            assert set(invite) == INVITE_KEYS
            assert (invite["maxUses"], invite["op"], invite["trust"], invite["uses"]) == (
                2,
                True,
                False,
                [],
            )
            assert invite["creator"] == "admin"
            assert invite["at"].endswith("Z")
            code = invite["secret"]
            async with (
                chat(daemon, "dave") as dave,
                chat(daemon, "erin") as erin,
                chat(daemon, "frank") as frank,
            ):
                refused = await join_with(dave, None)
                assert "closed" in refused["message"]
                assert (await join_with(dave, "not-the-code"))["type"] == -1
                assert (await join_with(dave, code))["type"] == 4
                assert (await join_with(erin, code))["type"] == 4
                used_up = await join_with(frank, code)
                assert "used up" in used_up["message"]
                users = (await admin.getSession(sid)).json()["users"]
                assert {u["name"]: u["op"] for u in users} == {
                    "founder": True,
                    "dave": True,
                    "erin": True,
                }
                assert (await join_with(dave, code))["type"] == 4  # in already: no use
            detail = (await admin.getSession(sid)).json()
            (listed,) = detail["invitelist"]
            assert sorted(use["name"] for use in listed["uses"]) == ["dave", "erin"]
            assert all(use["at"].endswith("Z") for use in listed["uses"])
            assert (await admin.get(f"/sessions/{sid}/invites")).json() == {"invites": [listed]}
            assert (await admin.get(f"/sessions/{sid}/invites/{code}")).json() == listed
            revoked = await admin.revokeInvite(sid, code)
            assert revoked.json() == {"status": "ok"}
            assert (await admin.getSession(sid)).json()["invitelist"] == []
            assert_admin_error(await admin.revokeInvite(sid, code), 404)
            assert_admin_error(await admin.get(f"/sessions/{sid}/invites/{code}"), 404)
    assert list(session.members) == [next(iter(session.members))]  # the founder only
    audit = await admin_audit(daemon)
    assert any(
        m.startswith("created an invite code for session locked (2 uses, op)") for m in audit
    )
    assert any(m.startswith("revoked an invite code of session locked (2 used it)") for m in audit)
    assert not any(code in m for m in audit)


async def test_roles_of_a_code_and_trust_afterwards(daemon: RunningDaemon) -> None:
    Someone(daemon, "founder", "locked", account_id=1)
    sid = session_id(daemon, "locked")
    session = daemon.ctx.chat.core.sessions[sid]
    with trio.fail_after(30):
        async with daemon.admin() as http:
            admin = web_admin(http)
            await admin.changeSession(sid, {"authOnly": True, "password": "pw-1"})
            op_code = (await admin.createInvite(sid, 1, False, True)).json()["secret"]
            trust_code = (await admin.createInvite(sid, 1, True, False)).json()["secret"]
            async with chat(daemon, "oscar") as oscar, chat(daemon, "tina") as tina:
                refused = await join_with(tina, None)
                assert "logged-in" in refused["message"]
                assert (await join_with(oscar, op_code))["type"] == 4
                assert (await join_with(tina, trust_code))["type"] == 4
                users = {u["name"]: u for u in (await admin.getSession(sid)).json()["users"]}
                assert (users["oscar"]["op"], users["oscar"]["trusted"]) == (True, False)
                assert (users["tina"]["op"], users["tina"]["trusted"]) == (False, True)
                # A guest's trust is this connection's: it ends when it leaves.
                await tina.send(5, channel="locked")
                await tina.expect(5, user="tina")
                assert not session.trusted
                refused = await join_with(tina, None)
                assert refused["type"] == -1


BAD_INVITES: list[tuple[Any, int]] = [
    ({"maxUses": 0}, 400),
    ({"maxUses": 51}, 400),
    ({"maxUses": "51"}, 400),
    ({"maxUses": "0"}, 400),
    ({"maxUses": "-1"}, 400),
    ({"maxUses": "abc"}, 400),
    ({"maxUses": 1.5}, 400),
    ({"maxUses": True}, 400),
    ({"maxUses": 10**30}, 400),
    ({}, 400),
    ({"maxUses": 1, "op": "yes"}, 400),
    ({"maxUses": 1, "colour": "red"}, 400),
    ([1], 400),
]


async def test_hostile_values(daemon: RunningDaemon) -> None:
    Someone(daemon, "founder", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(30):
        async with daemon.admin() as http:
            admin = web_admin(http)
            for body, status in BAD_INVITES:
                response = await admin.send(f"/sessions/{sid}/invites", "POST", body)
                assert_admin_error(response, status)
            assert_admin_error(await admin.createInvite("nosuch", 1, False, False), 404)
            for secret in ("x" * 5000, "%2E%2E", "%00", "\uff11"):
                assert_admin_error(await admin.revokeInvite(sid, secret), 404)
            for _ in range(50):
                assert (await admin.createInvite(sid, 50, False, False)).status_code == 200
            too_many = await admin.createInvite(sid, 1, False, False)
            assert "at most 50" in assert_admin_error(too_many, 409)
            assert len((await admin.getSession(sid)).json()["invitelist"]) == 50


async def test_a_room_takes_no_codes(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http, daemon.admin() as client:
            owner = RoomClient(http, "secretroom", "owner")
            await owner.create(ROOM_PASS)
            admin = web_admin(client)
            sid = session_id(daemon, "secretroom")
            refused = await admin.createInvite(sid, 1, False, False)
            assert "room" in assert_admin_error(refused, 409)
            assert daemon.ctx.chat.core.sessions[sid].invites == {}
