"""The admin setting ``clientTimeout`` drops a chat connection that answers nothing,
not even pings, within that time; one that answers pings stays."""

from __future__ import annotations

import msgspec
import trio

from tests.helpers.daemon import RunningDaemon
from tests.helpers.ws import RawClient


def set_client_timeout(daemon: RunningDaemon, seconds: float) -> None:
    chat = daemon.ctx.chat
    chat.set_server_settings(msgspec.structs.replace(chat.server_settings, client_timeout=seconds))


async def test_silent_chat_connection_is_dropped_within_client_timeout(
    daemon: RunningDaemon,
) -> None:
    set_client_timeout(daemon, 0.6)  # ws.ping_interval stays at its default of 20 s
    with trio.fail_after(30):
        async with RawClient.open(daemon.endpoints.ws + "/chat/login/mute") as mute:
            started = trio.current_time()
            await mute.read_until_eof()
            assert trio.current_time() - started < 10  # well before the 20 s ping interval
            assert mute.pings() >= 1
            assert mute.close_code() == 1008


async def test_chat_connection_answering_pings_stays(daemon: RunningDaemon) -> None:
    # A ping every second, each to be answered within the next: a loaded machine's
    # stalls fit in that, and three pings keep it idle past the 2 s timeout.
    set_client_timeout(daemon, 2.0)
    with trio.fail_after(30):
        async with RawClient.open(daemon.endpoints.ws + "/chat/login/polite") as polite:
            await polite.answer_pings(3)  # ~3 s idle, every ping answered
            assert polite.close_code() is None


async def test_zero_client_timeout_leaves_the_ping_interval(daemon: RunningDaemon) -> None:
    set_client_timeout(daemon, 0)
    with trio.fail_after(15):
        async with RawClient.open(daemon.endpoints.ws + "/chat/login/idle") as idle:
            with trio.move_on_after(1.0):
                await idle.read_until_eof()
            assert idle.pings() == 0
            assert idle.close_code() is None
