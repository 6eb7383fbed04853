"""What destroyed servers leave behind (their kept directories and logs), over the
real daemon: listed and purged by an ADMIN through the HTTP API, the admin API and
``leosuite server kept``, refused to anyone else, every removal audited; hostile
names and links planted among the entries never reach outside them; and the
retention (``servers.kept_days``) that housekeeping applies."""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from leosuite.api.kept_ops import purge_expired_kept
from leosuite.store import audit as audit_table
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.audit import audited
from tests.helpers.cli import Cli
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, running_daemon
from tests.helpers.http import Api, api_client, assert_admin_error, assert_error
from tests.helpers.security import port_of
from tests.helpers.servers import FAST_DEMO

DAY = 86400.0
ENTRY_KEYS = {"server", "kind", "path", "size", "since"}
HOSTILE_NAMES = ["..", "../etc", "/etc/passwd", "a/b", "world/../../x", "", ".destroyed", "~"]


async def make_kept(api: Api, daemon: RunningDaemon, name: str) -> int:
    """A server that ran, has a file of its own, and was destroyed with its files kept;
    its id."""
    await api.create(name, "demo-game", FAST_DEMO)
    server_id: int = daemon.ctx.servers.record(name).id
    (daemon.daemon.data_dir / "servers" / name / "notes.txt").write_text("x" * 5000)
    await api.ok("server_start", {"server": name})
    await api.wait_log(name, b"Server ready")
    await api.ok("server_destroy", {"server": name})
    return server_id


def by_path(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["path"]: e for e in entries}


def check_entry(entry: dict[str, Any], server: str) -> None:
    assert set(entry) == ENTRY_KEYS
    assert entry["server"] == server
    assert entry["size"] > 0
    since = datetime.datetime.fromisoformat(entry["since"].replace("Z", "+00:00"))
    assert entry["since"].endswith("Z")
    assert since.tzinfo is not None


async def test_listed_and_purged_over_the_http_api(daemon: RunningDaemon) -> None:
    data_dir = daemon.daemon.data_dir
    with trio.fail_after(60):
        async with api_client(daemon) as api:
            world_id = await make_kept(api, daemon, "world")
            await make_kept(api, daemon, "other")

            kept = (await api.ok("server_kept_list"))["kept"]
            assert len(kept) == 4
            listed = by_path(kept)
            files = listed[f"servers/.destroyed/world-{world_id}"]
            check_entry(files, "world")
            assert files["kind"] == "files"
            assert files["size"] >= 5000
            (logs,) = [e for e in kept if e["kind"] == "logs" and e["server"] == "world"]
            check_entry(logs, "world")
            assert logs["path"].startswith("logs/world.destroyed-")
            for path in listed:
                assert (data_dir / path).is_dir()

            # Just set aside: nothing is a day old yet.
            assert await api.ok("server_kept_purge", {"older_than": 1}) == {
                "purged": [],
                "failed": [],
            }
            purged = await api.ok("server_kept_purge", {"servers": ["world"]})
            assert purged["failed"] == []
            assert sorted(e["path"] for e in purged["purged"]) == sorted(
                [files["path"], logs["path"]]
            )
            assert not (data_dir / files["path"]).exists()
            assert not (data_dir / logs["path"]).exists()
            assert {e["server"] for e in (await api.ok("server_kept_list"))["kept"]} == {"other"}
            assert (
                len(await audited(daemon, "purged kept files of world: servers/.destroyed/")) == 1
            )
            assert len(await audited(daemon, "purged kept logs of world: logs/")) == 1

            everything = await api.ok("server_kept_purge", {"older_than": 0})
            assert {e["server"] for e in everything["purged"]} == {"other"}
            assert await api.ok("server_kept_list") == {"kept": []}


