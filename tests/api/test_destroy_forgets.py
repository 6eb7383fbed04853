"""Servers created, run, shared, scheduled and destroyed leave nothing behind in the
daemon's per-server tables, and event subscriptions that end leave nothing in the
fan-outs: what a long-running daemon under churn would otherwise keep for good (real
daemon, real server processes, real sockets; the owner is a HOST account)."""

from __future__ import annotations

import trio

from leosuite.store import schedules as schedule_table
from tests.helpers.accounts import add_account
from tests.helpers.daemon import RunningDaemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO
from tests.helpers.ws import ws_client

CYCLES = 4


async def wait_no_ws_connections(daemon: RunningDaemon) -> None:
    """Until the daemon has seen every WebSocket connection end (callers bound it)."""
    while daemon.ctx.ws_hub.connections:
        await trio.sleep(0.05)


async def test_destroyed_servers_leave_nothing_in_per_server_tables(
    daemon: RunningDaemon,
) -> None:
    ctx = daemon.ctx
    with trio.fail_after(180):
        await add_account(daemon, "olga", "HOST")
        finn = await add_account(daemon, "finn")
        gone: list[tuple[int, int]] = []  # (server id, schedule id)
        async with api_client(daemon, "olga") as olga:
            for n in range(CYCLES):
                name = f"churn-{n}"
                await olga.create(name, "demo-game", FAST_DEMO)
                server_id = ctx.servers.record(name).id
                await olga.ok(
                    "server_share_set", {"server": name, "account": "finn", "rights": ["console"]}
                )
                await olga.ok(
                    "server_schedule_create",
                    {"server": name, "name": "hourly", "interval": 3600, "steps": ["restart"]},
                )
                stored = await ctx.db.call(lambda c, i=server_id: schedule_table.of_server(c, i))
                schedule_id = stored[0].id
                await olga.ok("server_start", {"server": name})
                await olga.wait_status(name, "running")
                while not ctx.servers.stats_history.samples(name):
                    await trio.sleep(0.1)
                assert ctx.grants.rights(server_id, finn) == {"console"}
                assert ctx.schedules.next_run(schedule_id) is not None
                await olga.ok("server_stop", {"server": name})
                await olga.ok("server_destroy", {"server": name, "delete_files": True})
                gone.append((server_id, schedule_id))
        assert ctx.servers.names() == []
        assert len(ctx.servers.stats_history) == 0
        for server_id, schedule_id in gone:
            assert ctx.grants.rights(server_id, finn) == frozenset()
            assert ctx.schedules.next_run(schedule_id) is None


async def test_ended_event_subscriptions_are_let_go(daemon: RunningDaemon) -> None:
    """No install runs meanwhile: before, each ended ``events.subscribe`` stayed in the
    install fan-out until the next install's first event."""
    events = daemon.ctx.servers.installs.events
    with trio.fail_after(60):
        async with api_client(daemon) as admin:
            token = admin.token
        for _ in range(12):
            async with ws_client(daemon) as client:
                await client.ok("authenticate_with_token", {"token": token})
                await client.ok("events.subscribe", {})
        await wait_no_ws_connections(daemon)
        async with ws_client(daemon) as client:
            await client.ok("authenticate_with_token", {"token": token})
            await client.ok("events.subscribe", {})
            assert events.held() == 1


async def test_server_list_during_destroys_never_names_a_server_it_cannot_show(
    daemon: RunningDaemon,
) -> None:
    """Checked at every scheduling point while servers are destroyed: the list leaves a
    server out from the moment its supervisor is gone, so its status is always there
    (before, a ``stats`` subscriber's connection failed on the missing server)."""
    manager = daemon.ctx.servers
    with trio.fail_after(120):
        async with api_client(daemon) as admin:
            names = [f"d{n}" for n in range(3)]
            for name in names:
                await admin.create(name, "demo-game", FAST_DEMO)
                await admin.ok("server_start", {"server": name})
            for name in names:
                await admin.wait_status(name, "running")
            looked = 0
            async with trio.open_nursery() as nursery:

                async def look() -> None:
                    nonlocal looked
                    while True:
                        for listed in manager.names():
                            assert manager.status(listed)["server"] == listed
                        looked += 1
                        await trio.sleep(0)

                nursery.start_soon(look)
                for name in names:
                    await admin.ok("server_destroy", {"server": name, "delete_files": True})
                nursery.cancel_scope.cancel()
            assert looked > 0
            assert manager.names() == []
