"""Seed 004 end to end, over real HTTP against the in-process daemon: the 15-step flow
of a room (create, join, invite, second user joins, messages both ways, direct message,
poll, kick, ban, leave, close), with every request shaped as the origin's client
sends it (``payload`` a JSON-encoded string) and every SYSTEM message decrypted with
the room's ``syskey``; one of them by real ``gpg --decrypt``."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from leosuite.community.crypto import encrypt_payload
from leosuite.settings import Settings
from tests.helpers.daemon import RunningDaemon, make_settings
from tests.helpers.rooms import ROOM_PASS, RoomClient


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", community={"room_poll_max_wait": 1.0})


def gpg_decrypt(tmp_path: Path, passphrase: str, payload: str) -> dict[str, Any]:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        done = subprocess.run(
            ["gpg", "--batch", "--no-tty", "--pinentry-mode", "loopback", "--no-symkey-cache",
             "--passphrase-fd", "0", "--decrypt"],
            input=passphrase.encode() + b"\n" + base64.b64decode(payload),
            capture_output=True, env=env, check=False, timeout=60,
        )  # fmt: skip
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    decoded: dict[str, Any] = json.loads(done.stdout)
    return decoded


async def test_the_fifteen_steps_of_a_room(daemon: RunningDaemon, tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with daemon.http() as http:
            alice = RoomClient(http, "den", "alice")
            bob = RoomClient(http, "den", "bob")
            carol = RoomClient(http, "den", "carol")

            # 1. createRoom: the owner and their password
            assert await alice.create("alice-password") == {"status": "ok", "name": "den"}

            # 2. joinRoom: last, session, syskey
            joined = await alice.join("alice-password")
            assert joined["last"] == 0
            assert joined["syskey"]
            assert joined["session"]

            # 3. pollMsg: SYSTEM says alice joined, encrypted with the syskey
            (first,) = await alice.poll()
            assert first[3] == "SYSTEM"
            assert first[4] == "0"
            assert alice.read(first) == ("SYSTEM", "0", "sysinfo", "User alice joined the room")
            if shutil.which("gpg"):  # what any OpenPGP tool reads, not only our decrypter
                assert gpg_decrypt(tmp_path, alice.syskey, first[1]) == {
                    "user": "SYSTEM", "text": "User alice joined the room", "verb": "sysinfo"
                }  # fmt: skip

            # 4. inviteUser: alice invites bob and sets his password
            assert await alice.ok("inviteUser", invite="bob", **{"pass": "bob-password"}) == {
                "status": "ok"
            }
            assert await alice.read_new() == [
                ("SYSTEM", "0", "sysinfo", "User alice invited bob to the room")
            ]

            # 5. bob joins: he sees from his own join on, not what came before
            await bob.join("bob-password")
            assert bob.syskey == alice.syskey
            assert await bob.read_new() == [("SYSTEM", "0", "sysinfo", "User bob joined the room")]

            # 6. messages both ways
            await alice.say("hello bob")
            await bob.say("waves", verb="do")
            assert await alice.read_new() == [
                ("SYSTEM", "0", "sysinfo", "User bob joined the room"),
                ("alice", "0", "say", "hello bob"),
                ("bob", "0", "do", "waves"),
            ]
            assert await bob.read_new() == [
                ("alice", "0", "say", "hello bob"),
                ("bob", "0", "do", "waves"),
            ]

            # 7. a direct message reaches its recipient only (touser is the name)
            await bob.tell("alice", "psst")
            assert await alice.read_new() == [("bob", "alice", "say", "psst")]
            assert await bob.poll() == []

            # 8. poll with nothing new: unchanged, last echoed
            assert await alice.ok("pollMsg", mylast=alice.last) == {
                "status": "unchanged", "last": alice.last
            }  # fmt: skip

            # 9. carol is invited by bob (any member may invite) and joins
            await bob.ok("inviteUser", invite="carol", **{"pass": "carol-password"})
            await carol.join("carol-password")

            # 10. kickUser (owner only): carol's next poll says so, once; then 403
            assert await alice.ok("kickUser", kick="carol") == {"status": "ok"}
            assert await carol.ok("pollMsg", mylast=carol.last) == {
                "status": "errmessage", "text": "You have been kicked from the room"
            }  # fmt: skip
            await carol.error("pollMsg", 403, mylast=carol.last)
            news = await bob.read_new()
            assert news[-1] == ("SYSTEM", "0", "syswarn", "User alice kicked carol from the room")

            # 11. a kicked user may come back; banUser removes her for good
            await carol.join("carol-password")
            assert await alice.ok("banUser", kick="carol") == {"status": "ok"}
            assert (await carol.ok("pollMsg", mylast=carol.last))["status"] == "errmessage"
            await carol.error("joinRoom", 403, user="carol", userpass="carol-password")
            news = await alice.read_new()
            assert news[-1] == ("SYSTEM", "0", "syswarn", "User alice banned carol from the room")

            # 12. leaveRoom: the others are told; the key is dead
            assert await bob.ok("leaveRoom") == {"status": "ok"}
            await bob.error("pollMsg", 403, mylast=bob.last)
            assert await alice.read_new() == [("SYSTEM", "0", "sysinfo", "User bob left the room")]

            # 13. bob comes back and polls again from the id joinRoom gave him
            await bob.join("bob-password")
            assert await bob.read_new() == [("SYSTEM", "0", "sysinfo", "User bob joined the room")]

            # 14. closeRoom (owner): bob is told once, alice's own key is dead at once
            assert await alice.ok("closeRoom") == {"status": "ok"}
            await alice.error("pollMsg", 403, mylast=alice.last)
            assert await bob.ok("pollMsg", mylast=bob.last) == {
                "status": "errmessage", "text": "The room has been closed by its owner"
            }  # fmt: skip
            await bob.error("sendMsg", 403, msg=encrypt_payload(ROOM_PASS, {"text": "x"}))

            # 15. the room, its users and its messages are gone
            await alice.error("joinRoom", 403, user="alice", userpass="alice-password")
            assert daemon.ctx.chat.core.find("den") is None
            assert await alice.create("alice-password") == {"status": "ok", "name": "den"}
            await alice.join("alice-password")
            assert [alice.read(m)[3] for m in await alice.poll()] == ["User alice joined the room"]
