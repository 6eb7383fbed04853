"""Chat nicks (issue 13, items 12 and 13), over the real listener: look-alike and
invisible nicks are refused, a guest taking a name reserved for an account or SYSTEM
gets one answer that does not say which it is, and guest logins are limited per
address, while plain nicks and accounts with their tokens log in as before."""

from __future__ import annotations

from pathlib import Path

import trio

from leosuite.community.models import RESERVED_NICK
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.chat import chat, chat_daemon, refused_login
from tests.helpers.daemon import RunningDaemon, login
from tests.helpers.rooms import RoomClient

CYRILLIC_DZE, CYRILLIC_A, CYRILLIC_O = "\u0405", "\u0430", "\u043e"
HANGUL_FILLER, BRAILLE_BLANK = "\u3164", "\u2800"


async def test_look_alike_and_invisible_nicks_are_refused(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        for nick in (
            f"{CYRILLIC_DZE}YSTEM",
            "\uff33\uff39\uff33\uff34\uff25\uff2d",
            "\U0001d412ystem",
        ):
            assert "reserved" in await refused_login(daemon, nick), nick
        assert "reserved" in await refused_login(daemon, f"{CYRILLIC_A}dmin")  # the account's
        for nick in (
            f"SYSTEM{HANGUL_FILLER}",
            f"admin{BRAILLE_BLANK}",
            "a\u200bb",  # a zero-width space
            "x\u202ey",  # a right-to-left override
            "e\ufe0f",  # a variation selector
        ):
            assert "invisible" in await refused_login(daemon, nick), nick
        async with chat(daemon, "bob") as bob:
            for nick in ("BOB", "b0b", f"b{CYRILLIC_O}b"):
                assert "taken" in await refused_login(daemon, nick), nick
            async with chat(daemon, "bobby") as bobby:  # a nick of its own is fine
                await bobby.send(6)
                assert (await bobby.expect(6))["users"] == ["bob", "bobby"]
            await bob.send(6)
            assert (await bob.expect(6))["users"] == ["bob"]
        # room users' names follow the nick rules
        async with daemon.http() as http:
            owner = RoomClient(http, "den", "alice")
            await owner.create("alice-password-1")
            await owner.join("alice-password-1")
            for name in (f"{CYRILLIC_DZE}YSTEM", f"carl{HANGUL_FILLER}"):
                await owner.error("inviteUser", 400, invite=name, **{"pass": "some-password-1"})
            await owner.ok("inviteUser", invite="carl", **{"pass": "some-password-1"})


async def test_a_reserved_nick_gets_one_answer_whether_or_not_an_account_has_it(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(30):
        await add_account(daemon, "carol")
        names = ("carol", "CAROL", f"c{CYRILLIC_A}rol", "SYSTEM", f"{CYRILLIC_DZE}YSTEM")
        for nick in names:  # "carol" is an account; the look-alikes and SYSTEM are not
            assert await refused_login(daemon, nick) == RESERVED_NICK.format(nick=nick)
        async with daemon.http() as http:
            token = await login(http, "carol", PASSWORD)
        async with chat(daemon, "carol", token) as carol:  # its token logs it in
            assert carol.nick == "carol"


async def test_guest_logins_are_limited_per_address(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with chat_daemon(tmp_path, community={"guest_logins_per_minute": 3}) as daemon:
            for nick in ("g1", "g2", "g3"):
                async with chat(daemon, nick):
                    pass
            assert "too many guest logins" in await refused_login(daemon, "g4")
            async with daemon.http() as http:
                token = await login(http)
            async with chat(daemon, "admin", token) as admin:  # an account is no guest
                await admin.join("#lobby")
