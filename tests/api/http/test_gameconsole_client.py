"""GameConsole's web client (``public_html/js/main.js``) against leosuite: its requests sent
exactly (method, path, query, headers, body), from a page on another origin, and the
fields its code reads checked the way its code reads them."""

from __future__ import annotations

import html
import re
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from leosuite.settings import Settings
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings
from tests.helpers.gameconsole import (
    ACCEPT,
    CLIENT_ORIGIN,
    JSON_UTF8,
    stringify,
    worker_proofs,
)
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO, command_settings

#: The client's ``getLocation`` pattern.
LOCATION = re.compile(
    r"^((https?:)//(([^:/?#]*)(?::([0-9]+))?))?(/[^?#]*)(\?[^#]*|)(#.*|)$",
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "data",
        http={"gameconsole_service": True, "cors_origins": [CLIENT_ORIGIN]},
    )


class Page:
    """The client's state and its ``$.ajax`` calls, as main.js makes them."""

    def __init__(self, client: httpx.AsyncClient, main_end_point: str) -> None:
        self.client = client
        self.main_end_point = main_end_point
        self.session_token = ""

    async def ajax(self, method: str, url: str, data: Any = None) -> Any:
        headers = {"Accept": ACCEPT, "Origin": CLIENT_ORIGIN}
        content = None
        if data is not None:
            headers["Content-Type"] = JSON_UTF8
            content = stringify(data)
            # the browser's preflight first: the JSON content type is not a simple one
            preflight = await self.client.options(
                url,
                headers={
                    "Origin": CLIENT_ORIGIN,
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "content-type",
                },
            )
            assert preflight.status_code == 204
            assert preflight.headers["Access-Control-Allow-Origin"] == CLIENT_ORIGIN
            assert method in preflight.headers["Access-Control-Allow-Methods"]
            assert "content-type" in preflight.headers["Access-Control-Allow-Headers"].lower()
        response = await self.client.request(method, url, content=content, headers=headers)
        # the browser hands the answer to the page only with this; dataType "json"
        # calls success only for a 2xx whose body parses
        assert response.headers["Access-Control-Allow-Origin"] == CLIENT_ORIGIN
        assert response.status_code == 200, (url, data, response.status_code, response.text)
        return response.json()

    async def config(self) -> dict[str, Any]:
        data = await self.ajax("GET", self.main_end_point + "?service=config")
        endpoints = data["endpoints"]
        if len(endpoints) > 0:
            new, old = LOCATION.match(endpoints[0]), LOCATION.match(self.main_end_point)
            assert new is not None
            assert old is not None
            protocol = new.group(2) or old.group(2)
            host = new.group(3) or old.group(3)
            self.main_end_point = f"{protocol}//{host}{new.group(6)}"
        assert data["authmethod"] == "password"
        return data  # type: ignore[no-any-return]

    async def request_new_seed(self) -> tuple[str, int]:
        data = await self.ajax("POST", self.main_end_point + "?service=password", {})
        return data["random"], data.get("proofs") or 0

    async def login(self, username: str, password: str) -> dict[str, Any]:
        seed, required = await self.request_new_seed()
        proofs = worker_proofs(seed, required)
        data = await self.ajax(
            "POST",
            self.main_end_point + "?service=password",
            {"password": password, "username": username, "random": seed, "proofofwork": proofs},
        )
        self.session_token = data.get("session_token", "")
        return data  # type: ignore[no-any-return]

    async def refresh_servers(self) -> dict[str, Any]:
        return await self.ajax(  # type: ignore[no-any-return]
            "POST",
            self.main_end_point + "",
            {"action": "status", "target": "management", "authkey": self.session_token},
        )

    async def server_action(self, action: str, server: str, **extra: str) -> Any:
        body = {"target": "server", "action": action, "server": server}
        body["authkey"] = self.session_token
        body.update(extra)
        return await self.ajax("POST", self.main_end_point, body)

    async def fetch_console(self, server: str, read_index: int) -> dict[str, Any]:
        return await self.ajax(  # type: ignore[no-any-return]
            "POST",
            self.main_end_point,
            {
                "target": "server",
                "action": "log",
                "server": server,
                "blocking": False,
                "readIndex": read_index,
            },
        )


def set_status(status: Any, exitcode: Any) -> str:
    """The class ``setStatus`` gives a server's list entry."""
    if status == "stopped":
        return "error" if exitcode == "0" or exitcode is None else "offline"
    return "online"


