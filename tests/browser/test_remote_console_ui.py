"""The console page, on node A's dashboard, of a server node B runs: the page reads the
console from B's WebSocket API with console tokens A mints (its bytes never pass
through A), pages older output in from B, and a command typed there goes to A, which
forwards it to B. A page of an origin that is no node's is still refused by B."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.helpers.postgres import find_bin_dir
from tests.helpers.security import handshake

from .conftest import (
    DashboardDaemon,
    new_page,
    open_logged_in,
    shot,
    start_dashboard_daemon,
    stop_dashboard_daemon,
)

expect = pytest.importorskip("playwright.sync_api").expect

# Fast heartbeats; no cgroups (two daemons of one test would share one root).
NODE_ENV = {
    "LEOSUITE_NODE_HEARTBEAT_INTERVAL": "0.2",
    "LEOSUITE_NODE_HEARTBEAT_TIMEOUT": "1.5",
    "LEOSUITE_LIMITS_ENABLED": "off",
}
#: A demo game that prints a line of its own every 0.3 s and is ready at once.
CHATTY = {"ready_delay": 0.1, "player_interval": 0.3}


@pytest.fixture
def two_nodes(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[DashboardDaemon, DashboardDaemon]]:
    if find_bin_dir() is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    url: str = request.getfixturevalue("postgres_url")
    env = {**NODE_ENV, "LEOSUITE_STORE_URL": url}
    a = start_dashboard_daemon(tmp_path / "a", LEOSUITE_NODE_NAME="node-a", **env)
    try:
        b = start_dashboard_daemon(tmp_path / "b", LEOSUITE_NODE_NAME="node-b", **env)
        try:
            yield a, b
        finally:
            stop_dashboard_daemon(b)
    finally:
        stop_dashboard_daemon(a)


def _until(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except httpx.HTTPStatusError:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_console_on_another_node_is_read_there(
    two_nodes: tuple[DashboardDaemon, DashboardDaemon], browser: Any
) -> None:
    a, b = two_nodes
    on_a, on_b = a.token(), b.token()
    create = {"server": "far", "type": "demo-game", "settings": CHATTY, "node": "node-b"}
    a.api("/api/server_create", create, on_a)
    status = {"server": "far"}
    _until(lambda: b.api("/api/server_status", status, on_b), "node-b to take the server on")
    a.api("/api/server_start", status, on_a)  # forwarded to node-b
    log = {"server": "far", "readIndex": 0}
    _until(
        lambda: "Server ready" in b.api("/api/server_log", log, on_b)["data"],
        "the server's console on node-b",
    )
    # Some output before the page opens: the page pages it in from node-b.
    a.api("/api/server_cmd", {"server": "far", "command": "say before-the-page"}, on_a)

    context, page = new_page(browser, a)
    with context:
        open_logged_in(page, a, "#/servers/far")
        rows = page.locator(".console .xterm-rows")
        expect(rows).to_contain_text("before-the-page", timeout=20_000)
        expect(page.locator(".console-node")).to_have_text("Read from node node-b")

        command = page.locator(".console-input")
        command.fill("say typed-on-node-a")
        command.press("Enter")
        expect(rows).to_contain_text("typed-on-node-a", timeout=20_000)
        expect(command).to_have_value("")
        shot(page, "remote-console")
        # The bytes came from node-b: node-a refuses (409) to stream a console it does
        # not have, and the page says where it reads it.
        page.problems.check()


def test_a_page_of_no_node_may_not_read_another_nodes_console(
    two_nodes: tuple[DashboardDaemon, DashboardDaemon],
) -> None:
    """Node-b accepts node-a's dashboard as an Origin (it is a node of the store), not
    any other page."""
    a, b = two_nodes

    def node_a_known() -> bool:
        nodes = b.api("/api/node_list", {}, b.token())
        return any(n["name"] == "node-a" for n in nodes["nodes"])

    def status(origin: str) -> int:
        return trio.run(partial(handshake, b.ws, origin=origin))[0]

    _until(node_a_known, "node-b to know node-a")
    assert status(a.http.rstrip("/")) == 101
    assert status(a.http.rstrip("/").upper().replace("HTTP", "http")) == 101
    assert status("http://evil.example") == 403
    assert status(a.http.rstrip("/").replace("http:", "https:")) == 403
    assert status("http://127.0.0.1:1") == 403