async def test_bad_purges_are_refused_and_remove_nothing(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with api_client(daemon) as api:
            await make_kept(api, daemon, "world")
            before = await api.ok("server_kept_list")
            refusal = await api.error("server_kept_purge", {}, 400)
            assert refusal["error_message"].startswith("servers or older_than: give one or both")
            for name in HOSTILE_NAMES:
                body = {"servers": [name], "older_than": 0}
                refusal = await api.error("server_kept_purge", body, 400)
                assert refusal["error_message"].startswith("servers: not a server name")
            for body in (
                {"older_than": -1},
                {"older_than": 1e9},
                {"older_than": "30"},
                {"servers": "world"},
                {"servers": [7]},
                {"server": "world"},
            ):
                await api.error("server_kept_purge", body, 400)
            assert await api.ok("server_kept_list") == before


async def test_only_an_admin_may_list_or_purge(daemon: RunningDaemon) -> None:
    port = port_of(daemon.endpoints.http)
    with trio.fail_after(60):
        await add_account(daemon, "host1", "HOST")
        await add_account(daemon, "mod1", "MOD")
        async with api_client(daemon) as api:
            await make_kept(api, daemon, "world")
            before = await api.ok("server_kept_list")
            for username in ("host1", "mod1"):
                async with api_client(daemon, username) as other:
                    for path, body in (
                        ("server_kept_list", {}),
                        ("server_kept_purge", {"older_than": 0}),
                    ):
                        refusal = await other.error(path, body, 403)
                        assert refusal["error_type"] == "permission_denied"
                        assert "ADMIN" in refusal["error_message"]
            # no token at all
            response = await api.client.post("/api/server_kept_list", json={})
            assert assert_error(response, 403)["error_type"] == "forbidden"
            # A name this daemon is not served under is refused like every other call.
            evil = {
                "Host": f"evil.example:{port}",
                "Origin": f"http://evil.example:{port}",
                "Authorization": f"Bearer {api.token}",
            }
            response = await api.client.post(
                "/api/server_kept_purge", json={"older_than": 0}, headers=evil
            )
            assert assert_error(response, 421)["error_type"] == "misdirected"
            assert await api.ok("server_kept_list") == before


def admin_client(
    daemon: RunningDaemon, username: str = "admin", password: str = ADMIN_PASSWORD
) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=daemon.endpoints.admin, auth=(username, password), timeout=10)


async def test_the_admin_api(daemon: RunningDaemon) -> None:
    data_dir = daemon.daemon.data_dir
    port = port_of(daemon.endpoints.admin)
    with trio.fail_after(60):
        await add_account(daemon, "host1", "HOST")
        async with api_client(daemon) as api:
            await make_kept(api, daemon, "world")
        async with admin_client(daemon) as admin:
            listed = (await admin.get("/kept/")).json()
            assert len(listed) == 2
            assert (await admin.get("/api/kept")).json() == listed
            for entry in listed:
                check_entry(entry, "world")

            for body, field in (
                ({}, "servers"),
                ({"olderThan": -1}, "olderThan"),
                ({"older_than": 0}, "older_than"),
                ({"servers": ["../world"]}, "servers"),
                ({"servers": ["/"]}, "servers"),
            ):
                message = assert_admin_error(await admin.post("/kept/purge/", json=body), 400)
                assert message.startswith(field), message
            # The listener's own refusals come first, as on every admin path.
            foreign = {"Origin": "http://evil.example"}
            assert_admin_error(
                await admin.post("/kept/purge", json={"olderThan": 0}, headers=foreign), 403
            )
            assert_admin_error(
                await admin.get("/kept", headers={"Sec-Fetch-Site": "cross-site"}), 403
            )
            rebound = {"Host": f"evil.example:{port}"}
            assert_admin_error(
                await admin.post("/kept/purge", json={"olderThan": 0}, headers=rebound), 421
            )
            refused = await admin.post(
                "/kept/purge", content=b'{"olderThan": 0}', headers={"Content-Type": "text/plain"}
            )
            assert_admin_error(refused, 415)
            assert (await admin.get("/kept")).json() == listed

            purged = (
                await admin.post("/kept/purge", json={"servers": ["world"], "olderThan": 0})
            ).json()
            assert purged["failed"] == []
            assert sorted(e["path"] for e in purged["purged"]) == sorted(e["path"] for e in listed)
            for entry in listed:
                assert not (data_dir / entry["path"]).exists()
            assert (await admin.get("/kept")).json() == []
        async with admin_client(daemon, "host1", PASSWORD) as host:
            message = assert_admin_error(await host.get("/kept"), 403)
            assert "not an administrator" in message
    entries = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, newest_first=False, limit=1000)
    )
    purges = [e for e in entries if e.message.startswith("purged kept")]
    assert len(purges) == 2
    assert all(e.session == "world" and e.user_name == "admin" for e in purges)


