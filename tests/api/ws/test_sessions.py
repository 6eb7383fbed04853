"""``session.*`` calls of the WebSocket API over a real socket: shapes of seed 002,
who may do what, validation, audit entries and immediate persistence."""

from __future__ import annotations

import re
from typing import Any

import trio

from leosuite.community.models import ChatEvent, ChatLimits, Member
from leosuite.store import audit as audit_table
from leosuite.store import chat_sessions
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.chat import keep
from tests.helpers.daemon import RunningDaemon
from tests.helpers.ws import ws_client

SUMMARY_KEYS = {
    "id", "alias", "protocol", "userCount", "founder", "title", "hasPassword", "closed",
    "persistent", "nsfm", "startTime", "size",
}  # fmt: skip
USER_KEYS = {"id", "name", "ip", "auth", "op", "muted", "mod", "tls"}


def member(daemon: RunningDaemon, name: str, channel: str, **kwargs: Any) -> list[ChatEvent]:
    """A member (chat, from 10.1.2.3) that joined ``channel``; returns its inbox."""
    inbox: list[ChatEvent] = []
    core = daemon.ctx.chat.core
    someone = Member(name, ip="10.1.2.3", deliver=keep(inbox), **kwargs)
    core.connect(someone)
    core.join(someone, channel)
    return inbox


