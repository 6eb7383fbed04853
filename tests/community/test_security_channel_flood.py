"""Chat channels opened per address, over the real listener: one address cannot take
every place of ``community.session_count_limit`` however many connections it opens,
nor open channels faster than ``community.channel_creations_per_minute``; refusals
are the chat's type -1 error, and other addresses still open channels."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.helpers.chat import chat, chat_daemon, core_of
from tests.helpers.daemon import login
from tests.helpers.sources import chat_from


async def test_one_address_cannot_take_every_channel(tmp_path: Path) -> None:
    async with chat_daemon(tmp_path) as daemon:  # the defaults: 100 channels, 50 an address
        with trio.fail_after(60):
            async with (
                chat_from(daemon, "mallory", "127.0.0.2") as first,
                chat_from(daemon, "mallet", "127.0.0.2") as second,
            ):
                for n in range(50):
                    await first.join(f"#m{n}")
                for n in range(50, 55):
                    await second.send(4, channel=f"#m{n}")
                    assert "open channels from one address" in await second.error()
                assert len(core_of(daemon).sessions) == 50
                # joining an existing channel is no new channel: still allowed
                await second.join("#m0")
                async with chat(daemon, "carol") as carol:  # 127.0.0.1
                    await carol.join("#lobby")
            # the places are given back when the channels close
            async with chat_from(daemon, "mallory", "127.0.0.2") as again:
                await again.join("#fresh")


async def test_channel_creations_are_rate_limited_per_address(tmp_path: Path) -> None:
    async with chat_daemon(tmp_path, community={"channel_creations_per_minute": 3}) as daemon:
        with trio.fail_after(60):
            async with chat_from(daemon, "mallory", "127.0.0.2") as mallory:
                for n in range(3):
                    await mallory.join(f"#m{n}")
                    await mallory.send(5, channel=f"#m{n}")  # closed again at once
                    await mallory.expect(5, channel=f"m{n}")
                await mallory.send(4, channel="#m3")
                assert "new channels a minute" in await mallory.error()
                assert core_of(daemon).find("m3") is None
            async with chat(daemon, "carol") as carol:  # another address
                await carol.join("#lobby")
            async with daemon.http() as http:
                token = await login(http)
            async with chat(daemon, "admin", token) as admin:  # a moderator is not counted
                for n in range(5):
                    await admin.join(f"#a{n}")
