"""The admin listener as Drawpile's web admin uses it: a wrong login answered without a
Basic challenge to a script's request, ``/status/`` with the address chat clients
connect to, and ``/server/`` under the origin server's setting names, with numbers as
text and names leosuite has no setting for reported rather than refused."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from quart import Quart

from leosuite.api.admin.status import external_address
from leosuite.errors import ConfigError
from leosuite.settings import load_settings
from leosuite.store import kv
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, running_daemon
from tests.helpers.http import assert_admin_error

AUTH = ("admin", ADMIN_PASSWORD)
XHR = {"X-Requested-With": "XMLHttpRequest"}


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def put_settings(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await client.put("/api/server/", json=body, headers=XHR)


# -- login ---------------------------------------------------------------------------


async def test_a_scripts_failed_login_gets_no_basic_challenge(daemon: RunningDaemon) -> None:
    await add_account(daemon, "painter", "HOST")
    with trio.fail_after(20):
        async with daemon.admin() as admin:
            for headers in ({}, basic("admin", "wrong-password"), basic("nobody", "x" * 9)):
                scripted = await admin.get("/api/status/", headers={**headers, **XHR})
                assert_admin_error(scripted, 401)
                assert "WWW-Authenticate" not in scripted.headers
                # the header's value in another letter case is the same request
                lower = await admin.get(
                    "/status", headers={**headers, "x-requested-with": "xmlhttprequest"}
                )
                assert_admin_error(lower, 401)
                assert "WWW-Authenticate" not in lower.headers
                plain = await admin.get("/api/status/", headers=headers)
                assert_admin_error(plain, 401)
                assert plain.headers["WWW-Authenticate"].startswith("Basic realm=")
                other = await admin.get("/status", headers={**headers, "X-Requested-With": "fetch"})
                assert other.headers["WWW-Authenticate"].startswith("Basic realm=")
            # A non-ADMIN account is 403 either way, never a challenge.
            refused = await admin.get("/api/status/", headers={**basic("painter", PASSWORD), **XHR})
            assert_admin_error(refused, 403)
            assert "WWW-Authenticate" not in refused.headers
            ok = await admin.get("/api/status/", headers={**basic(*AUTH), **XHR})
    assert ok.status_code == 200, ok.text


# -- status --------------------------------------------------------------------------


async def test_status_shows_the_websocket_listener_by_default(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with daemon.admin(auth=AUTH) as admin:
            body = (await admin.get("/api/status/", headers=XHR)).json()
    ws = urlsplit(daemon.endpoints.ws)
    assert (body["ext_host"], body["ext_port"]) == ("127.0.0.1", ws.port)
    assert {"started", "sessions", "maxSessions", "users"} <= set(body)


@pytest.mark.parametrize(
    ("sections", "host", "port"),
    [
        ({"ws": {"public_address": "chat.example.org:443"}}, "chat.example.org", 443),
        ({"ws": {"public_address": "chat.example.org"}}, "chat.example.org", None),
        ({"ws": {"public_address": "[2001:db8::5]:8976"}}, "2001:db8::5", 8976),
        ({"ws": {"public_address": "203.0.113.5"}}, "203.0.113.5", None),
        ({"ws": {"public_url": "wss://games.example.org/ws/"}}, "games.example.org", 443),
        ({"http": {"public_url": "http://games.example.org:8080"}}, "games.example.org", 8080),
        (
            {"ws": {"public_address": "chat.example.org:7000",
                    "public_url": "wss://games.example.org/ws/"}},
            "chat.example.org",
            7000,
        ),
    ],
)  # fmt: skip
async def test_status_shows_the_public_address(
    tmp_path: Path, sections: dict[str, dict[str, str]], host: str, port: int | None
) -> None:
    settings = make_settings(tmp_path / "data", **sections)
    with trio.fail_after(30):
        async with running_daemon(settings) as daemon, daemon.admin(auth=AUTH) as admin:
            body = (await admin.get("/status")).json()
            listener_port = urlsplit(daemon.endpoints.ws).port
    assert body["ext_host"] == host
    assert body["ext_port"] == (listener_port if port is None else port)


async def test_a_wildcard_listener_shows_the_host_the_request_was_sent_to(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    app = Quart(__name__)
    for url, host, shown in [
        ("ws://0.0.0.0:8976", "dash.example.org:8977", ("dash.example.org", 8976)),
        ("ws://[::]:9000", "[fd00::7]:8977", ("fd00::7", 9000)),
        ("ws://0.0.0.0:8976", "dash.example.org", ("dash.example.org", 8976)),
        ("ws://192.0.2.1:8976", "dash.example.org", ("192.0.2.1", 8976)),
    ]:
        ctx: Any = SimpleNamespace(endpoints={"ws": url}, settings=settings)
        async with app.test_request_context("/status", headers={"Host": host}):
            assert external_address(ctx) == shown


@pytest.mark.parametrize(
    "value",
    ["http://chat.example.org", "chat.example.org:0", "chat.example.org:70000", "a b",
     "chat.example.org:", "[::1", "[nothost]:80", "host/path", "-bad-.example", "x:y"],
)  # fmt: skip
def test_a_bad_public_address_is_refused_at_start(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={}, overrides={"ws": {"public_address": value}})
    assert info.value.field == "ws.public_address"


# -- settings ------------------------------------------------------------------------


async def test_get_shows_the_origins_names_beside_the_seeds(daemon: RunningDaemon) -> None:
    with trio.fail_after(10):
        async with daemon.admin(auth=AUTH) as admin:
            body = (await admin.get("/api/server/", headers=XHR)).json()
    assert (body["persistence"], body["enablePersistence"]) == (True, True)
    assert (body["archive"], body["archiveMode"]) == (False, False)
    assert (body["announceWhitelist"], body["announceWhiteList"]) == (False, False)
    assert body["sessionUserLimit"] == 100
    assert body["logpurgedays"] == 90
    assert "ignored" not in body


async def test_the_pages_put_applies_known_names_and_lists_the_rest(daemon: RunningDaemon) -> None:
    # What the settings page sends after one debounce window: text fields as strings,
    # checkboxes as booleans, and names leosuite has no setting for.
    body = {
        "sessionCountLimit": "25",
        "sessionUserLimit": " 7 ",
        "persistence": False,
        "archive": True,
        "logpurgedays": "30",
        "ruleText": "be nice",
        "forceNsfm": True,
        "autoResetThreshold": "10MB",
    }
    core = daemon.ctx.chat.core
    with trio.fail_after(20):
        async with daemon.admin(auth=AUTH) as admin:
            answer = await put_settings(admin, body)
            assert answer.status_code == 200, answer.text
            got = answer.json()
            again = (await admin.get("/server")).json()
    assert got["ignored"] == ["logpurgedays", "ruleText", "forceNsfm", "autoResetThreshold"]
    assert {k: v for k, v in got.items() if k != "ignored"} == again
    assert (again["sessionCountLimit"], again["sessionUserLimit"]) == (25, 7)
    assert (again["persistence"], again["enablePersistence"]) == (False, False)
    assert (again["archive"], again["archiveMode"]) == (True, True)
    assert again["logpurgedays"] == 90  # read-only here
    limits = core.limits
    assert (limits.session_count_limit, limits.enable_persistence) == (25, False)
    assert limits.default_max_users == 7
    assert core.create("fresh", None, founder_name="admin").max_user_count == 7
    rows = await daemon.ctx.db.call(lambda conn: kv.items(conn, "server_settings."))
    # stored under the seed's names, nothing for the ignored ones
    assert rows == {
        "server_settings.sessionCountLimit": "25",
        "server_settings.sessionUserLimit": "7",
        "server_settings.enablePersistence": "false",
        "server_settings.archiveMode": "true",
    }


async def test_a_bad_known_value_refuses_the_whole_put(daemon: RunningDaemon) -> None:
    core = daemon.ctx.chat.core
    with trio.fail_after(30):
        async with daemon.admin(auth=AUTH) as admin:
            before = (await admin.get("/server")).json()
            for body, name in [
                (
                    {"sessionCountLimit": "abc", "persistence": False, "bogus": 1},
                    "sessionCountLimit",
                ),
                ({"persistence": "maybe", "sessionCountLimit": "5"}, "persistence"),
                ({"archive": None}, "archive"),
                ({"sessionCountLimit": "999999999"}, "sessionCountLimit"),
                ({"sessionCountLimit": "-1"}, "sessionCountLimit"),
                ({"sessionCountLimit": "1e2"}, "sessionCountLimit"),
                ({"sessionCountLimit": "\uff12\uff15"}, "sessionCountLimit"),  # fullwidth digits
                ({"sessionUserLimit": "0"}, "sessionUserLimit"),
                ({"sessionUserLimit": 100_001}, "sessionUserLimit"),
                ({"persistence": True, "enablePersistence": False}, "enablePersistence"),
                ({"archiveMode": True, "archive": 1}, "archive"),
                ({"idleTimeLimit": "soon", "ruleText": "x"}, "idleTimeLimit"),
            ]:
                response = await put_settings(admin, body)
                message = assert_admin_error(response, 400)
                assert message.startswith(name), (body, message)
            assert (await admin.get("/server")).json() == before
            same = await put_settings(admin, {"persistence": False, "enablePersistence": False})
            assert same.status_code == 200, same.text
    assert core.limits.enable_persistence is False
    assert core.limits.session_count_limit == 100


async def test_hostile_bodies(daemon: RunningDaemon) -> None:
    many = {f"unknown{i}": i for i in range(500)}
    long_name = "k" * 10_000
    deep = b'{"sessionCountLimit": 5, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with trio.fail_after(30):
        async with daemon.admin(auth=AUTH) as admin:
            listed = await put_settings(admin, {long_name: 1, **many, "sessionCountLimit": 9})
            assert listed.status_code == 200, listed.text
            ignored = listed.json()["ignored"]
            nested = await admin.put(
                "/server", content=deep, headers={"Content-Type": "application/json"}
            )
            for body in (b"[]", b'"x"', b"5", b"{", b"\xff"):
                bad = await admin.put(
                    "/server", content=body, headers={"Content-Type": "application/json"}
                )
                assert_admin_error(bad, 400)
    assert len(ignored) == 100
    assert ignored[0] == "k" * 99 + "…"
    assert ignored[1:] == [f"unknown{i}" for i in range(99)]
    assert daemon.ctx.chat.core.limits.session_count_limit == 9
    assert "nested too deeply" in assert_admin_error(nested, 400)


async def test_settings_need_an_admin(daemon: RunningDaemon) -> None:
    await add_account(daemon, "moderator", "MOD", "HOST", "WEB")
    with trio.fail_after(20):
        async with daemon.admin(auth=("moderator", PASSWORD)) as admin:
            assert_admin_error(await admin.get("/server", headers=XHR), 403)
            assert_admin_error(await put_settings(admin, {"sessionCountLimit": "1"}), 403)
            assert_admin_error(await admin.get("/status", headers=XHR), 403)
    assert daemon.ctx.chat.core.limits.session_count_limit == 100