async def test_list_and_show(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        await add_account(daemon, "plain")
        async with ws_client(daemon, login=True) as admin, ws_client(daemon) as plain:
            await plain.login("plain", PASSWORD)
            assert await admin.ok("session.list", {}) == []
            member(daemon, "alice", "#general", account_id=1)
            member(daemon, "bob", "general")
            member(daemon, "carol", "Another")
            listed = await plain.ok("session.list", {})
            assert [s["alias"] for s in listed] == ["Another", "general"]
            general = listed[1]
            assert set(general) == SUMMARY_KEYS
            assert general["protocol"] == "leosuite-chat"
            assert (general["userCount"], general["founder"], general["size"]) == (2, "alice", 0)
            assert general["hasPassword"] is False
            assert general["persistent"] is False
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", general["startTime"])

            by_name = await admin.ok("session.show", {"session": "#GENERAL"})
            assert await admin.ok("session.show", {"session": general["id"]}) == by_name
            assert set(by_name) == SUMMARY_KEYS | {
                "maxSize",
                "maxUserCount",
                "preserveChat",
                "users",
            }
            assert by_name["maxSize"] == daemon.ctx.settings.community.session_size_limit
            alice, bob = by_name["users"]
            assert set(alice) == USER_KEYS
            assert (alice["name"], alice["ip"], alice["auth"], alice["op"], alice["tls"]) == (
                "alice", "10.1.2.3", True, True, False,
            )  # fmt: skip
            assert (bob["name"], bob["auth"], bob["op"], bob["muted"]) == (
                "bob",
                False,
                False,
                False,
            )
            # addresses are for moderators only
            seen = await plain.ok("session.show", {"session": "general"})
            assert [u["ip"] for u in seen["users"]] == ["", ""]

            for missing in ("nope", "bad name", "", "x" * 10_000):
                answer = await admin.call("session.show", {"session": missing})
                assert answer["status_code"] == 8, answer  # ENTITY_NOT_FOUND
            answer = await admin.call("session.show", {})
            assert answer["status_code"] == 11  # MODEL_EXCEPTION
            assert answer["content"]["errors"][0]["source"]["pointer"] == "/content/session"
            async with ws_client(daemon) as anonymous:
                assert (await anonymous.call("session.list", {}))["status_code"] == 2


async def test_close_say_set_need_admin_or_mod(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        await add_account(daemon, "plain")
        await add_account(daemon, "moddy", "MOD")
        inbox = member(daemon, "alice", "general")
        async with ws_client(daemon) as plain, ws_client(daemon) as mod:
            await plain.login("plain", PASSWORD)
            await mod.login("moddy", PASSWORD)
            for kind, content in (
                ("session.close", {"session": "general"}),
                ("session.say", {"session": "general", "message": "hi"}),
                ("session.set", {"session": "general", "title": "x"}),
            ):
                answer = await plain.call(kind, content)
                assert answer["status_code"] == 2, answer  # PERMISSION_DENIED
            assert daemon.ctx.chat.core.find("general").title == ""
            assert [e.kind for e in inbox] == ["join"]

            said = await mod.ok("session.say", {"session": "general", "message": "hello all"})
            alerted = await mod.ok(
                "session.say", {"session": "general", "message": "going down", "alert": True}
            )
            assert alerted["id"] == said["id"] + 1
            assert [(e.kind, e.user, e.text, e.level) for e in inbox[1:]] == [
                ("system", "SYSTEM", "hello all", "info"),
                ("system", "SYSTEM", "going down", "alert"),
            ]
            limit = daemon.ctx.settings.community.message_max_bytes
            for bad in ("", "   ", "x" * (limit + 1)):
                answer = await mod.call("session.say", {"session": "general", "message": bad})
                assert answer["status_code"] == 12, answer  # INVALID_ARGUMENT

            closed = await mod.ok("session.close", {"session": "general", "reason": "maintenance"})
            assert daemon.ctx.chat.core.find("general") is None
            assert inbox[-1].kind == "closed"
            assert inbox[-1].reason == "maintenance"
            assert (await mod.call("session.show", {"session": closed["session"]}))[
                "status_code"
            ] == 8

        entries = await daemon.ctx.db.call(
            lambda c: audit_table.page(c, offset=0, limit=50, newest_first=False)
        )
        mine = [(e.topic, e.user_triple.split(";")[2], e.message) for e in entries
                if e.user_triple.endswith(";moddy")]  # fmt: skip
        assert ("Status", "moddy", "info to session general") in mine
        assert ("Status", "moddy", "alert to session general") in mine
        assert ("Status", "moddy", "closed session general: maintenance") in mine


async def test_set(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        member(daemon, "alice", "general")
        core = daemon.ctx.chat.core
        async with ws_client(daemon, login=True) as admin:
            detail = await admin.ok(
                "session.set",
                {"session": "general", "title": "General chat", "closed": True, "nsfm": True,
                 "maxUserCount": 5, "preserveChat": False, "persistent": True},
            )  # fmt: skip
            assert (detail["title"], detail["closed"], detail["nsfm"]) == (
                "General chat",
                True,
                True,
            )
            assert (detail["maxUserCount"], detail["preserveChat"], detail["persistent"]) == (
                5, False, True,
            )  # fmt: skip
            session = core.find("general")
            assert (session.title, session.max_user_count, session.persistent) == (
                "General chat", 5, True,
            )  # fmt: skip
            # written at once, not at the next housekeeping pass
            rows = await daemon.ctx.db.call(chat_sessions.list_all)
            assert [(r.id, r.title, r.closed) for r in rows] == [(session.id, "General chat", True)]

            for bad, field in (
                ({"maxUserCount": 0}, "maxUserCount"),
                ({"title": "t" * 101}, "title"),
                ({"title": "a\nb"}, "title"),
            ):
                answer = await admin.call("session.set", {"session": "general", **bad})
                assert answer["status_code"] == 12, answer
                assert answer["content"] == {"field": field}
            answer = await admin.call("session.set", {"session": "general", "color": "red"})
            assert answer["status_code"] == 11
            answer = await admin.call("session.set", {"session": "general", "closed": "yes"})
            assert answer["status_code"] == 11
            assert session.title == "General chat"  # nothing applied by a refused call

            member(daemon, "bob", "roomy")
            core.find("roomy").room = object()
            answer = await admin.call("session.set", {"session": "roomy", "persistent": True})
            assert answer["status_code"] == 12
            assert "rooms" in answer["status_string"]
            core.update_limits(ChatLimits(enable_persistence=False))
            member(daemon, "carol", "other")
            answer = await admin.call("session.set", {"session": "other", "persistent": True})
            assert answer["status_code"] == 12
            assert "enable_persistence" in answer["status_string"]
            assert not core.find("other").persistent
