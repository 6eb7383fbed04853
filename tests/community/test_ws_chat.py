"""The WebSocket chat (seed 003) over real sockets against the in-process daemon:
login rules, every message type, the gaps the seed leaves closed, moderation
commands, rooms seen from the chat, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import trio
from wsproto.events import TextMessage

from leosuite.audit import AuditEvent
from leosuite.community.models import Member
from leosuite.store import audit as audit_table
from tests.helpers.chat import (
    Chat,
    chat,
    chat_daemon,
    chat_url,
    core_of,
    refused_at,
    refused_login,
)
from tests.helpers.daemon import RunningDaemon, login
from tests.helpers.ws import RawClient, client_socket_leak_tolerated


async def audit_topics(daemon: RunningDaemon) -> list[tuple[str, str]]:
    entries = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, newest_first=False, limit=1000)
    )
    return [(e.topic, e.message) for e in entries]


async def audited(entries: trio.MemoryReceiveChannel[AuditEvent], topics: set[str]) -> None:
    """Wait until the audit log has written an entry of each topic (the community's
    records reach it through a drain task)."""
    missing = set(topics)
    async for entry in entries:
        missing.discard(entry.topic)
        if not missing:
            return


async def test_login_broadcast_and_welcome(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with (
            chat_daemon(tmp_path, community={"welcome_message": "Be nice."}) as daemon,
            chat(daemon, "alice") as alice,
        ):
            welcome = await alice.next()
            assert welcome == {
                "type": 0, "dest": "", "user": "SYSTEM", "message": "Be nice.", "level": "info",
                "time": welcome["time"],
            }  # fmt: skip
            async with chat(
                daemon, "bob"
            ) as bob:  # a joining member is announced to the others (type 2)
                assert (await bob.next())["message"] == "Be nice."
                assert (await alice.expect(2))["user"] == "bob"
            assert await alice.expect(3, user="bob")


async def test_no_welcome_when_unset(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with chat(daemon, "alice") as alice:
            await alice.send(6)
            assert (await alice.next())["type"] == 6  # nothing came before the answer


async def test_bad_nicks_are_refused_then_closed(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        for nick in ["with space", "a/b", "x" * 33, "", "SYSTEM", "tab\there"]:
            assert "nick" in (await refused_login(daemon, nick)) or nick == "SYSTEM", nick
        assert "reserved" in await refused_login(daemon, "system")
        # a raw "/" in the path is part of the nick too
        assert "nick" in await refused_at(daemon.endpoints.ws + "/chat/login/a/b")
        assert "UTF-8" in await refused_at(daemon.endpoints.ws + "/chat/login/%ff")
        ok = "x" * 32
        async with chat(daemon, ok) as first:
            assert "taken" in await refused_login(daemon, ok.upper())
            await first.send(6)
            assert (await first.expect(6))["users"] == [ok]  # the first one is unharmed
        assert not core_of(daemon).nick_taken("with space")


async def test_account_nick_needs_its_token(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        assert "token" in await refused_login(daemon, "admin")
        assert "token" in await refused_login(daemon, "ADMIN")
        assert "token" in await refused_login(daemon, "admin", "0" * 32)
        async with daemon.http() as http:
            token = await login(http)
        assert "another account" in await refused_login(daemon, "mallory", token)
        async with chat(daemon, "Admin", token) as admin:
            assert admin.login["user"] == "admin"  # the account's spelling
            (member,) = core_of(daemon).chat_members()
            assert member.auth
            assert member.mod  # ADMIN accounts moderate everywhere


async def test_guests_refused_when_not_allowed(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with chat_daemon(tmp_path, community={"allow_guests": False}) as daemon:
            assert "guests" in await refused_login(daemon, "guest")
            async with daemon.http() as http:
                token = await login(http)
            async with chat(daemon, "admin", token) as admin:
                await admin.join("#lobby")


async def test_channel_flow_strips_sharps_everywhere(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with chat(daemon, "alice") as alice, chat(daemon, "bob") as bob:
            joined = await alice.join("##django")
            assert set(joined) == {"type", "channel", "user", "time"}
            await bob.send(4, channel="django")
            for client in (alice, bob):  # the joiner gets its own type 4 too
                assert (await client.expect(4, user="bob"))["channel"] == "django"
            await alice.send(0, dest="#django", message="hi")
            for client in (alice, bob):
                frame = await client.expect(0, user="alice")
                assert frame == {
                    "type": 0, "dest": "django", "message": "hi", "user": "alice",
                    "time": frame["time"],
                }  # fmt: skip
            await bob.send(6, channel="#django")
            assert await bob.expect(6, channel="django", users=["alice", "bob"])
            await bob.send(5, channel="#django")
            for client in (alice, bob):  # the leaver is told too
                assert (await client.expect(5, user="bob"))["channel"] == "django"
            await bob.send(5, channel="#django")
            assert "not in django" in await bob.error()
            await bob.send(6)
            assert (await bob.expect(6))["users"] == ["alice", "bob"]
            await bob.send(6, channel="nowhere")
            assert "no channel" in await bob.error()


def _frame(client: RawClient, **fields: object) -> bytes:
    """The bytes of one chat frame from a raw client (to send several in one write)."""
    return client.proto.send(TextMessage(data=json.dumps(fields)))


async def test_a_burst_in_one_write_reaches_every_member_whole_and_in_order(
    daemon: RunningDaemon,
) -> None:
    """A join and forty messages in one TCP write (more than a connection handles
    before it reads again): every member, the sender too, gets them all, in order, each
    frame whole, and a message sent after them still arrives."""
    count = 40
    with trio.fail_after(20):
        async with chat(daemon, "alice") as alice, chat(daemon, "bob") as bob:
            await alice.join("burst")
            await bob.join("burst")
            async with RawClient.open(chat_url(daemon, "carol")) as carol:
                burst = [_frame(carol, type=4, channel="burst")]
                burst += [
                    _frame(carol, type=0, dest="#burst", message=f"m{n}") for n in range(count)
                ]
                await carol.stream.send_all(b"".join(burst))
                for client in (alice, bob):
                    for n in range(count):
                        said = await client.expect(0, user="carol")
                        assert said["message"] == f"m{n}"
                while sum(m["type"] == 0 for m in carol.messages()) < count:
                    assert await carol.read_some()
                own = [m["message"] for m in carol.messages() if m["type"] == 0]
                assert own == [f"m{n}" for n in range(count)]
                await carol.stream.send_all(_frame(carol, type=0, dest="#burst", message="after"))
                for client in (alice, bob):
                    assert (await client.expect(0, user="carol"))["message"] == "after"


async def test_a_logout_at_the_end_of_a_burst_still_delivers_what_came_before(
    daemon: RunningDaemon,
) -> None:
    """A join, a message and a logout in one write: the sender gets its own message
    before the close, the others get the message and then the logout."""
    with trio.fail_after(20):
        async with chat(daemon, "alice") as alice:
            await alice.join("bye")
            async with RawClient.open(chat_url(daemon, "carol")) as carol:
                await carol.stream.send_all(
                    _frame(carol, type=4, channel="bye")
                    + _frame(carol, type=0, dest="#bye", message="bye all")
                    + _frame(carol, type=3)
                )
                await carol.read_until_eof()
                said = [m["message"] for m in carol.messages() if m["type"] == 0]
                assert said == ["bye all"]
                assert carol.close_code() == 1000
            assert (await alice.expect(0, user="carol"))["message"] == "bye all"
            await alice.expect(3, user="carol")


async def test_nothing_after_a_logout_in_the_same_write_is_handled(
    daemon: RunningDaemon,
) -> None:
    """A bad frame (its audit record waits, so the rest is read meanwhile), a logout, a
    join and a message in one write: the logout ends the connection and what follows it
    is dropped; no member is left in a channel after it logged out."""
    with trio.fail_after(20):
        async with chat(daemon, "alice") as alice:
            await alice.join("ghost")
            async with RawClient.open(chat_url(daemon, "carol")) as carol:
                await carol.stream.send_all(
                    carol.proto.send(TextMessage(data="not json"))
                    + _frame(carol, type=3)
                    + _frame(carol, type=4, channel="ghost")
                    + _frame(carol, type=0, dest="#ghost", message="after the logout")
                )
                await carol.read_until_eof()
                assert carol.close_code() == 1000
            await alice.expect(3, user="carol")
            await alice.send(6, channel="ghost")
            assert (await alice.expect(6))["users"] == ["alice"]
            assert not [f for f in alice.seen if f.get("user") == "carol" and f["type"] in (0, 4)]
            core = core_of(daemon)
            session = core.find("ghost")
            assert session is not None
            assert [m.name for m in session.members.values()] == ["alice"]


async def test_a_burst_never_drops_a_member_that_reads(tmp_path: Path) -> None:
    """With a queue of four, a logout from six shared channels sends a reading member
    seven frames in one burst: it gets them all and stays connected."""
    channels = [f"c{i}" for i in range(6)]

    async def body(daemon: RunningDaemon) -> None:
        async with chat(daemon, "alice") as alice:
            async with chat(daemon, "carol") as carol:
                for channel in channels:
                    await alice.join(channel)
                    await carol.join(channel)
                await carol.send(3)
                assert await carol.closed() == 1000
                await alice.expect(3, user="carol")
            left = {f["channel"] for f in alice.seen if f["type"] == 5 and f["user"] == "carol"}
            assert left == set(channels)
            await alice.send(6)
            assert (await alice.expect(6))["users"] == ["alice"]

    with trio.fail_after(20):
        async with chat_daemon(tmp_path, community={"chat_queue_size": 4}) as daemon:
            with client_socket_leak_tolerated():  # carol's, closed by the logout
                await body(daemon)


async def test_message_rules(tmp_path: Path) -> None:
    with trio.fail_after(20):
        settings = {"message_max_bytes": 1000}
        async with (
            chat_daemon(tmp_path, community=settings) as daemon,
            daemon.ctx.audit.subscribe() as entries,
            chat(daemon, "alice") as alice,
            chat(daemon, "bob") as bob,
        ):
            await bob.send(0, dest="#nowhere", message="hello?")
            assert "join nowhere" in await bob.error()
            await alice.join("#x")
            await bob.send(0, dest="#x", message="let me in")  # exists, not joined
            assert "join x" in await bob.error()
            await bob.join("x")
            await bob.send(0, dest="x", message="y" * 1001)  # over the limit, under ws's
            error = await bob.expect(-1)
            assert "1000 bytes" in error["message"]
            assert error["request"] == 0
            await bob.send(0, dest="x", message="")
            assert "empty" in await bob.error()
            await bob.send(0, dest="x", message="//not a command")
            assert (await alice.expect(0, user="bob"))["message"] == "/not a command"
            await bob.send(0, dest="x", message="psst", to="alice")  # a direct message
            assert (await alice.expect(0, user="bob"))["to"] == "alice"
            assert (await bob.expect(0, user="bob", to="alice"))["message"] == "psst"
            await bob.send(0, dest="x", message="psst", to="nobody")
            assert "nobody" in await bob.error()
            await audited(entries, {"RuleBreak", "BadData", "Join"})


async def test_bad_frames_get_errors_and_the_connection_stays(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with chat(daemon, "alice") as alice:
            bad: list[str | bytes] = [
                "not json",
                "[1, 2]",
                json.dumps({"dest": "x", "message": "no type"}),
                json.dumps({"type": 9}),
                json.dumps({"type": "0", "dest": "x", "message": "m"}),
                json.dumps({"type": True}),
                json.dumps({"type": 4}),
                json.dumps({"type": 4, "channel": 5}),
                json.dumps({"type": 4, "channel": "a b"}),
                "[" * 5000 + "]" * 5000,
                b"\xff\xfe",
            ]
            messages = []
            for frame in bad:
                await alice.ws.send_message(frame)
                messages.append(await alice.error())
            assert messages[0] == "not a JSON message"
            assert "no 'type'" in messages[2]
            assert messages[3] == "unknown message type 9"
            assert "integer" in messages[4]
            assert "channel" in messages[6]
            await alice.send(6)
            assert (await alice.expect(6))["users"] == ["alice"]
            bad_data = [m for t, m in await audit_topics(daemon) if t == "BadData"]
            assert 1 <= len(bad_data) <= 10  # audited, at most 10 a minute per connection
            assert "not a JSON message" in bad_data[0]


async def test_logout_tells_everyone_and_closes(daemon: RunningDaemon) -> None:
    async def body() -> None:
        async with chat(daemon, "alice") as alice, chat(daemon, "bob") as bob:
            await alice.join("#x")
            await bob.join("#x")
            await bob.send(3)
            assert await bob.closed() == 1000
            assert (await alice.expect(5, user="bob"))["channel"] == "x"
            logout = await alice.expect(3, user="bob")
            assert set(logout) == {"type", "user", "time"}
            assert not core_of(daemon).nick_taken("bob")
            async with chat(daemon, "bob"):  # the nick is free again
                pass

    with trio.fail_after(20), client_socket_leak_tolerated():
        await body()


async def test_history_replay_on_join(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with (
            chat_daemon(tmp_path, community={"history_replay": 2}) as daemon,
            chat(daemon, "alice") as alice,
            chat(daemon, "bob") as bob,
        ):
            await alice.join("#h")
            for text in ["one", "two", "three"]:
                await alice.send(0, dest="h", message=text)
                await alice.expect(0, message=text)
            await bob.send(4, channel="h")
            assert (await bob.next())["type"] == 4  # the channel first, then its history
            replayed = [await bob.next(), await bob.next()]
            assert [(f["message"], f["history"]) for f in replayed] == [
                ("two", True),
                ("three", True),
            ]
            await bob.join("h")  # joined already: only the echo, no replay again
            await alice.send(0, dest="h", message="live")
            assert "history" not in await bob.expect(0, message="live")


async def test_moderation_commands_checked_against_rights(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with (
            daemon.ctx.audit.subscribe() as entries,
            chat(daemon, "alice") as alice,
            chat(daemon, "bob") as bob,
            chat(daemon, "carol") as carol,
        ):
            for client in (alice, bob, carol):  # alice first: the founder is an operator
                await client.join("#mod")

            async def command(who: Chat, line: str) -> None:
                await who.send(0, dest="#mod", message=line)

            await command(bob, "/kick carol")
            assert "operators" in await bob.error()
            await command(alice, "/mute bob")
            notice = await carol.expect(0, user="SYSTEM", notice="mute")
            assert notice["target"] == "bob"
            assert notice["dest"] == "mod"
            await command(bob, "hello?")
            assert "muted" in await bob.error()
            await command(alice, "/unmute bob")
            await carol.expect(0, notice="unmute")
            await command(alice, "/kick bob spamming")
            kicked = await bob.expect(5, user="bob")
            assert kicked["reason"] == "kicked by alice: spamming"
            assert (await carol.expect(5, user="bob"))["reason"] == kicked["reason"]
            await command(alice, "/ban bob")
            await alice.expect(0, user="SYSTEM", message="bob is banned")
            await bob.send(4, channel="mod")
            assert "banned" in await bob.error()
            await command(alice, "/unban bob")
            await alice.expect(0, user="SYSTEM", message="bob is no longer banned")
            await bob.join("#mod")
            await command(alice, "/op bob")
            await carol.expect(0, notice="op", target="bob")
            await command(bob, "/kick carol")
            await carol.expect(5, user="carol")
            await command(bob, "/deop alice")
            await command(alice, "/kick bob")
            assert "operators" in await alice.error()
            await command(alice, "/frobnicate bob")
            assert "unknown command" in await alice.error()
            await command(bob, "/kick")
            assert "usage" in await bob.error()
            await command(bob, "/kick nobody")
            assert "nobody" in await bob.error()
            await command(bob, "/help")
            assert await bob.next(lambda f: "/kick nick" in f.get("message", ""))
            async with daemon.http() as http:
                token = await login(http)
            async with chat(daemon, "admin", token) as admin:  # a moderator, not a member
                await admin.send(0, dest="mod", message="/kick bob")
                await alice.expect(5, user="bob")
            await audited(entries, {"Kick", "Ban", "Unban", "Mute", "Op", "Deop"})


async def test_operator_rights_of_a_guest_do_not_pass_to_its_nick(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with chat(daemon, "bob") as bob, chat(daemon, "carol") as carol:
            async with chat(daemon, "alice") as alice:
                await alice.join("#r")
                await bob.join("#r")
                await carol.join("#r")
                await alice.send(0, dest="r", message="/op carol")
                await bob.expect(0, notice="op", target="carol")
            async with chat(daemon, "alice") as impostor:  # a new guest with the old nick
                await impostor.join("#r")
                await impostor.send(0, dest="r", message="/kick bob")
                assert "operators" in await impostor.error()
                await carol.send(0, dest="r", message="/kick impostor")  # carol still is one
                assert "no user" in await carol.error()


async def test_registration(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with chat_daemon(tmp_path) as daemon, chat(daemon, "dora") as dora:
            await dora.send(1, password="long-password-1")
            assert "disabled" in await dora.error()
        async with (
            chat_daemon(tmp_path / "on", community={"registration": True}) as daemon,
            chat(daemon, "dora") as dora,
        ):
            await dora.send(1, password="short")
            assert "at least" in await dora.error()
            await dora.send(1, user="someone", password="long-password-1")
            assert "your own nick" in await dora.error()
            await dora.send(1, user="dora", password="long-password-1")
            assert await dora.expect(1, user="dora")
            assert core_of(daemon).chat_members()[0].auth
            await dora.send(1, password="long-password-1")
            assert "already" in await dora.error()
        async with chat_daemon(tmp_path / "on", community={"registration": True}) as daemon:
            assert "token" in await refused_login(daemon, "dora")  # an account's name now
            async with daemon.http() as http:
                token = await login(http, "dora", "long-password-1")
            async with chat(daemon, "dora", token):
                pass


async def test_room_messages_reach_chat_members_as_encrypted(daemon: RunningDaemon) -> None:
    """Cross-protocol: a room user's message (an opaque payload) in a channel."""
    with trio.fail_after(20):
        core = core_of(daemon)
        async with chat(daemon, "alice") as alice:
            await alice.join("#shared")
            roomie = Member("roomie", kind="room")
            core.connect(roomie)
            session, created = core.join(roomie, "shared")
            assert not created
            assert (await alice.expect(4, user="roomie"))["channel"] == "shared"
            core.say(roomie, session, payload="b64-ciphertext==")
            frame = await alice.expect(0, user="roomie")
            assert frame["message"] == "[encrypted room message]"
            assert frame["encrypted"] == "b64-ciphertext=="
            assert frame["dest"] == "shared"
            core.system(session, "the room closes soon", "warn")
            system = await alice.expect(0, user="SYSTEM")
            assert (system["message"], system["level"]) == ("the room closes soon", "warn")
            await alice.send(6)
            assert (await alice.expect(6))["users"] == ["alice"]  # room users are not nicks
            core.close(session, "closed by its owner")
            closed = await alice.expect(5, channel="shared")
            assert closed["user"] == "alice"
            assert closed["closed"] is True
