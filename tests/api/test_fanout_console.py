"""Console pushes shared by the subscribers of a flooding server (a real child process
and real WebSocket connections): each gets every byte once, in order, and two
subscribers at the same index get the same push (read and encoded once), whether
they subscribed as the owner or as an account the console alone is shared with."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import trio

from leosuite.api.ws.fanout_console import (
    ENTRY_BYTES,
    KEPT_BATCHES,
    KEPT_SECONDS,
    PER_CONSOLE,
    ConsoleChunks,
    skip_to,
)
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.console import open_console
from tests.helpers.daemon import RunningDaemon
from tests.helpers.servers import command_settings
from tests.helpers.ws import WsClient, ws_client


def _data(push: dict[str, Any]) -> bytes:
    content = push["content"]
    if content["encoding"] == "base64":
        return base64.b64decode(content["data"])
    data: str = content["data"]
    return data.encode("utf-8")


async def _collect(client: WsClient, total: int) -> tuple[bytes, dict[int, tuple[str, bytes]]]:
    """Console bytes in order until ``total`` of them; each push's uuid and bytes by
    its readIndex."""
    data = b""
    pushes: dict[int, tuple[str, bytes]] = {}
    while len(data) < total:
        push = await client.next_push("console_output")
        content = push["content"]
        assert content["server"] == "f"
        assert content["readIndex"] == len(data), (content["readIndex"], len(data))
        chunk = _data(push)
        assert content["nextReadIndex"] == content["readIndex"] + len(chunk)
        pushes[content["readIndex"]] = (push["uuid"], chunk)
        data += chunk
    return data, pushes


async def test_subscribers_of_a_flood_share_each_push_and_get_every_byte(
    daemon: RunningDaemon,
) -> None:
    total = 2_000_000
    with trio.fail_after(60):
        await add_account(daemon, "viewer")
        async with (
            ws_client(daemon) as owner,
            ws_client(daemon) as viewer,
            ws_client(daemon) as late,
        ):
            await owner.login()
            await viewer.login("viewer", PASSWORD)
            await late.login()
            settings = command_settings("flood", total, "--sleep")
            await owner.ok(
                "server.create", {"server": "f", "type": "command", "settings": settings}
            )
            await owner.ok(
                "server.share_set", {"server": "f", "account": "viewer", "rights": ["console"]}
            )
            for client in (owner, viewer, late):
                await client.ok("console.subscribe", {"server": "f", "from": 0})
            await owner.ok("server.start", {"server": "f"})
            got: dict[str, tuple[bytes, dict[int, tuple[str, bytes]]]] = {}

            async def collect(name: str, client: WsClient) -> None:
                got[name] = await _collect(client, total)

            async with trio.open_nursery() as nursery:
                for name, client in (("owner", owner), ("viewer", viewer), ("late", late)):
                    nursery.start_soon(collect, name, client)
            datas = [data for data, _ in got.values()]
            shortest = min(len(data) for data in datas)
            assert all(data[:shortest] == datas[0][:shortest] for data in datas)
            assert b"flood " in datas[0]
            shared = set(got["owner"][1]) & set(got["viewer"][1]) & set(got["late"][1])
            assert len(shared) >= 2, "no index where the subscribers met"
            for index in shared:  # the same push: read, encoded and framed once
                assert got["owner"][1][index] == got["viewer"][1][index] == got["late"][1][index]
            await owner.ok("server.kill", {"server": "f"})


def test_a_lagging_subscriber_skips_to_a_batch_boundary_and_never_back() -> None:
    batch = 1000
    for index, end in [(0, 10_500), (3_217, 90_001), (42, 2_000), (7_999, 9_000), (0, 1_000)]:
        target = skip_to(index, end, batch)
        assert target >= index
        if target > index:
            assert target % batch == 0
            assert batch <= end - target < 2 * batch  # a whole batch to read
    assert skip_to(5_000, 5_500, batch) == 5_000  # nothing to skip within a batch


def test_a_quiet_consoles_small_pushes_do_not_pile_up(tmp_path: Path) -> None:
    """A console writing a line now and then: only its newest pushes are kept, not
    every push until a flood's bound in bytes (what a soak found growing for an hour)."""
    chunks = ConsoleChunks(256 * 1024)
    console = open_console(tmp_path / "quiet")
    index = 0
    for n in range(PER_CONSOLE * 5):
        console.append(b"player %d joined\n" % n)
        push = chunks.output("quiet", console, index)
        assert chunks.output("quiet", console, index) is push  # shared while kept
        index = push.next_index
    assert len(chunks) == PER_CONSOLE
    first = chunks.output("quiet", console, 0)
    assert chunks.built == PER_CONSOLE * 5 + 1  # the oldest was rebuilt, not kept
    assert first.old_read_index == 0
    console.close()


