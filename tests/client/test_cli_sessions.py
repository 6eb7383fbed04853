"""``leosuite session ...`` as subprocesses against the in-process daemon (over its
WebSocket API), with HOME in tmp_path so the saved token is isolated."""

from __future__ import annotations

from pathlib import Path

import trio

from leosuite.community.models import ChatEvent, Member
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.chat import keep
from tests.helpers.cli import Cli
from tests.helpers.daemon import RunningDaemon


async def test_session_commands(daemon: RunningDaemon, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    core = daemon.ctx.chat.core
    with trio.fail_after(90):
        not_yet = await cli.run("session", "list", expect=1)
        assert b"not logged in" in not_yet.stderr
        await cli.login(daemon.endpoints.http)
        assert (await cli.run("session", "list")).stdout == b"(no sessions)\n"

        inbox: list[ChatEvent] = []
        alice = Member("alice", ip="10.9.8.7", account_id=1, deliver=keep(inbox))
        core.connect(alice)
        general, _ = core.join(alice, "general")
        general.title = "All things"

        listed = await cli.json("session", "list")
        assert [(s["alias"], s["userCount"], s["id"]) for s in listed] == [
            ("general", 1, general.id)
        ]
        text = (await cli.run("session", "list")).stdout.decode()
        assert "general" in text
        assert general.id in text
        assert "All things" in text

        shown = await cli.json("session", "show", "#general")
        assert [(u["name"], u["ip"], u["op"]) for u in shown["users"]] == [
            ("alice", "10.9.8.7", True)
        ]
        text = (await cli.run("session", "show", general.id)).stdout.decode()
        assert "All things" in text
        assert "alice" in text
        assert "10.9.8.7" in text

        said = await cli.json("session", "say", "general", "server", "restarts", "--alert")
        assert said["session"] == general.id
        assert (inbox[-1].kind, inbox[-1].text, inbox[-1].level) == (
            "system",
            "server restarts",
            "alert",
        )
        out = await cli.run("session", "say", "general", "hello")
        assert out.stdout.decode().startswith("sent to general")
        assert (inbox[-1].text, inbox[-1].level) == ("hello", "info")

        changed = await cli.json(
            "session", "set", "general", "--persistent", "on", "--max-users", "3", "--nsfm", "yes"
        )
        assert (changed["persistent"], changed["maxUserCount"], changed["nsfm"]) == (True, 3, True)
        assert general.persistent
        assert general.max_user_count == 3
        text = (await cli.run("session", "set", "general", "--closed", "on")).stdout.decode()
        assert "closed       yes" in text
        assert general.closed
        nothing = await cli.run("session", "set", "general", expect=1)
        assert b"nothing to change" in nothing.stderr
        wrong = await cli.run("session", "set", "general", "--nsfm", "maybe", expect=2)
        assert b"not on or off" in wrong.stderr
        too_many = await cli.run("session", "set", "general", "--max-users", "0", expect=1)
        assert b"maxUserCount" in too_many.stderr

        missing = await cli.run("session", "show", "nope", expect=1)
        assert b"no session 'nope'" in missing.stderr

        # an account without ADMIN or MOD may look, not touch
        await add_account(daemon, "plain")
        other = Cli(tmp_path / "other")
        await other.run(
            "login",
            "--url",
            daemon.endpoints.http,
            "-u",
            "plain",
            "--password-stdin",
            stdin=PASSWORD.encode(),
        )
        assert [s["id"] for s in await other.json("session", "list")] == [general.id]
        refused = await other.run("session", "close", "general", expect=1)
        assert b"ADMIN or MOD" in refused.stderr
        assert core.find("general") is general

        closed = await cli.run("session", "close", "general", "--reason", "moving on")
        assert closed.stdout == b"closed general\n"
        assert core.find("general") is None
        assert (inbox[-1].kind, inbox[-1].reason) == ("closed", "moving on")
        assert (await cli.json("session", "list")) == []

        unreachable = await cli.run("session", "list", "--ws-url", "ws://127.0.0.1:1/", expect=1)
        assert b"is 'leosuite serve' running there?" in unreachable.stderr