def html_entities(text: str) -> str:
    """The client's ``htmlEntities``: escape, then ``\\n`` to ``<br>``, ``\\\\`` to ``\\``."""
    escaped = html.escape(text, quote=False).replace('"', "&quot;")
    return escaped.replace("\\n", "<br>").replace("\\\\", "\\")


async def follow(page: Page, server: str, needle: str) -> str:
    """``fetchConsoleTask`` until ``needle`` shows: the page's console text."""
    shown, read_index = "", 0
    while needle not in shown:
        data = await page.fetch_console(server, read_index)
        assert {"oldReadIndex", "nextReadIndex", "readIndex", "log"} <= set(data)
        assert isinstance(data["status"], str)
        if read_index not in (data["oldReadIndex"], 0):
            shown += "BUFFER OVERRUN"
        read_index = data["nextReadIndex"]
        if data["log"]:
            shown += html_entities(data["log"])
        if data["oldReadIndex"] == data["nextReadIndex"]:
            await trio.sleep(0.05)
    return shown


async def test_the_client_from_login_to_console(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with api_client(daemon) as api, daemon.http() as client:
            await api.create("world", "demo-game", FAST_DEMO)
            page = Page(client, f"{daemon.endpoints.http}/service")
            await page.config()
            assert page.main_end_point == f"{daemon.endpoints.http}/service"

            seed, required = await page.request_new_seed()
            assert re.fullmatch(r"[0-9a-f]{32}", seed)
            assert required >= 1
            answer = await page.login("admin", ADMIN_PASSWORD)
            assert len(page.session_token) == 64
            assert answer["screenusername"] == "admin"
            assert answer["servercreatepermission"] is True

            data = await page.refresh_servers()
            assert len(data) == 1
            index, element = next(iter(data.items()))
            assert (element.get("smalldescription") or index) == "world"
            assert element["owner"] == "admin"
            assert isinstance(element["status"], str)
            assert set_status(data[index]["state"], element.get("exitCode")) == "offline"

            await page.server_action("start", index)
            shown = await follow(page, index, "Server ready")
            assert "[leosuite] starting:" in shown
            assert "Server ready on port 25565. For help, type &quot;help&quot;<br>" in shown
            data = await page.refresh_servers()
            assert set_status(data[index]["state"], data[index].get("exitCode")) == "online"

            await page.server_action("command", index, command="say hi from the page")
            assert "[Server] hi from the page<br>" in await follow(page, index, "hi from the")

            # the client's "Stop server": six commands at once
            async with trio.open_nursery() as nursery:
                for line in ("stop", "quit", "exit", "stop", "quit", "exit"):
                    nursery.start_soon(partial(page.server_action, "command", index, command=line))
            await api.wait_status("world", "stopped")
            data = await page.refresh_servers()
            assert set_status(data[index]["state"], data[index].get("exitCode")) == "offline"

            await page.server_action("start", index)
            await api.wait_status("world", "running")
            await page.server_action("stop", index)  # "Kill server"
            await api.wait_status("world", "stopped")
            await page.server_action("start", index)
            await api.wait_status("world", "running")
            await page.server_action("forcestop", index)  # "Force kill server"
            await api.wait_status("world", "stopped")


async def test_a_crashed_server_shows_as_crashed(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with api_client(daemon) as api:
            await api.create("broken", "command", command_settings("crash", restart="never"))
            await api.ok("server_start", {"server": "broken"})
            await api.wait_status("broken", "crashed")
        async with daemon.http() as client:
            page = Page(client, f"{daemon.endpoints.http}/service")
            await page.config()
            await page.login("admin", ADMIN_PASSWORD)
            data = await page.refresh_servers()
            index = next(iter(data))
            assert set_status(data[index]["state"], data[index].get("exitCode")) == "error"


async def test_a_failed_login_sends_the_client_back_to_its_form(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.http() as client:
            page = Page(client, f"{daemon.endpoints.http}/service")
            await page.config()
            answer = await page.login("admin", "wrong-password")
            # no session_token: the client calls authPassword() (a new seed, the form)
            assert page.session_token == ""
            assert answer["error"]
            # submitted before its workers found a proof: the same
            seed, _ = await page.request_new_seed()
            early = await page.ajax(
                "POST",
                page.main_end_point + "?service=password",
                {
                    "password": ADMIN_PASSWORD,
                    "username": "admin",
                    "random": seed,
                    "proofofwork": [],
                },
            )
            assert "session_token" not in early
            await page.login("admin", ADMIN_PASSWORD)
            assert page.session_token