def test_many_consoles_pushes_are_bounded_with_what_each_entry_holds(tmp_path: Path) -> None:
    """Each kept push counts its frame and what its entry costs beside it; the oldest
    go first, so the pushes of consoles nobody reads any more (servers gone) leave."""
    batch = 4096
    chunks = ConsoleChunks(batch)
    bound = KEPT_BATCHES * 2 * batch
    consoles = [open_console(tmp_path / f"c{n}") for n in range(40)]
    for n, console in enumerate(consoles):
        index = 0
        for line in range(PER_CONSOLE):
            console.append(b"c%d line %d\n" % (n, line))
            index = chunks.output(f"c{n}", console, index).next_index
        assert chunks.held_bytes <= bound
    assert len(chunks) < 40 * PER_CONSOLE
    assert len(chunks) * ENTRY_BYTES <= bound
    newest = consoles[-1]
    assert chunks.output("c39", newest, 0) is chunks.output("c39", newest, 0)
    oldest = consoles[0]
    built = chunks.built
    chunks.output("c0", oldest, 0)
    assert chunks.built == built + 1  # the first console's pushes were dropped first
    for console in consoles:
        console.close()


def test_the_pushes_of_a_closed_console_go_when_another_console_comes(tmp_path: Path) -> None:
    """Servers created and destroyed in turn: the pushes of the destroyed ones' consoles
    are dropped, not kept (each holding its console) until the bound in bytes is full."""
    chunks = ConsoleChunks(256 * 1024)
    consoles = []
    for n in range(20):
        console = open_console(tmp_path / f"churn{n}")
        consoles.append(console)
        index = 0
        for line in range(3):
            console.append(b"churn %d line %d\n" % (n, line))
            index = chunks.output(f"churn{n}", console, index).next_index
        assert len(chunks) == 3 + (3 if n else 0)  # its own, and the one still open
        if n:
            consoles[n - 1].close()
    consoles[-1].close()


def test_pushes_are_kept_for_sharing_only_for_a_while(tmp_path: Path) -> None:
    """A quiet console's pushes (history replayed to subscribers that come and go) leave
    once they are old, however far below the bound in bytes they are."""
    now = [0.0]
    chunks = ConsoleChunks(256 * 1024, clock=lambda: now[0])
    quiet, busy = open_console(tmp_path / "quiet"), open_console(tmp_path / "busy")
    quiet.append(b"x" * 100_000)
    old = chunks.output("quiet", quiet, 0)
    assert chunks.output("quiet", quiet, 0) is old  # shared while kept
    now[0] = KEPT_SECONDS - 1
    busy.append(b"line\n")
    chunks.output("busy", busy, 0)
    assert chunks.output("quiet", quiet, 0) is old  # not old enough yet
    now[0] = KEPT_SECONDS + 1
    busy.append(b"line\n")
    chunks.output("busy", busy, 5)
    assert len(chunks) == 2  # the busy console's two; the quiet one's went
    built = chunks.built
    assert chunks.output("quiet", quiet, 0) is not old
    assert chunks.built == built + 1
    quiet.close()
    busy.close()
