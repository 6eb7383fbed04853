"""``get_logs`` filters (level, topic, user, contains, session, after/before) over a real
WebSocket: the admin API's ``/log/`` search with a level, a topic and a time range,
totals that count what the filters keep, and bad values refused naming the field."""

from __future__ import annotations

from typing import Any

import trio

from leosuite.audit import Actor
from leosuite.store import audit as audit_table
from tests.api.ws.test_sessions import member
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import RunningDaemon
from tests.helpers.ws import WsClient, ws_client


async def messages(client: WsClient, **filters: Any) -> list[str]:
    answer = await client.ok("get_logs", {"ps": 1000, "sort": "asc", **filters})
    found = [e["attributes"]["message"] for e in answer["data"]]
    assert answer["meta"]["total"] == len(found)
    return [m for m in found if m.startswith("probe")]


async def test_filters(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        audit = daemon.ctx.audit
        carol = Actor(id=7, ip="10.0.0.7", name="carol")
        await audit.record("Probe", "probe one 100%", level="debug", session="MyServer")
        await audit.record("probe", "probe two", level="warning", actor=carol)
        await audit.record("Other", "probe three_x", level="error", actor=carol)
        await audit.record("Other", "probe four", session="another")
        stamps = [
            e.timestamp
            for e in await daemon.ctx.db.call(
                lambda conn: audit_table.page(conn, limit=1000, newest_first=False)
            )
        ]
        async with ws_client(daemon, login=True) as admin:
            assert await messages(admin) == [
                "probe one 100%", "probe two", "probe three_x", "probe four",
            ]  # fmt: skip
            assert await messages(admin, level="warning") == ["probe two", "probe three_x"]
            assert await messages(admin, level="error") == ["probe three_x"]
            assert await messages(admin, topic="PROBE") == ["probe one 100%", "probe two"]
            assert await messages(admin, user="CAROL") == ["probe two", "probe three_x"]
            assert await messages(admin, user="7;10.0.0.7") == ["probe two", "probe three_x"]
            assert await messages(admin, contains="100%") == ["probe one 100%"]
            assert await messages(admin, contains="_") == ["probe three_x"]  # literal
            assert await messages(admin, session="myserver") == ["probe one 100%"]
            assert await messages(admin, topic="other", user="carol") == ["probe three_x"]
            # after and before are exclusive; ISO text, numeric text and numbers all work
            second, third = stamps[-3], stamps[-2]
            assert await messages(admin, after=second, before=stamps[-1]) == ["probe three_x"]
            assert await messages(admin, after=str(second), before=str(stamps[-1])) == [
                "probe three_x"
            ]
            assert await messages(admin, after="2999-01-01") == []
            assert await messages(admin, before="2000-01-01T00:00:00Z") == []
            assert "probe two" in await messages(admin, before=third)

            # Paging counts what the filters keep.
            page = await admin.ok("get_logs", {"p": 2, "ps": 1, "user": "carol", "sort": "asc"})
            assert page["meta"] == {"total": 2, "first": 1, "last": 2, "sessions": []}
            assert page["data"][0]["attributes"]["message"] == "probe three_x"

            # A chat session's name stands for its id, also for live matching (meta).
            member(daemon, "alice", "lobby")
            (lobby,) = daemon.ctx.chat.core.sessions.values()
            found = await admin.ok("get_logs", {"session": "#Lobby", "ps": 100})
            assert found["meta"]["sessions"] == ["#Lobby", lobby.id]
            assert found["data"], found
            assert all(e["attributes"]["session"] == lobby.id for e in found["data"])

            # Filters too long to match anything: nothing, not an error.
            for name in ("user", "contains", "session", "topic"):
                empty = await admin.ok("get_logs", {name: "x" * 100_000})
                assert (empty["data"], empty["meta"]["total"]) == ([], 0)


async def test_bad_filters(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        await add_account(daemon, "mod1", "MOD")
        async with ws_client(daemon, login=True) as admin, ws_client(daemon) as mod:
            for content, field in (
                ({"level": "verbose"}, "level"),
                ({"level": "Warn"}, "level"),
                ({"after": "yesterday"}, "after"),
                ({"after": "x" * 100_000}, "after"),
                ({"before": 1e300}, "before"),
                ({"before": "2026-13-45"}, "before"),
                ({"sort": "sideways"}, "sort"),
            ):
                answer = await admin.call("get_logs", content)
                assert answer["status_code"] == 12, (content, answer)
                assert answer["content"] == {"field": field}
                assert len(answer["status_string"]) < 300
            for content in ({"level": 3}, {"after": [1]}, {"topics": "x"}):
                answer = await admin.call("get_logs", content)
                assert answer["status_code"] == 11, (content, answer)
            await mod.login("mod1", PASSWORD)
            answer = await mod.call("get_logs", {"level": "error", "user": "admin"})
            assert answer["status_code"] == 2, answer
