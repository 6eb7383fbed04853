"""Admin API sessions and users (seed 002) over real HTTP: ``/sessions/``,
``/sessions/:id/``, ``/session/:id/``, ``/session/:id/:userId/`` and ``/users/`` at ``/``
and under ``/api/``, with and without the trailing slash; members made through the
chat core with a recording ``deliver``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import argon2
import httpx
import pytest
import trio

from leosuite.community.models import ChatEvent, Member
from leosuite.store import audit as audit_table
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, start_daemon
from tests.helpers.http import assert_admin_error

AUTH = ("admin", ADMIN_PASSWORD)
SUMMARY_KEYS = {
    "id", "alias", "protocol", "userCount", "founder", "title", "hasPassword", "closed",
    "persistent", "nsfm", "startTime", "size", "maxUserCount", "authOnly", "idleOverride",
}  # fmt: skip
DETAIL_KEYS = SUMMARY_KEYS | {
    "maxSize", "preserveChat", "hasOpword", "users", "listing", "listings", "invitelist", "chat",
}  # fmt: skip
USER_KEYS = {
    "id", "uid", "name", "ip", "auth", "op", "trusted", "muted", "mod", "tls", "online",
}  # fmt: skip


def variants(path: str) -> list[str]:
    """``path`` at ``/`` and under ``/api/``, with and without the trailing slash."""
    base = path.rstrip("/")
    return [base, base + "/", "/api" + base, "/api" + base + "/"]


def admin(daemon: RunningDaemon) -> httpx.AsyncClient:
    return daemon.admin(auth=AUTH)


class Someone:
    """A chat member made through the core, recording what it is delivered."""

    def __init__(self, daemon: RunningDaemon, name: str, *channels: str, **kw: Any) -> None:
        self.inbox: list[ChatEvent] = []
        self.gone: list[str] = []
        core = daemon.ctx.chat.core
        self.member = Member(
            name, ip="10.1.2.3", deliver=self._keep, disconnect=self.gone.append, **kw
        )
        core.connect(self.member)
        for channel in channels:
            core.join(self.member, channel)

    def _keep(self, event: ChatEvent) -> bool:
        self.inbox.append(event)
        return True

    def got(self, kind: str) -> list[ChatEvent]:
        return [e for e in self.inbox if e.kind == kind]


def session_id(daemon: RunningDaemon, name: str) -> str:
    session = daemon.ctx.chat.core.find(name)
    assert session is not None
    sid: str = session.id
    return sid


async def audit_messages(daemon: RunningDaemon) -> list[str]:
    entries = await daemon.ctx.db.call(
        lambda c: audit_table.page(c, offset=0, limit=100, newest_first=False)
    )
    return [e.message for e in entries if e.topic == "Status" and e.user_name == "admin"]


async def test_list_and_detail_on_every_path(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with admin(daemon) as client:
            for path in variants("/sessions"):
                response = await client.get(path)
                assert response.status_code == 200, response.text
                assert response.json() == []
            alice = Someone(daemon, "alice", "general", account_id=1)
            Someone(daemon, "bob", "#general", "Another")
            sid = session_id(daemon, "general")
            for path in variants("/sessions"):
                listed = (await client.get(path)).json()
                assert isinstance(listed, list)
                assert [s["alias"] for s in listed] == ["Another", "general"]
                assert all(set(s) == SUMMARY_KEYS for s in listed)
            for path in variants(f"/sessions/{sid}"):
                response = await client.get(path)
                assert response.status_code == 200, response.text
                detail = response.json()
                assert set(detail) == DETAIL_KEYS
                assert detail["listing"] == []
                assert (detail["id"], detail["userCount"], detail["founder"]) == (sid, 2, "alice")
                first, second = detail["users"]
                assert set(first) == USER_KEYS
                assert (first["id"], first["name"], first["ip"]) == (
                    alice.member.id,
                    "alice",
                    "10.1.2.3",
                )
                assert (first["auth"], first["op"], first["tls"]) == (True, True, False)
                assert (second["name"], second["auth"], second["op"]) == ("bob", False, False)


async def test_shutdown_tells_members_and_removes_the_session(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with admin(daemon) as client:
            for n, path in enumerate(variants("/sessions/x")):
                alice = Someone(daemon, f"alice{n}", f"room{n}")
                sid = session_id(daemon, f"room{n}")
                response = await client.delete(path.replace("/x", f"/{sid}"))
                assert response.status_code == 200, response.text
                assert response.json() == {"status": "ok"}
                closed = alice.got("closed")
                assert len(closed) == 1
                assert closed[0].reason == "shut down by an administrator"
                assert sid not in daemon.ctx.chat.core.sessions
                assert not alice.member.sessions
                assert_admin_error(await client.delete(path.replace("/x", f"/{sid}")), 404)
                assert_admin_error(await client.get(f"/sessions/{sid}"), 404)
    assert len([m for m in await audit_messages(daemon) if m.startswith("shut down")]) == 4


async def test_put_properties(daemon: RunningDaemon) -> None:
    alice = Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    session = daemon.ctx.chat.core.sessions[sid]
    with trio.fail_after(30):
        async with admin(daemon) as client:
            paths = variants(f"/session/{sid}")
            response = await client.put(
                paths[0],
                json={"title": "Sketching", "closed": True, "maxUserCount": 5, "nsfm": True,
                      "preserveChat": False, "password": "open sesame", "opword": "op pw",
                      "persistent": True},
            )  # fmt: skip
            assert response.status_code == 200, response.text
            detail = response.json()
            assert set(detail) == DETAIL_KEYS | {"ignored"}
            assert (detail["title"], detail["closed"], detail["maxUserCount"]) == (
                "Sketching",
                True,
                5,
            )
            assert (detail["nsfm"], detail["preserveChat"], detail["hasPassword"]) == (
                True,
                False,
                True,
            )
            assert detail["persistent"] is True
            hasher = argon2.PasswordHasher()
            assert session.password_hash is not None
            assert session.opword_hash is not None
            assert hasher.verify(session.password_hash, "open sesame")
            assert hasher.verify(session.opword_hash, "op pw")
            again = await client.put(paths[1], json={"password": "", "closed": False})
            assert again.json()["hasPassword"] is False
            assert session.password_hash is None
            assert session.opword_hash is not None
            await client.put(paths[2], json={"opword": ""})
            assert session.opword_hash is None
            fourth = await client.put(paths[3], json={"persistent": False})
            assert fourth.status_code == 200
    assert not alice.gone
    messages = await audit_messages(daemon)
    assert any('password="set"' in m and 'title="Sketching"' in m for m in messages)
    assert not any("open sesame" in m for m in messages)


BAD_SESSION_BODIES = [
    pytest.param({"title": "x" * 101, "closed": True}, "title", 400, id="title-long"),
    pytest.param({"maxUserCount": 0, "closed": True}, "maxUserCount", 400, id="max-users-0"),
    pytest.param({"maxUserCount": 10**6}, "maxUserCount", 400, id="max-users-huge"),
    pytest.param({"closed": "yes"}, "closed", 400, id="closed-string"),
    pytest.param({"closed": True, "password": "p" * 257}, "password", 400, id="password-long"),
    pytest.param({"closed": True, "message": "  "}, "message", 400, id="empty-message"),
    pytest.param({"closed": True, "alert": "a" * 20000}, "alert", 413, id="alert-too-large"),
    pytest.param([1], None, 400, id="array"),
]


@pytest.mark.parametrize(("body", "field", "status"), BAD_SESSION_BODIES)
async def test_bad_session_put_changes_nothing(
    daemon: RunningDaemon, body: Any, field: str | None, status: int
) -> None:
    alice = Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(10):
        async with admin(daemon) as client:
            before = (await client.get(f"/sessions/{sid}")).json()
            message = assert_admin_error(await client.put(f"/session/{sid}/", json=body), status)
            if field is not None:
                assert field in message
            assert (await client.get(f"/sessions/{sid}")).json() == before
    assert not alice.got("system")


async def test_persistent_needs_enable_persistence(daemon: RunningDaemon) -> None:
    Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(10):
        async with admin(daemon) as client:
            off = await client.put("/server", json={"enablePersistence": False})
            assert off.status_code == 200
            refused = await client.put(f"/session/{sid}", json={"persistent": True, "nsfm": True})
            assert "persistent" in assert_admin_error(refused, 400)
            detail = (await client.get(f"/sessions/{sid}")).json()
    assert (detail["persistent"], detail["nsfm"]) == (False, False)


@pytest.mark.parametrize(
    "body", [b"{", b"\xff", b'"text"', b"null"], ids=["truncated", "utf8", "string", "null"]
)
async def test_put_bodies_that_are_not_objects(daemon: RunningDaemon, body: bytes) -> None:
    alice = Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    with trio.fail_after(10):
        async with admin(daemon) as client:
            headers = {"Content-Type": "application/json"}
            for path in (f"/session/{sid}", f"/api/session/{sid}/{alice.member.id}/"):
                assert_admin_error(await client.put(path, content=body, headers=headers), 400)


async def test_message_and_alert_reach_every_member(daemon: RunningDaemon) -> None:
    alice = Someone(daemon, "alice", "general")
    bob = Someone(daemon, "bob", "general")
    outsider = Someone(daemon, "carol", "elsewhere")
    sid = session_id(daemon, "general")
    with trio.fail_after(10):
        async with admin(daemon) as client:
            response = await client.put(
                f"/api/session/{sid}", json={"message": "hello all", "alert": "server restart"}
            )
            assert response.status_code == 200, response.text
    for someone in (alice, bob):
        lines = [(e.level, e.text, e.user) for e in someone.got("system")]
        assert lines == [("info", "hello all", "SYSTEM"), ("alert", "server restart", "SYSTEM")]
    assert not outsider.got("system")


async def test_kick_op_and_message_one_user(daemon: RunningDaemon) -> None:
    alice = Someone(daemon, "alice", "general")
    bob = Someone(daemon, "bob", "general")
    sid = session_id(daemon, "general")
    session = daemon.ctx.chat.core.sessions[sid]
    with trio.fail_after(20):
        async with admin(daemon) as client:
            paths = variants(f"/session/{sid}/{bob.member.id}")
            opped = await client.put(paths[0], json={"op": True})
            assert opped.status_code == 200, opped.text
            assert set(opped.json()) == USER_KEYS
            assert (opped.json()["id"], opped.json()["op"]) == (bob.member.id, True)
            assert session.is_op(bob.member)  # by identity, not by name
            assert [e.user for e in alice.got("op")] == ["bob"]
            deopped = await client.put(paths[1], json={"op": False, "message": "behave"})
            assert deopped.json()["op"] is False
            assert not session.is_op(bob.member)
            assert [(e.text, e.to) for e in bob.got("system")] == [("behave", "bob")]
            assert not alice.got("system")
            assert_admin_error(await client.put(paths[2], json={"op": "yes"}), 400)
            assert_admin_error(await client.put(paths[2], json={"mute": True}), 400)
            kicked = await client.delete(paths[3])
            assert kicked.status_code == 200, kicked.text
            assert kicked.json() == {"status": "ok"}
            leaves = bob.got("leave")
            assert [(e.user, e.reason) for e in leaves] == [("bob", "kicked by an administrator")]
            assert [e.user for e in alice.got("leave")] == ["bob"]
            assert bob.member.id not in session.members
            for path in paths[:2]:
                assert_admin_error(await client.delete(path), 404)
                assert_admin_error(await client.put(path, json={"op": True}), 404)
    messages = await audit_messages(daemon)
    assert any(m.startswith("kicked bob") for m in messages)
    assert any(m.startswith("opped bob") for m in messages)


async def test_users_lists_every_membership(daemon: RunningDaemon) -> None:
    alice = Someone(daemon, "alice", "general", "Another", account_id=1, mod=True)
    bob = Someone(daemon, "bob", "general")
    lonely = Someone(daemon, "lonely")
    general, another = session_id(daemon, "general"), session_id(daemon, "Another")
    daemon.ctx.chat.core.set_flag(None, daemon.ctx.chat.core.sessions[general], "bob", "mute")
    with trio.fail_after(20):
        async with admin(daemon) as client:
            for path in variants("/users"):
                response = await client.get(path)
                assert response.status_code == 200, response.text
                users = response.json()
                assert isinstance(users, list)
                assert all(set(u) == USER_KEYS | {"session", "state"} for u in users)
                rows = [(u["session"], u["id"], u["name"], u["op"], u["muted"]) for u in users]
                assert rows == [
                    (another, alice.member.id, "alice", True, False),
                    (general, alice.member.id, "alice", True, False),
                    (general, bob.member.id, "bob", False, True),
                    ("", lonely.member.id, "lonely", False, False),
                ]
                first = users[0]
                assert (first["ip"], first["auth"], first["mod"], first["tls"]) == (
                    "10.1.2.3",
                    True,
                    True,
                    False,
                )


UNKNOWN = [
    pytest.param("no-such-session", id="unknown"),
    pytest.param("%2E%2E", id="dotdot-encoded"),
    pytest.param("..%2F..%2Fetc", id="traversal"),
    pytest.param("a%00b", id="nul"),
    pytest.param("x" * 10_000, id="10000-chars"),
    pytest.param("%FF%FE", id="not-utf8"),
]


@pytest.mark.parametrize("segment", UNKNOWN)
async def test_unknown_or_malformed_ids_are_404(daemon: RunningDaemon, segment: str) -> None:
    alice = Someone(daemon, "alice", "general")
    sid = session_id(daemon, "general")
    uid = alice.member.id
    with trio.fail_after(20):
        async with admin(daemon) as client:
            requests = [
                ("GET", f"/sessions/{segment}/"),
                ("DELETE", f"/api/sessions/{segment}"),
                ("PUT", f"/session/{segment}/"),
                ("DELETE", f"/session/{segment}/{uid}/"),
                ("PUT", f"/api/session/{segment}/{uid}"),
                ("DELETE", f"/session/{sid}/{segment}/"),
                ("PUT", f"/session/{sid}/{segment}"),
            ]
            for method, path in requests:
                response = await client.request(method, path, json={"op": True})
                assert response.status_code in (400, 404), (method, path, response.text)
                assert_admin_error(response, response.status_code)
            assert_admin_error(await client.delete(f"/session/{sid}/{uid + 1000}"), 404)
            assert_admin_error(await client.delete(f"/session/{sid}/-1"), 404)
            assert_admin_error(await client.delete(f"/session/{sid}/{'9' * 5000}"), 404)
    assert sid in daemon.ctx.chat.core.sessions
    assert not alice.gone
    assert uid in daemon.ctx.chat.core.sessions[sid].members


async def test_needs_admin_credentials(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with daemon.admin() as client:
            for path in ("/sessions", "/api/users/", "/server"):
                assert_admin_error(await client.get(path), 401)


async def test_shutdown_persistent_session_forgets_its_row(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            daemon = await start_daemon(nursery, settings)
            Someone(daemon, "alice", "kept")
            sid = session_id(daemon, "kept")
            async with admin(daemon) as client:
                put = await client.put(f"/session/{sid}", json={"persistent": True})
                assert put.status_code == 200, put.text
                stored = await daemon.ctx.chat.session_store.save(daemon.ctx.chat.core)
                assert (await client.delete(f"/sessions/{sid}")).status_code == 200
            daemon.daemon.request_stop()
        async with trio.open_nursery() as nursery:
            again = await start_daemon(nursery, settings)
            sessions = dict(again.ctx.chat.core.sessions)
            again.daemon.request_stop()
    assert stored == 0  # saved already by the PUT
    assert sid not in sessions


async def test_reaches_a_real_chat_websocket(daemon: RunningDaemon) -> None:
    """Alert, op, a message to one user, kick and shut down reach a seed 003 client."""
    from trio_websocket import open_websocket_url

    async def frame(ws: Any, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            got: dict[str, Any] = json.loads(await ws.get_message())
            if match(got):
                return got

    with trio.fail_after(20):
        url = f"{daemon.endpoints.ws}/chat/login/wsuser"
        async with open_websocket_url(url) as ws, admin(daemon) as client:
            await frame(ws, lambda f: f["type"] == 2)
            await ws.send_message(json.dumps({"type": 4, "channel": "live"}))
            await frame(ws, lambda f: f["type"] == 4 and f["user"] == "wsuser")
            sid = session_id(daemon, "live")
            uid = (await client.get(f"/sessions/{sid}")).json()["users"][0]["id"]
            await client.put(f"/api/session/{sid}/", json={"alert": "Restart soon"})
            alert = await frame(ws, lambda f: f["type"] == 0 and f["user"] == "SYSTEM")
            assert (alert["message"], alert["level"], alert["dest"]) == (
                "Restart soon",
                "alert",
                "live",
            )
            await client.put(f"/session/{sid}/{uid}", json={"message": "just you"})
            line = await frame(ws, lambda f: f["type"] == 0 and f["user"] == "SYSTEM")
            assert line["message"] == "just you"
            kicked = await client.delete(f"/api/session/{sid}/{uid}/")
            assert kicked.status_code == 200, kicked.text
            leave = await frame(ws, lambda f: f["type"] == 5)
            assert (leave["channel"], leave["reason"]) == ("live", "kicked by an administrator")
            await ws.send_message(json.dumps({"type": 4, "channel": "live"}))
            await frame(ws, lambda f: f["type"] == 4 and f["user"] == "wsuser")
            sid = session_id(daemon, "live")
            assert (await client.delete(f"/sessions/{sid}/")).status_code == 200
            closed = await frame(ws, lambda f: f["type"] == 5)
            assert closed["reason"] == "shut down by an administrator"
