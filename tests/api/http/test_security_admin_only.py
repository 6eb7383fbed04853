"""A demoted ADMIN keeps no command execution: the admin-only rule of a type (``command``)
holds on every start, restart, settings change and ``server_cmd``, not only at create;
an account that loses ADMIN has its admin-only servers stopped (audited), and they stay
refused to it while an ADMIN may still run them. Over real HTTP with real processes."""

from __future__ import annotations

import shlex
from pathlib import Path

import trio

from leosuite.api.server_ops import stop_unattended_servers
from leosuite.store import accounts
from leosuite.store import audit as audit_table
from tests.fixtures import fixture_argv
from tests.helpers.accounts import add_account
from tests.helpers.admin_accounts import server_audit, set_flags
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO, command_settings, pid_alive
from tests.helpers.store import open_test_store

STOP_NOTE = "its type is admin-only and no ADMIN answers for it any more"


async def test_demoted_admin_has_its_command_server_stopped_and_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(40):
        async with running_daemon(settings) as daemon:
            boss_id = await add_account(daemon, "boss2", "ADMIN")
            async with api_client(daemon, "boss2") as boss:
                await boss.create("shell", "command", command_settings("echo"))
                await boss.create("game", "demo-game", FAST_DEMO)
                for name in ("shell", "game"):
                    await boss.ok("server_start", {"server": name})
                await boss.wait_log("shell", b"ready\n")
                await boss.ok("server_cmd", {"server": "shell", "command": "while admin"})
                await boss.wait_log("shell", b"echo: while admin")
                pid = (await boss.wait_status("shell", "running"))["pid"]
                await boss.wait_status("game", "running")

            await set_flags(daemon, boss_id, "HOST")
            # Stopped before the admin API answered, and audited as the admin's doing.
            assert daemon.ctx.servers.status("shell")["status"] == "stopped"
            assert not pid_alive(pid)
            (note,) = [e for e in await server_audit(daemon, "shell") if STOP_NOTE in e.message]
            assert note.user_name == "admin"
            assert note.level == "warning"
            # A server of a type open to HOST accounts runs on.
            assert daemon.ctx.servers.status("game")["status"] == "running"

            echo = shlex.join(fixture_argv("echo"))
            async with api_client(daemon, "boss2") as boss:
                # Still its owner: it sees, reads and may stop it, nothing more.
                assert (await boss.status("shell"))["status"] == "stopped"
                await boss.read_log("shell")
                await boss.ok("server_settings", {"server": "shell"})
                for path, body in (
                    ("server_start", {"server": "shell"}),
                    ("server_restart", {"server": "shell"}),
                    ("server_settings", {"server": "shell", "set": {"command": "id"}}),
                    ("server_cmd", {"server": "shell", "command": "id"}),
                ):
                    refusal = await boss.error(path, body, 403)
                    assert refusal["error_type"] == "permission_denied", refusal
                    assert "ADMIN" in refusal["error_message"]
                assert (await boss.status("shell"))["status"] == "stopped"
                settings_now = await boss.ok("server_settings", {"server": "shell"})
                assert {s["name"]: s["value"] for s in settings_now}["command"] == echo

                # An ADMIN acts: it runs again, answered for by that ADMIN, and still
                # takes no command from its owner.
                async with api_client(daemon) as admin:
                    await admin.ok("server_start", {"server": "shell"})
                    await admin.wait_status("shell", "running")
                refusal = await boss.error("server_cmd", {"server": "shell", "command": "x"}, 403)
                assert refusal["error_type"] == "permission_denied"
                assert await stop_unattended_servers(daemon.ctx) == []
                assert (await boss.status("shell"))["status"] == "running"
                # What HOST may do it still does on its own demo-game server.
                await boss.ok("server_cmd", {"server": "game", "command": "say still a host"})
                await boss.ok("server_restart", {"server": "game"})
                await boss.ok("server_stop", {"server": "shell"})


async def stop_notes(daemon: RunningDaemon, server: str) -> list[audit_table.AuditEntry]:
    return [e for e in await server_audit(daemon, server) if STOP_NOTE in e.message]


async def test_demotion_on_the_store_is_caught_by_housekeeping(tmp_path: Path) -> None:
    """Flags changed on the store directly (not through the admin API) stop the server
    within a housekeeping interval; a deleted owner's server likewise."""
    settings = make_settings(tmp_path / "data", housekeeping={"interval": 0.2})
    with trio.fail_after(40):
        async with running_daemon(settings) as daemon:
            boss_id = await add_account(daemon, "boss2", "ADMIN")
            gone_id = await add_account(daemon, "boss3", "ADMIN")
            for user, server in (("boss2", "kept"), ("boss3", "orphan")):
                async with api_client(daemon, user) as api:
                    await api.create(server, "command", command_settings("echo"))
                    await api.ok("server_start", {"server": server})
                    await api.wait_status(server, "running")
            await trio.sleep(0.6)  # housekeeping leaves servers of ADMIN owners alone
            assert daemon.ctx.servers.status("kept")["status"] == "running"

            db = daemon.ctx.db
            await db.call(lambda conn: accounts.set_flags(conn, boss_id, {"HOST"}))
            await db.call(lambda conn: accounts.delete(conn, gone_id))
            for name in ("kept", "orphan"):
                # The stop is audited once it is done (the entry says the state it left).
                while not (notes := await stop_notes(daemon, name)):
                    await trio.sleep(0.05)
                assert daemon.ctx.servers.status(name)["status"] == "stopped"
                await trio.sleep(0.6)  # three more housekeeping passes
                assert len(await stop_notes(daemon, name)) == 1
                assert notes[0].user_name == ""  # the daemon's own doing
            async with api_client(daemon, "boss2") as boss:
                await boss.error("server_start", {"server": "kept"}, 403)


async def test_admin_only_server_of_a_demoted_owner_does_not_autostart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(40):
        async with running_daemon(settings) as daemon:
            boss_id = await add_account(daemon, "boss2", "ADMIN")
            async with api_client(daemon, "boss2") as boss:
                await boss.create("held", "command", command_settings("echo", autostart=True))
            async with api_client(daemon) as admin:
                await admin.create("mine", "command", command_settings("echo", autostart=True))
        # Demoted while the daemon is down (the store is edited directly).
        db = open_test_store(settings.data_dir)
        try:
            db.call_sync(lambda conn: accounts.set_flags(conn, boss_id, {"HOST"}))
        finally:
            db.close()

        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await admin.wait_status("mine", "running")  # autostart works for an ADMIN's
            assert (await admin.status("held"))["status"] == "stopped"
            async with api_client(daemon, "boss2") as boss:
                await boss.error("server_start", {"server": "held"}, 403)
            await admin.ok("server_start", {"server": "held"})
            await admin.wait_status("held", "running")
