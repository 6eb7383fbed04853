"""Admin API ``GET``/``PUT /server/`` (seed 002) over real HTTP: the seed's keys, typed
validation that changes nothing on any bad value, storage across a restart (stored
values win over the config file) and immediate effect on the chat core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from leosuite.community.models import Member
from leosuite.community.server_settings import (
    ServerSettings,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)
from leosuite.errors import Conflict, InvalidInput, PermissionDenied
from leosuite.store import audit as audit_table
from leosuite.store import kv
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, start_daemon
from tests.helpers.http import assert_admin_error

AUTH = ("admin", ADMIN_PASSWORD)
KEYS = {
    "clientTimeout", "sessionSizeLimit", "sessionCountLimit", "enablePersistence",
    "archiveMode", "idleTimeLimit", "serverTitle", "welcomeMessage", "announceWhiteList",
    "privateUserList", "allowGuestHosts", "allowGuests",
    # the origin server's names beside them
    "persistence", "archive", "announceWhitelist", "sessionUserLimit", "logpurgedays",
    # the keys whose stored value wins over the configuration
    "overridden",
}  # fmt: skip
PATHS = ["/server", "/server/", "/api/server", "/api/server/"]


def admin(daemon: RunningDaemon) -> httpx.AsyncClient:
    return daemon.admin(auth=AUTH)


async def stored_rows(daemon: RunningDaemon) -> dict[str, str]:
    rows: dict[str, str] = await daemon.ctx.db.call(lambda conn: kv.items(conn, "server_settings."))
    return rows


@pytest.mark.parametrize("path", PATHS)
async def test_get_answers_the_seed_keys(daemon: RunningDaemon, path: str) -> None:
    with trio.fail_after(10):
        async with admin(daemon) as client:
            response = await client.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == KEYS
    assert body == {
        "clientTimeout": "60s",
        "sessionSizeLimit": "5MB",
        "sessionCountLimit": 100,
        "enablePersistence": True,
        "archiveMode": False,
        "idleTimeLimit": "6h",
        "serverTitle": "",
        "welcomeMessage": "",
        "announceWhiteList": False,
        "privateUserList": False,
        "allowGuestHosts": True,
        "allowGuests": True,
        "persistence": True,
        "archive": False,
        "announceWhitelist": False,
        "sessionUserLimit": 100,
        "logpurgedays": 90,
        "overridden": [],
    }


async def test_put_on_every_path_takes_effect_at_once(daemon: RunningDaemon) -> None:
    core = daemon.ctx.chat.core
    with trio.fail_after(20):
        async with admin(daemon) as client:
            changes: list[dict[str, Any]] = [
                {"sessionCountLimit": 1, "allowGuests": False},
                {"sessionSizeLimit": "512kB", "idleTimeLimit": "5m", "clientTimeout": "90s"},
                {"welcomeMessage": "Hello\nthere", "allowGuestHosts": False, "archiveMode": True},
                {"serverTitle": "My server", "announceWhiteList": True, "privateUserList": True,
                 "enablePersistence": False},
            ]  # fmt: skip
            for path, change in zip(PATHS, changes, strict=True):
                response = await client.put(path, json=change)
                assert response.status_code == 200, response.text
                assert set(response.json()) == KEYS | {"ignored"}
                assert {k: response.json()[k] for k in change} == change
            got = (await client.get("/api/server/")).json()
    assert got["sessionCountLimit"] == 1
    assert (got["sessionSizeLimit"], got["idleTimeLimit"], got["clientTimeout"]) == (
        "512kB",
        "5m",
        "90s",
    )
    limits = core.limits
    assert (limits.session_count_limit, limits.session_size_limit) == (1, 512 * 1024)
    assert (limits.idle_time_limit, limits.welcome_message) == (300.0, "Hello\nthere")
    assert (limits.allow_guests, limits.allow_guest_hosts, limits.enable_persistence) == (
        False,
        False,
        False,
    )
    assert daemon.ctx.chat.server_settings.client_timeout == 90.0
    # Effects on the core: one session at most, no guests.
    core.create("first", None, founder_name="admin")
    with pytest.raises(Conflict):
        core.create("second", None, founder_name="admin")
    with pytest.raises(PermissionDenied):
        core.connect(Member("guest", ip="10.0.0.9"))
    core.connect(Member("known", ip="10.0.0.9", account_id=1))
    # Every change is audited with the admin's account.
    entries = await daemon.ctx.db.call(
        lambda c: audit_table.page(c, offset=0, limit=50, newest_first=False)
    )
    changed = [e for e in entries if e.topic == "Status" and "server settings" in e.message]
    assert len(changed) == 4
    assert "sessionCountLimit=1" in changed[0].message
    assert "allowGuests=false" in changed[0].message
    assert changed[0].user_name == "admin"
    assert changed[0].user_ip == "127.0.0.1"


async def test_guest_allowed_again_and_unchanged_values_are_not_audited(
    daemon: RunningDaemon,
) -> None:
    core = daemon.ctx.chat.core
    with trio.fail_after(20):
        async with admin(daemon) as client:
            assert (await client.put("/server", json={"allowGuests": False})).status_code == 200
            with pytest.raises(PermissionDenied):
                core.connect(Member("guest", ip="10.0.0.9"))
            assert (await client.put("/server", json={"allowGuests": True})).status_code == 200
            core.connect(Member("guest", ip="10.0.0.9"))
            same = await client.put("/server", json={"allowGuests": True, "clientTimeout": 60})
            assert same.status_code == 200
            assert same.json()["clientTimeout"] == "60s"
    entries = await daemon.ctx.db.call(lambda c: audit_table.page(c, offset=0, limit=50))
    assert len([e for e in entries if "server settings" in e.message]) == 2


BAD_BODIES = [
    pytest.param(b'{"idleTimeLimit": "soon"}', "idleTimeLimit", id="duration-soon"),
    pytest.param(b'{"sessionSizeLimit": "-5MB"}', "sessionSizeLimit", id="negative-size"),
    pytest.param(b'{"sessionCountLimit": -1}', "sessionCountLimit", id="negative-count"),
    pytest.param(b'{"sessionCountLimit": 1e309}', "sessionCountLimit", id="count-1e309"),
    pytest.param(b'{"sessionCountLimit": 2.5}', "sessionCountLimit", id="count-float"),
    pytest.param(b'{"sessionCountLimit": 1000001}', "sessionCountLimit", id="count-huge"),
    pytest.param(b'{"sessionCountLimit": "5x"}', "sessionCountLimit", id="count-string"),
    pytest.param(b'{"sessionSizeLimit": "5XB"}', "sessionSizeLimit", id="size-unit"),
    pytest.param(b'{"sessionSizeLimit": "2GB"}', "sessionSizeLimit", id="size-too-big"),
    pytest.param(b'{"sessionSizeLimit": 0}', "sessionSizeLimit", id="size-zero"),
    pytest.param(b'{"clientTimeout": "1s"}', "clientTimeout", id="timeout-too-short"),
    pytest.param(b'{"clientTimeout": -60}', "clientTimeout", id="timeout-negative"),
    pytest.param(b'{"clientTimeout": true}', "clientTimeout", id="timeout-bool"),
    pytest.param(b'{"idleTimeLimit": "400d"}', "idleTimeLimit", id="idle-too-long"),
    pytest.param(b'{"allowGuests": "yes"}', "allowGuests", id="bool-string"),
    pytest.param(b'{"allowGuests": null}', "allowGuests", id="bool-null"),
    pytest.param(b'{"serverTitle": "' + b"x" * 101 + b'"}', "serverTitle", id="title-long"),
    pytest.param(b'{"serverTitle": "a\\u0000b"}', "serverTitle", id="title-control"),
    pytest.param(b'{"welcomeMessage": "' + b"w" * 1001 + b'"}', "welcomeMessage", id="welcome"),
    pytest.param(b'{"motd": "hi", "sessionCountLimit": 5.5}', "sessionCountLimit", id="unknown"),
    pytest.param(
        b'{"sessionCountLimit": 5, "allowGuests": false, "idleTimeLimit": "soon"}',
        "idleTimeLimit",
        id="valid-plus-invalid",
    ),
    pytest.param(b'{"sessionCountLimit": 5', None, id="not-json"),
    pytest.param(b"[1, 2]", None, id="array"),
    pytest.param(b'"sessionCountLimit"', None, id="string"),
    pytest.param(b"\xff\xfe", None, id="not-utf8"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
async def test_bad_put_is_400_and_changes_nothing(
    daemon: RunningDaemon, body: bytes, field: str | None
) -> None:
    with trio.fail_after(10):
        async with admin(daemon) as client:
            before = (await client.get("/server")).json()
            response = await client.put(
                "/api/server/", content=body, headers={"Content-Type": "application/json"}
            )
            message = assert_admin_error(response, 400)
            if field is not None:
                assert field in message
            assert (await client.get("/server")).json() == before
    assert await stored_rows(daemon) == {}
    assert daemon.ctx.chat.core.limits.session_count_limit == 100
    assert daemon.ctx.chat.core.limits.allow_guests is True


async def test_put_needs_a_json_content_type(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with admin(daemon) as client:
            response = await client.put("/server", content=b'{"sessionCountLimit": 5}')
            assert "application/json" in assert_admin_error(response, 415)
            assert_admin_error(await client.post("/server", json={}), 405)
            empty = await client.put("/server", json={})
    assert empty.status_code == 200
    assert empty.json()["sessionCountLimit"] == 100
    assert await stored_rows(daemon) == {}


async def test_settings_survive_a_restart_and_win_over_the_config_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            first = await start_daemon(nursery, make_settings(data))
            async with admin(first) as client:
                response = await client.put(
                    "/server",
                    json={"sessionCountLimit": 7, "idleTimeLimit": "0", "allowGuests": False,
                          "serverTitle": "Kept", "clientTimeout": "2m"},
                )  # fmt: skip
                assert response.status_code == 200, response.text
            first.daemon.request_stop()
        config = make_settings(
            data, community={"session_count_limit": 50, "welcome_message": "from the file"}
        )
        async with trio.open_nursery() as nursery:
            second = await start_daemon(nursery, config)
            # A stored value that no longer validates is skipped (logged) at the next start.
            await second.ctx.db.call(
                lambda c: kv.set(c, "server_settings.sessionSizeLimit", '"-5MB"')
            )
            async with admin(second) as client:
                got = (await client.get("/api/server")).json()
            limits = second.ctx.chat.core.limits
            second.daemon.request_stop()
        async with trio.open_nursery() as nursery:
            third = await start_daemon(nursery, config)
            third_got = third.ctx.chat.server_settings
            third.daemon.request_stop()
    assert got["sessionCountLimit"] == 7  # stored wins over the file's 50
    assert got["welcomeMessage"] == "from the file"  # never changed: follows the file
    assert (got["idleTimeLimit"], got["allowGuests"], got["serverTitle"]) == ("0", False, "Kept")
    assert got["clientTimeout"] == "2m"
    assert (limits.session_count_limit, limits.idle_time_limit, limits.allow_guests) == (
        7,
        0.0,
        False,
    )
    assert limits.welcome_message == "from the file"
    assert third_got.session_count_limit == 7
    assert third_got.session_size_limit == 5 * 1024 * 1024  # the bad stored row is ignored


def test_durations_and_sizes() -> None:
    cases = {"60s": 60.0, "5m": 300.0, "1h": 3600.0, "2d": 172800.0, "0": 0.0, "90": 90.0}
    for text, seconds in cases.items():
        assert parse_duration(text, "t") == seconds
    assert parse_duration(30, "t") == 30.0
    assert [format_duration(s) for s in (0, 60, 90, 300, 3600, 21600, 172800)] == [
        "0", "60s", "90s", "5m", "1h", "6h", "2d",
    ]  # fmt: skip
    for text in ("soon", "-1s", "1w", "", "1.5.5h", "9" * 40):
        with pytest.raises(InvalidInput):
            parse_duration(text, "t")
    sizes = {"5MB": 5 << 20, "512kB": 512 << 10, "1GB": 1 << 30, "1000": 1000, "2 mib": 2 << 20}
    for text, size in sizes.items():
        assert parse_size(text, "s") == size
    assert [format_size(n) for n in (5 << 20, 512 << 10, 1 << 30, 1000)] == [
        "5MB", "512kB", "1GB", "1000B",
    ]  # fmt: skip
    for text in ("-5MB", "5XB", "MB", "5 M B", "1e3"):
        with pytest.raises(InvalidInput):
            parse_size(text, "s")
    with pytest.raises(InvalidInput):
        parse_size(-1, "s")
    assert ServerSettings().to_wire()["sessionSizeLimit"] == "5MB"