async def test_links_planted_among_kept_entries_are_not_followed(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    data_dir = daemon.daemon.data_dir
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    with trio.fail_after(60):
        async with api_client(daemon) as api:
            await make_kept(api, daemon, "world")
            attic = data_dir / "servers" / ".destroyed"
            (attic / "evil-1").symlink_to(outside)
            (attic / "evil-2").symlink_to(outside / "precious.txt")
            (attic / "plain-3").write_text("a kept entry that is a file")
            (attic / "world-1.1").mkdir()
            (attic / "world-1.1" / "escape").symlink_to(outside)
            (data_dir / "logs" / "evil.destroyed-4").symlink_to(outside)
            (data_dir / "logs" / "evil.destroyed-4-1").symlink_to("/")
            (attic / "README").write_text("not an entry")

            kept = by_path((await api.ok("server_kept_list"))["kept"])
            for path in (
                "servers/.destroyed/evil-1",
                "servers/.destroyed/evil-2",
                "servers/.destroyed/plain-3",
                "servers/.destroyed/world-1.1",
                "logs/evil.destroyed-4",
                "logs/evil.destroyed-4-1",
            ):
                assert path in kept
            assert "servers/.destroyed/README" not in kept

            purged = await api.ok("server_kept_purge", {"older_than": 0})
            assert purged["failed"] == []
            assert by_path(purged["purged"]).keys() == kept.keys()
            assert sorted(p.name for p in attic.iterdir()) == ["README"]
            assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
            assert (outside / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("kept_days", [30.0, 0.0])
async def test_housekeeping_removes_what_was_kept_too_long(
    tmp_path: Path, kept_days: float
) -> None:
    settings = make_settings(tmp_path / "data", servers={"kept_days": kept_days})
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            await make_kept(api, daemon, "world")
            assert (await purge_expired_kept(daemon.ctx)).removed == []
            in_29_days = time.time() + 29 * DAY
            assert (await purge_expired_kept(daemon.ctx, in_29_days)).removed == []
            in_31_days = time.time() + 31 * DAY
            result = await purge_expired_kept(daemon.ctx, in_31_days)
            if kept_days:
                assert sorted(e.kind for e in result.removed) == ["files", "logs"]
                assert await api.ok("server_kept_list") == {"kept": []}
                assert (
                    len(await audited(daemon, "kept longer than servers.kept_days, 30 days")) == 2
                )
            else:  # kept for ever
                assert result.removed == []
                assert len((await api.ok("server_kept_list"))["kept"]) == 2


async def test_the_command_line(daemon: RunningDaemon, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    with trio.fail_after(90):
        async with api_client(daemon) as api:
            await make_kept(api, daemon, "world")
            await make_kept(api, daemon, "other")
        await cli.login(daemon.endpoints.http)
        text = (await cli.run("server", "kept")).stdout.decode()
        assert "servers/.destroyed/world-" in text
        assert "logs/other.destroyed-" in text
        assert "4 kept" in text
        assert len((await cli.json("server", "kept", "list"))["kept"]) == 4
        assert len((await cli.json("server", "kept", "list", "world"))["kept"]) == 2

        usage = await cli.run("server", "kept", "purge", expect=2)
        assert b"--older-than" in usage.stderr
        await cli.run("server", "kept", "purge", "../etc", expect=1)
        await cli.run("server", "kept", "purge", "--older-than", "-1", expect=2)

        purged = await cli.json("server", "kept", "purge", "world")
        assert {e["server"] for e in purged["purged"]} == {"world"}
        assert purged["failed"] == []
        assert b"(nothing to purge)" in (await cli.run("server", "kept", "purge", "world")).stdout
        out = (await cli.run("server", "kept", "purge", "--older-than", "0")).stdout.decode()
        assert out.count("purged logs/other.destroyed-") == 1
        assert (await cli.run("server", "kept")).stdout.strip() == b"(none)"

        await add_account(daemon, "host1", "HOST")
        await cli.login(daemon.endpoints.http, "host1", PASSWORD)
        refused = await cli.run("server", "kept", expect=1)
        assert b"ADMIN" in refused.stderr


async def test_the_housekeeping_loop_purges_on_its_own(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        servers={"kept_days": 1 / DAY},  # one second
        housekeeping={"interval": 0.2},
    )
    with trio.fail_after(60):
        async with running_daemon(settings) as daemon, api_client(daemon) as api:
            await make_kept(api, daemon, "world")
            while (await api.ok("server_kept_list"))["kept"]:
                await trio.sleep(0.1)
            # Each purge is audited once its files are gone: the last entry may follow.
            while len(await audited(daemon, "kept longer than servers.kept_days")) < 2:
                await trio.sleep(0.1)
            assert len(await audited(daemon, "kept longer than servers.kept_days")) == 2
