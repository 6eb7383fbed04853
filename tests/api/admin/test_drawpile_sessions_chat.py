"""An administrator in a session's chat over the admin listener (``/sessions/:id/chat``:
POST connect, GET ``?offset=``, PUT a line, DELETE ``?message=``), reaching a real
seed 003 chat client, and its refusals."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from leosuite.community.admin_chat import AdminChats
from tests.helpers.chat import chat
from tests.helpers.daemon import RunningDaemon
from tests.helpers.drawpile_admin import Someone, admin_audit, session_id, web_admin
from tests.helpers.http import assert_admin_error
from tests.helpers.rooms import ROOM_PASS, RoomClient


def lines(answer: dict[str, Any]) -> list[Any]:
    return [(m.get("i"), m.get("n"), m["m"]) for m in answer["messages"]]


async def test_a_conversation_with_a_chat_client(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.admin() as http, chat(daemon, "carol") as carol:
            admin = web_admin(http)
            await carol.join("lobby")
            sid = session_id(daemon, "lobby")
            carol_id = daemon.ctx.chat.core.find("lobby").member_named("carol").id
            assert (await admin.getSession(sid)).json()["chat"] is None
            connected = await admin.connectChat(sid, "  An admin is reading  ")
            assert connected.status_code == 200, connected.text
            assert connected.json() == {"offset": 0, "messages": [{"m": "An admin is reading"}]}
            frame = await carol.expect(0, user="SYSTEM", message="An admin is reading")
            assert (frame["dest"], frame["level"]) == ("lobby", "alert")
            state = (await admin.getSession(sid)).json()["chat"]
            assert (state["offset"], state["count"], state["timeout"]) == (0, 1, 300000)
            assert 0 < state["remaining"] <= 300000
            await carol.send(0, dest="lobby", message="hello admin")
            await carol.expect(0, user="carol", message="hello admin")
            read = (await admin.getChatMessages(sid, 1)).json()
            assert read == {
                "offset": 1,
                "messages": [{"i": carol_id, "n": "carol", "m": "hello admin"}],
            }
            said = await admin.sendChatMessage(sid, "Welcome!", 2)
            assert said.json() == {"offset": 2, "messages": [{"m": "Welcome!"}]}
            await carol.expect(0, user="SYSTEM", message="Welcome!")
            # A session message from the admin's session page is the admins' line too.
            await admin.changeSession(sid, {"message": "Be nice"})
            everything = (await admin.getChatMessages(sid, 0)).json()
            assert lines(everything) == [
                (None, None, "An admin is reading"),
                (carol_id, "carol", "hello admin"),
                (None, None, "Welcome!"),
                (None, None, "Be nice"),
            ]
            gone = await admin.disconnectChat(sid, "Bye for now")
            assert gone.json() == {
                "offset": 0,
                "messages": everything["messages"] + [{"m": "Bye for now"}],
            }
            await carol.expect(0, user="SYSTEM", message="Bye for now")
            assert (await admin.getSession(sid)).json()["chat"] is None
            assert_admin_error(await admin.getChatMessages(sid, 0), 404)
    audit = await admin_audit(daemon)
    assert any(m.startswith("connected to the chat of session lobby") for m in audit)
    assert sum(m.startswith("admin chat line to session lobby") for m in audit) == 3
    assert any(m.startswith("disconnected from the chat of session lobby") for m in audit)
    assert not any("Welcome!" in m for m in audit)


async def test_connect_twice_disconnect_without_message_and_timeout(daemon: RunningDaemon) -> None:
    alice = Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(20):
        async with daemon.admin() as http:
            admin = web_admin(http)
            body = {"message": "hi", "timeout": "30000"}
            first = await admin.send(f"/sessions/{sid}/chat", "POST", body)
            assert first.status_code == 200, first.text
            assert (await admin.getSession(sid)).json()["chat"]["timeout"] == 30000
            again = await admin.connectChat(sid, "hi again")
            assert "connected already" in assert_admin_error(again, 409)
            gone = await admin.disconnectChat(sid, "")
            assert gone.json() == {"offset": 0, "messages": [{"m": "hi"}]}
            assert [e.text for e in alice.got("system")] == ["hi"]
            # Past its timeout without a read, the chat is disconnected.
            await admin.connectChat(sid, "back")
            chats = next(h for h in daemon.ctx.chat.housekeepers if isinstance(h, AdminChats))
            chat_state = chats.get(daemon.ctx.chat.core.sessions[sid])
            chat_state.expires = trio.current_time()
            assert (await admin.getSession(sid)).json()["chat"] is None
            assert_admin_error(await admin.sendChatMessage(sid, "late", 0), 404)
            assert not daemon.ctx.chat.core.sessions[sid].watchers


async def test_the_chat_ends_with_its_session(daemon: RunningDaemon) -> None:
    Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(20):
        async with daemon.admin() as http:
            admin = web_admin(http)
            assert (await admin.connectChat(sid, "hello")).status_code == 200
            assert (await admin.terminateSession(sid, False)).status_code == 200
            assert_admin_error(await admin.getChatMessages(sid, 0), 404)
            Someone(daemon, "bob", "general")  # the same name, a new session
            new = session_id(daemon, "general")
            assert (await admin.getSession(new)).json()["chat"] is None
            assert_admin_error(await admin.getChatMessages("general", 0), 404)


async def test_a_room_has_no_admin_chat(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as http, daemon.admin() as client:
            owner = RoomClient(http, "secretroom", "owner")
            await owner.create(ROOM_PASS)
            await owner.join(ROOM_PASS)
            admin = web_admin(client)
            sid = session_id(daemon, "secretroom")
            refused = await admin.connectChat(sid, "hello")
            assert "encrypted" in assert_admin_error(refused, 409)
            assert_admin_error(await admin.getChatMessages(sid, 0), 404)


BAD_OFFSETS = ["-1", "abc", "1.5", "1e3", "99999999999", "2147483648", "%00", "\uff11"]
BAD_BODIES: list[tuple[str, Any, int]] = [
    ("POST", {}, 400),
    ("POST", {"message": "   "}, 400),
    ("POST", {"message": "x" * 20000}, 413),
    ("POST", {"message": "hi", "timeout": 29999}, 400),
    ("POST", {"message": "hi", "timeout": "900001"}, 400),
    ("POST", {"message": "hi", "timeout": "-5"}, 400),
    ("POST", {"message": "hi", "timeout": True}, 400),
    ("POST", {"message": "hi", "extra": 1}, 400),
    ("PUT", {"message": "hi", "offset": -1}, 400),
    ("PUT", {"message": "hi", "offset": 2**31}, 400),
    ("PUT", {"message": "hi", "offset": "12345678901"}, 400),
    ("PUT", {"message": "hi", "offset": 1.5}, 400),
    ("PUT", {"offset": 0}, 400),
    ("PUT", [1], 400),
]


async def test_hostile_values(daemon: RunningDaemon) -> None:
    alice = Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(30):
        async with daemon.admin() as http:
            admin = web_admin(http)
            for method in ("POST", "GET", "PUT", "DELETE"):
                response = await admin.send("/sessions/nosuch/chat", method, {"message": "x"})
                assert_admin_error(response, 404)
            assert (await admin.connectChat(sid, "first")).status_code == 200
            for offset in BAD_OFFSETS:
                assert "offset" in assert_admin_error(await admin.getChatMessages(sid, offset), 400)
                response = await admin.delete(f"/sessions/{sid}/chat?offset={offset}")
                assert "offset" in assert_admin_error(response, 400)
            huge = await admin.delete(f"/sessions/{sid}/chat?message={'x' * 20000}")
            assert_admin_error(huge, 413)
            far = (await admin.getChatMessages(sid, 2**31 - 1)).json()
            assert far == {"offset": 1, "messages": []}
            for method, body, status in BAD_BODIES:
                assert_admin_error(await admin.send(f"/sessions/{sid}/chat", method, body), status)
            assert (await admin.getChatMessages(sid, 0)).json()["messages"] == [{"m": "first"}]
    assert [e.text for e in alice.got("system")] == ["first"]


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"}])
async def test_a_body_must_be_json(daemon: RunningDaemon, headers: dict[str, str]) -> None:
    Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(10):
        async with daemon.admin() as http:
            admin = web_admin(http)
            response = await http.post(
                f"/api/sessions/{sid}/chat",
                content=b'{"message": "hi"}',
                headers={**admin.auth, **headers},
            )
            assert_admin_error(response, 415)
            assert (await admin.getSession(sid)).json()["chat"] is None
