"""Creates and destroys lock their server's name only: a destroy waiting out one
server's graceful stop holds up the creates and destroys of no other server, its own
name stays unavailable until it is done, and racing creates of one account still
cannot pass the account's quota. Real servers (a child that ignores SIGTERM) under the
real daemon; the order of events is asserted, never how long anything took."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from leosuite.api.server_ops import ServerOps
from leosuite.auth.service import Principal
from leosuite.errors import Conflict, NotFound, PermissionDenied
from tests.helpers.accounts import add_account
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.http import Api, api_client
from tests.helpers.servers import FAST_DEMO, command_settings, pid_alive

NOT_AVAILABLE = {"error_type": "conflict", "error_message": "server name not available"}


async def start_stubborn(api: Api, name: str) -> int:
    """A running server that ignores SIGTERM and has 5 s to stop; its pid."""
    await api.create(name, "command", command_settings("unkillable", stop_timeout=5))
    await api.ok("server_start", {"server": name})
    await api.wait_log(name, b"ready")  # SIGTERM is ignored from here on
    pid: int = (await api.status(name))["pid"]
    return pid


async def destroy_in_background(
    nursery: trio.Nursery, api: Api, name: str, done: trio.Event
) -> None:
    """Start destroying ``name``; ``done`` is set once the destroy answered 204. Returns
    when its graceful stop is under way."""

    async def destroy() -> None:
        await api.ok("server_destroy", {"server": name})
        done.set()

    nursery.start_soon(destroy)
    await api.wait_status(name, "stopping")


async def test_a_slow_destroy_holds_up_no_other_server(daemon: RunningDaemon) -> None:
    with trio.fail_after(40):
        async with api_client(daemon) as api, trio.open_nursery() as nursery:
            pid = await start_stubborn(api, "stubborn")
            stubborn_gone = trio.Event()
            await destroy_in_background(nursery, api, "stubborn", stubborn_gone)

            # Another server is created, started, stopped and destroyed meanwhile.
            await api.create("quick", "demo-game", FAST_DEMO)
            await api.ok("server_start", {"server": "quick"})
            await api.wait_status("quick", "running")
            await api.ok("server_destroy", {"server": "quick", "delete_files": True})
            await api.error("server_status", {"server": "quick"}, 404)
            assert not stubborn_gone.is_set()
            assert (await api.status("stubborn"))["status"] == "stopping"
            assert pid_alive(pid)

            await api.ok("server_force_kill", {"server": "stubborn"})
            await stubborn_gone.wait()
            await api.error("server_status", {"server": "stubborn"}, 404)
            assert not pid_alive(pid)


async def test_a_name_being_destroyed_is_not_available(daemon: RunningDaemon) -> None:
    manager = daemon.ctx.servers
    with trio.fail_after(40):
        async with api_client(daemon) as api, trio.open_nursery() as nursery:
            await start_stubborn(api, "stubborn")
            first_done = trio.Event()
            await destroy_in_background(nursery, api, "stubborn", first_done)

            body = {"server": "stubborn", "type": "demo-game", "settings": FAST_DEMO}
            assert await api.error("server_create", body, 409) == NOT_AVAILABLE

            # A second destroy of the name waits for the first, then finds no server.
            second: list[type[Exception]] = []

            async def destroy_again() -> None:
                try:
                    await manager.destroy("stubborn")
                except NotFound as exc:
                    second.append(type(exc))

            nursery.start_soon(destroy_again)
            await trio.testing.wait_all_tasks_blocked()
            assert second == []

            await api.ok("server_force_kill", {"server": "stubborn"})
            await first_done.wait()
        assert second == [NotFound]
        # Once the destroy is done, the name is free again.
        async with api_client(daemon) as api:
            await api.create("stubborn", "demo-game", FAST_DEMO)
            assert (await api.status("stubborn"))["readIndex"] == 0


async def test_racing_creates_of_one_account_stay_within_its_quota(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", servers={"max_per_account": 2})
    with trio.fail_after(40):
        async with running_daemon(settings) as daemon:
            host_id = await add_account(daemon, "host1", "HOST")
            host = Principal(account_id=host_id, username="host1", flags=frozenset({"HOST"}))
            ops = ServerOps(daemon.ctx, host, "127.0.0.1")
            manager = daemon.ctx.servers
            await manager.create("h1", "demo-game", FAST_DEMO, owner_id=host_id, admit=ops.admit)

            outcomes: dict[str, str] = {}

            async def create(name: str) -> None:
                try:
                    await manager.create(
                        name, "demo-game", FAST_DEMO, owner_id=host_id, admit=ops.admit
                    )
                except PermissionDenied:
                    outcomes[name] = "refused"
                else:
                    outcomes[name] = "created"

            # Both are under way at once: one place left, one create gets it.
            async with trio.open_nursery() as nursery:
                for name in ("h2", "h3"):
                    nursery.start_soon(create, name)
            assert sorted(outcomes.values()) == ["created", "refused"]
            owned = [n for n in manager.names() if manager.record(n).owner_id == host_id]
            assert len(owned) == 2

            # Two creates of one name at once: one server, one "not available".
            names: list[str] = []

            async def create_same() -> None:
                try:
                    record = await manager.create("same", "demo-game", FAST_DEMO, owner_id=None)
                except Conflict as exc:
                    names.append(exc.message)
                else:
                    names.append(record.name)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(create_same)
                nursery.start_soon(create_same)
            assert sorted(names) == ["same", "server name not available"]
