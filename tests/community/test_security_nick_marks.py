"""Look-alike nicks made with combining marks and blanks, and what a guest's handshake
costs, over the real listener: marks never tell a nick from an account's name or
SYSTEM, a character that draws nothing is refused, names in other scripts still log
in, and with ten thousand accounts a guest's handshake does not stall the daemon."""

from __future__ import annotations

import sqlite3

import pytest
import trio

from leosuite.api.ws import chat_login
from leosuite.store import accounts
from tests.helpers.chat import chat, refused_login
from tests.helpers.daemon import RunningDaemon

DOT_ABOVE, LONG_SOLIDUS, LOW_LINE = "\u0307", "\u0338", "\u0332"
TSHEG, TIBETAN_MARK, NULL_NOTEHEAD = "\u0f0b", "\u0f37", "\U0001d159"


async def test_combining_marks_do_not_make_a_nick_of_its_own(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):  # the account "admin" exists
        for nick in (
            f"admin{DOT_ABOVE}",
            "admi\u1e45",  # n with a dot above, precomposed
            f"admin{LONG_SOLIDUS}",
            f"a{LONG_SOLIDUS}dmin",
            f"system{LOW_LINE}",
            f"admin{TSHEG}",
            f"admin{TIBETAN_MARK}",
        ):
            assert "reserved" in await refused_login(daemon, nick), ascii(nick)
        for nick in (f"admin{NULL_NOTEHEAD}", f"{DOT_ABOVE}bob", f"x{NULL_NOTEHEAD}"):
            assert "invisible" in await refused_login(daemon, nick), ascii(nick)
        # names in other scripts, with marks of their own, are names
        for nick in ("\u0930\u093e\u092e", "Nguy\u1ec5n", "Jos\u00e9"):  # राम, Nguyễn, José
            async with chat(daemon, nick) as guest:
                assert guest.nick == nick
        async with chat(daemon, "bob") as bob:
            await bob.send(6)
            await bob.expect(6)
            assert "taken" in await refused_login(daemon, f"bo{DOT_ABOVE}b")


async def test_a_guest_handshake_does_not_scan_every_account(
    daemon: RunningDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 10 000 accounts, a guest handshake looks its nick up in an index: it computes
    the look-alike keys of a handful of names, not of every account (which stalled the
    daemon for about half a second a handshake)."""

    def add_many(conn: sqlite3.Connection) -> None:
        for n in range(10_000):
            accounts.create(conn, username=f"user{n}", password_hash="x", created_at=0.0)

    await daemon.ctx.db.call(add_many)
    with trio.fail_after(60):
        async with chat(daemon, "first"):  # the account names are indexed
            pass
        keyed: list[str] = []
        real_name_keys = chat_login.name_keys

        def counting(name: str) -> frozenset[str]:
            keyed.append(name)
            return real_name_keys(name)

        monkeypatch.setattr(chat_login, "name_keys", counting)
        for n in range(5):
            async with chat(daemon, f"guest{n}"):
                pass
        assert "reserved" in await refused_login(daemon, "USER42")
        assert 0 < len(keyed) <= 20, len(keyed)
        # an account added later is reserved at once
        await daemon.ctx.db.call(
            lambda conn: accounts.create(conn, username="zed", password_hash="x", created_at=0.0)
        )
        assert "reserved" in await refused_login(daemon, "ZED")
