"""Sessions and users on the admin listener in both spellings (``/session/`` and
``/sessions/``), with the fields Drawpile's admin tools read: ``maxUserCount``,
``authOnly``, ``idleOverride``, ``hasOpword``, ``listings``; users' ``uid``,
``online``, ``trusted``, ``state``; ``PUT /sessions`` and ``DELETE /users/:uid``; who
may call them, and hostile values."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.chat import chat
from tests.helpers.daemon import RunningDaemon
from tests.helpers.drawpile_admin import AUTH, Someone, admin_audit, session_id
from tests.helpers.http import assert_admin_error
from tests.helpers.rooms import ROOM_PASS, RoomClient
from tests.helpers.ws import client_socket_leak_tolerated


def variants(path: str) -> list[str]:
    base = path.rstrip("/")
    return [base, base + "/", "/api" + base, "/api" + base + "/"]


def admin(daemon: RunningDaemon) -> httpx.AsyncClient:
    return daemon.admin(auth=AUTH)


async def test_both_spellings_read_change_and_shut_down(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with admin(daemon) as client:
            for n, prefix in enumerate(("/session", "/sessions")):
                alice = Someone(daemon, f"alice{n}", f"room{n}")
                sid = session_id(daemon, f"room{n}")
                for path in variants(f"{prefix}/{sid}"):
                    shown = await client.get(path)
                    assert shown.status_code == 200, (path, shown.text)
                    assert shown.json()["id"] == sid
                    changed = await client.put(path, json={"title": path})
                    assert changed.status_code == 200, (path, changed.text)
                    assert changed.json()["title"] == path
                    assert changed.json()["users"][0]["name"] == f"alice{n}"
                ended = await client.delete(f"{prefix}/{sid}")
                assert ended.json() == {"status": "ok"}
                assert [e.reason for e in alice.got("closed")] == ["shut down by an administrator"]
                assert_admin_error(await client.get(f"{prefix}/{sid}"), 404)


async def test_the_fields_drawpiles_tools_read(daemon: RunningDaemon) -> None:
    alice = Someone(daemon, "alice", "general", account_id=1)
    Someone(daemon, "bob", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(20):
        async with admin(daemon) as client:
            (listed,) = (await client.get("/sessions/?v=2")).json()
            assert listed["maxUserCount"] == daemon.ctx.chat.core.limits.default_max_users
            assert (listed["authOnly"], listed["idleOverride"]) == (False, False)
            put = await client.put(f"/sessions/{sid}", json={"opword": "op-secret"})
            detail = (await client.get(f"/sessions/{sid}")).json()
            assert put.json() == {**detail, "ignored": []}
            assert detail["hasOpword"] is True
            assert detail["hasPassword"] is False
            assert (detail["listings"], detail["listing"]) == ([], [])
            assert (detail["invitelist"], detail["chat"]) == ([], None)
            first, second = detail["users"]
            assert (first["id"], first["uid"], first["name"]) == (
                alice.member.id,
                alice.member.id,
                "alice",
            )
            assert all(u["online"] is True and u["trusted"] is False for u in (first, second))
            removed = await client.put(f"/sessions/{sid}", json={"opword": ""})
            assert removed.json()["hasOpword"] is False


async def test_auth_only_idle_override_and_founder(daemon: RunningDaemon) -> None:
    Someone(daemon, "owner", "members", account_id=1)
    sid = session_id(daemon, "members")
    session = daemon.ctx.chat.core.sessions[sid]
    with trio.fail_after(30):
        async with admin(daemon) as client:
            put = await client.put(
                f"/api/sessions/{sid}/",
                json={"authOnly": True, "idleOverride": True, "founder": "someone else"},
            )
            assert put.status_code == 200, put.text
            shown = put.json()
            assert (shown["authOnly"], shown["idleOverride"], shown["founder"]) == (
                True,
                True,
                "someone else",
            )
            async with chat(daemon, "guest1") as guest:
                await guest.send(4, channel="members")
                assert "logged-in" in await guest.error()
            assert len(session.members) == 1
            # Idle for longer than the limit: not closed while idleOverride is on.
            session.last_activity -= daemon.ctx.chat.core.limits.idle_time_limit + 3600
            daemon.ctx.chat.housekeeping()
            assert sid in daemon.ctx.chat.core.sessions
            back = await client.put(f"/api/session/{sid}", json={"idleOverride": False})
            assert back.json()["idleOverride"] is False
            daemon.ctx.chat.housekeeping()
            assert sid not in daemon.ctx.chat.core.sessions
    messages = await admin_audit(daemon)
    assert any("authOnly=true" in m and "idleOverride=true" in m for m in messages)


async def test_other_names_are_ignored_and_reported(daemon: RunningDaemon) -> None:
    """What the origin's session page may send and leosuite has no counterpart for does
    not stop the known names sent with it (one debounce of the page sends them all)."""
    Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(10):
        async with admin(daemon) as client:
            body = {"resetThreshold": "5MB", "title": "Kept", "archive": None, "x" * 300: 1}
            response = await client.put(f"/api/sessions/{sid}", json=body)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["title"] == "Kept"
            assert answer["ignored"] == ["resetThreshold", "archive", "x" * 99 + "…"]
            many = {f"k{n}": n for n in range(150)}
            assert len((await client.put(f"/sessions/{sid}", json=many)).json()["ignored"]) == 100
            for body in ([1], "text", 3):
                assert_admin_error(await client.put(f"/sessions/{sid}", json=body), 400)
    assert daemon.ctx.chat.core.sessions[sid].title == "Kept"


async def test_quiet_termination_shuts_down_as_usual(daemon: RunningDaemon) -> None:
    alice = Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(10):
        async with admin(daemon) as client:
            response = await client.delete(f"/api/sessions/{sid}?quiet=true")
            assert response.json() == {"status": "ok"}
    assert [e.reason for e in alice.got("closed")] == ["shut down by an administrator"]
    assert sid not in daemon.ctx.chat.core.sessions


async def test_unlisting_says_there_are_no_listings(daemon: RunningDaemon) -> None:
    Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(10):
        async with admin(daemon) as client:
            message = assert_admin_error(await client.delete(f"/sessions/{sid}/listing/1"), 404)
            assert "no list server" in message
            assert_admin_error(await client.delete("/sessions/nosuch/listing/1"), 404)


async def test_message_every_session(daemon: RunningDaemon) -> None:
    alice = Someone(daemon, "alice", "one")
    bob = Someone(daemon, "bob", "two")
    with trio.fail_after(20):
        async with admin(daemon) as client:
            for path in variants("/sessions"):
                response = await client.put(path, json={"alert": f"alert {path}"})
                assert response.json() == {"status": "ok", "sessions": 2}
            both = await client.put("/sessions", json={"message": "info", "alert": "loud"})
            assert both.json() == {"status": "ok", "sessions": 2}
            assert_admin_error(await client.put("/sessions", json={"alert": " "}), 400)
            assert_admin_error(await client.put("/sessions", json={"title": "x"}), 400)
            assert_admin_error(await client.put("/sessions", json={"alert": "a" * 20000}), 413)
    for someone in (alice, bob):
        lines = [(e.level, e.text) for e in someone.got("system")]
        assert lines == [("alert", f"alert {p}") for p in variants("/sessions")] + [
            ("info", "info"),
            ("alert", "loud"),
        ]
    assert sum(m.startswith("alert to every session") for m in await admin_audit(daemon)) == 5


async def test_users_op_trust_alert_and_kick_in_both_spellings(daemon: RunningDaemon) -> None:
    Someone(daemon, "founder", "general", account_id=1)
    carol = Someone(daemon, "carol", "general", account_id=5)
    sid = session_id(daemon, "general")
    session = daemon.ctx.chat.core.sessions[sid]
    uid = carol.member.id
    with trio.fail_after(20):
        async with admin(daemon) as client:
            for prefix in ("/sessions", "/api/session"):
                shown = await client.get(f"{prefix}/{sid}/{uid}")
                assert (shown.json()["uid"], shown.json()["online"]) == (uid, True)
            trusted = await client.put(f"/sessions/{sid}/{uid}", json={"trusted": True})
            assert trusted.status_code == 200, trusted.text
            assert trusted.json()["trusted"] is True
            opped = await client.put(f"/sessions/{sid}/{uid}/", json={"op": True, "alert": "hey"})
            assert (opped.json()["op"], opped.json()["trusted"]) == (True, True)
            assert [(e.level, e.text, e.to) for e in carol.got("system")] == [
                ("alert", "hey", "carol")
            ]
            users = (await client.get("/users/?v=2")).json()
            entry = next(u for u in users if u["id"] == uid)
            assert (entry["uid"], entry["trusted"], entry["state"]) == (uid, True, "session")
            kicked = await client.delete(f"/api/sessions/{sid}/{uid}")
            assert kicked.json() == {"status": "ok"}
            assert uid not in session.members
            # Trusted: back in although the session is closed and has a password now.
            await client.put(f"/sessions/{sid}", json={"closed": True, "password": "sesame"})
            daemon.ctx.chat.core.join(carol.member, "general", password_ok=False)
            assert uid in session.members
            untrusted = await client.put(f"/session/{sid}/{uid}", json={"trusted": False})
            assert untrusted.json()["trusted"] is False
    messages = await admin_audit(daemon)
    assert any(m.startswith("trusted carol") for m in messages)
    assert any(m.startswith("untrusted carol") for m in messages)


async def test_delete_user_disconnects_it_from_every_session(daemon: RunningDaemon) -> None:
    lonely = Someone(daemon, "lonely")
    busy = Someone(daemon, "busy", "one", "two")
    with trio.fail_after(20):
        async with admin(daemon) as client:
            users = (await client.get("/users")).json()
            assert [
                (u["name"], u["state"], u["session"]) for u in users if u["name"] == "lonely"
            ] == [("lonely", "login", "")]
            for someone in (lonely, busy):
                uid = someone.member.id
                response = await client.delete(f"/api/users/{uid}")
                assert response.json() == {"status": "ok"}
                assert someone.gone == ["kicked by an administrator"]
                assert not someone.member.sessions
                assert_admin_error(await client.delete(f"/users/{uid}"), 404)
            assert (await client.get("/users")).json() == []

    async def over_websocket() -> None:
        async with admin(daemon) as client, chat(daemon, "wsuser") as ws:
            await ws.join("live")
            (entry,) = (await client.get("/users")).json()
            assert (await client.delete(f"/users/{entry['uid']}/")).status_code == 200
            assert await ws.closed() == 1008

    # The connection the server closes leaves trio-websocket's client socket behind.
    with trio.fail_after(20), client_socket_leak_tolerated():
        await over_websocket()
    assert sum(m.startswith("disconnected ") for m in await admin_audit(daemon)) == 3


async def test_rooms_take_no_auth_only_or_trust(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http, admin(daemon) as client:
            owner = RoomClient(http, "secretroom", "owner")
            await owner.create(ROOM_PASS)
            await owner.join(ROOM_PASS)
            sid = session_id(daemon, "secretroom")
            detail = (await client.get(f"/sessions/{sid}")).json()
            assert "chat" not in detail
            assert "invitelist" not in detail
            uid = detail["users"][0]["id"]
            refused = await client.put(f"/sessions/{sid}", json={"authOnly": True})
            assert "authOnly" in assert_admin_error(refused, 400)
            refused = await client.put(f"/sessions/{sid}/{uid}", json={"trusted": True})
            assert "trusted" in assert_admin_error(refused, 400)
            assert (
                await client.put(f"/sessions/{sid}", json={"authOnly": False})
            ).status_code == 200


NEW_CALLS = [
    ("PUT", "/sessions", {"alert": "x"}),
    ("GET", "/sessions/{sid}/{uid}", None),
    ("PUT", "/sessions/{sid}/{uid}", {"trusted": True}),
    ("DELETE", "/sessions/{sid}/{uid}", None),
    ("PUT", "/sessions/{sid}", {"title": "x"}),
    ("DELETE", "/session/{sid}", None),
    ("DELETE", "/users/{uid}", None),
    ("POST", "/sessions/{sid}/chat", {"message": "x"}),
    ("GET", "/sessions/{sid}/chat?offset=0", None),
    ("PUT", "/sessions/{sid}/chat", {"message": "x", "offset": 0}),
    ("DELETE", "/sessions/{sid}/chat?message=x", None),
    ("POST", "/sessions/{sid}/invites", {"maxUses": 1}),
    ("GET", "/sessions/{sid}/invites", None),
    ("DELETE", "/sessions/{sid}/invites/abc", None),
    ("GET", "/listserverwhitelist/", None),
    ("PUT", "/listserverwhitelist/", {"enabled": True, "whitelist": []}),
    ("GET", "/extbans/", None),
    ("POST", "/extbans/refresh", {}),
    ("PUT", "/extbans/1", {"enabled": True}),
    ("GET", "/locks/", None),
    ("PUT", "/locks/", {"sections": ["server"], "password": ""}),
]


async def call(
    client: httpx.AsyncClient, method: str, path: str, body: Any, **kw: Any
) -> httpx.Response:
    return await client.request(method, "/api" + path, json=body, **kw)


async def test_a_non_admin_account_is_refused_everything_new(daemon: RunningDaemon) -> None:
    await add_account(daemon, "moderator", "MOD", "HOST")
    alice = Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(30):
        async with daemon.admin(auth=("moderator", PASSWORD)) as client:
            for method, path, body in NEW_CALLS:
                url = path.format(sid=sid, uid=alice.member.id)
                response = await call(client, method, url, body)
                assert "not an administrator" in assert_admin_error(response, 403), url
        async with daemon.admin() as anonymous:
            response = await call(anonymous, "DELETE", f"/users/{alice.member.id}", None)
            assert_admin_error(response, 401)
    assert sid in daemon.ctx.chat.core.sessions
    assert alice.member.id in daemon.ctx.chat.core.sessions[sid].members
    assert not alice.got("system")


async def test_a_foreign_origin_is_refused_before_anything(daemon: RunningDaemon) -> None:
    alice = Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    evil = {"Origin": "http://evil.example"}
    with trio.fail_after(30):
        async with admin(daemon) as client:
            for method, path, body in NEW_CALLS:
                url = path.format(sid=sid, uid=alice.member.id)
                assert_admin_error(await call(client, method, url, body, headers=evil), 403)
    assert alice.member.id in daemon.ctx.chat.core.sessions[sid].members
    assert not alice.got("system")


HOSTILE_USERS = ["undefined", "-1", "0x10", "1e3", "9" * 40, "%00", "\uff11"]


async def test_hostile_ids_and_values(daemon: RunningDaemon) -> None:
    alice = Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(30):
        async with admin(daemon) as client:
            for method, path, body in NEW_CALLS:
                if "{sid}" in path:
                    url = path.format(sid="no-such-session", uid=alice.member.id)
                    assert_admin_error(await call(client, method, url, body), 404)
            for uid in HOSTILE_USERS:
                assert_admin_error(await client.delete(f"/users/{uid}"), 404)
                assert_admin_error(await client.get(f"/sessions/{sid}/{uid}"), 404)
                response = await client.put(f"/sessions/{sid}/{uid}", json={"op": True})
                assert_admin_error(response, 404)
            bad_bodies: list[tuple[dict[str, Any], str]] = [
                ({"founder": ""}, "founder"),
                ({"founder": "x" * 65}, "founder"),
                ({"founder": "a\nb"}, "founder"),
                ({"authOnly": "yes"}, "authOnly"),
                ({"idleOverride": 1}, "idleOverride"),
                ({"maxUserCount": "10"}, "maxUserCount"),
            ]
            for body, field in bad_bodies:
                changes = {**body, "closed": True, "resetThreshold": "5MB"}
                response = await client.put(f"/sessions/{sid}", json=changes)
                assert field in assert_admin_error(response, 400)
            for body in ({"trusted": "yes"}, {"alert": ""}, {"kick": True}):
                response = await client.put(f"/sessions/{sid}/{alice.member.id}", json=body)
                assert_admin_error(response, 400)
    session = daemon.ctx.chat.core.sessions[sid]
    assert (session.closed, session.founder, session.auth_only) == (False, "alice", False)
    assert alice.member.id in session.members
    assert not alice.gone


@pytest.mark.parametrize("prefix", ["/sessions", "/session"])
async def test_user_paths_need_a_member_of_that_session(daemon: RunningDaemon, prefix: str) -> None:
    alice = Someone(daemon, "alice", "one")
    Someone(daemon, "bob", "two")
    two = session_id(daemon, "two")
    with trio.fail_after(10):
        async with admin(daemon) as client:
            for method in ("GET", "PUT", "DELETE"):
                response = await client.request(
                    method, f"{prefix}/{two}/{alice.member.id}", json={"op": True}
                )
                assert_admin_error(response, 404)
    assert alice.member.sessions
