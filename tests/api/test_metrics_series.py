"""The per-server series of ``/metrics`` across scrapes: a sample whose value held still
is the same object as the last scrape's (no allocation, and its family's text is not
written again), a changed value, state or owner is a new sample with the new value, the
console's byte count is the end the console watch saw, and a destroyed server leaves."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from leosuite.settings import Settings
from tests.helpers.daemon import RunningDaemon, make_settings
from tests.helpers.http import api_client
from tests.helpers.servers import command_settings

TOKEN = "scrape-token-0123456789abcdef"

Series = dict[tuple[str, str], Sample]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", metrics={"scrape_token": TOKEN})


def series(daemon: RunningDaemon) -> Series:
    """One collection of the daemon's registry: the per-server samples by family and
    server (the owners are those the last scrape looked up)."""
    metrics: list[Metric] = list(daemon.ctx.metrics.registry.collect())
    return {
        (s.name, s.labels["server"]): s
        for m in metrics
        if m.name.startswith("leosuite_server")
        for s in m.samples
    }


def scraped_value(text: str, name: str, server: str) -> float:
    """The value of ``name`` for ``server`` in an exposition (prometheus_client's parser)."""
    found = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels.get("server") == server
    ]
    assert len(found) == 1, (name, server, found)
    return found[0]


async def scraped_text(daemon: RunningDaemon) -> str:
    async with daemon.admin(headers={"Authorization": f"Bearer {TOKEN}"}) as admin:
        response: httpx.Response = await admin.get("/metrics")
    assert response.status_code == 200, response.text
    return response.text


async def test_samples_are_kept_while_their_values_hold(daemon: RunningDaemon) -> None:
    ctx = daemon.ctx
    with trio.fail_after(60):
        async with api_client(daemon) as api:
            await api.create("live", "command", command_settings("echo"))
            await api.create("idle", "command", command_settings("echo"))
            await api.ok("server_start", {"server": "live"})
            await api.wait_status("live", "running")
            await api.wait_log("live", b"ready")
            await scraped_text(daemon)  # looks the owners up

            first = series(daemon)
            second = series(daemon)
            assert first.keys() == second.keys()
            held = {key for key in first if first[key] is second[key]}
            # A running server's uptime moves; everything else held still.
            assert set(first) - held == {("leosuite_server_uptime_seconds", "live")}
            uptime = ("leosuite_server_uptime_seconds", "live")
            assert second[uptime].value > first[uptime].value
            # A server's series share one label dict.
            live = [s for (_, server), s in second.items() if server == "live"]
            plain = [s for s in live if set(s.labels) == {"server"}]
            assert len(plain) >= 5  # up, uptime, restarts, console bytes and readers
            assert all(s.labels is plain[0].labels for s in plain)

            # The echo reaches the console without the daemon reading it: the watch's
            # refresh is what the scrape reports, and it is the file's end.
            console = ctx.servers.console("live")
            before = console.known_end
            await api.ok("server_cmd", {"server": "live", "command": "hello"})
            while console.known_end < before + len(b"echo: hello\n"):
                await trio.sleep(0.02)
            third = series(daemon)
            bytes_key = ("leosuite_server_console_bytes_total", "live")
            assert third[bytes_key] is not second[bytes_key]
            assert third[bytes_key].value == console.known_end == console.end_index
            text = await scraped_text(daemon)
            total = "leosuite_server_console_bytes_total"
            assert scraped_value(text, total, "live") == console.end_index
            assert scraped_value(text, total, "idle") == ctx.servers.console("idle").end_index

            # A state change is a new state sample, with the new state only.
            await api.ok("server_stop", {"server": "live"})
            fourth = series(daemon)
            state = ("leosuite_server_state", "live")
            assert fourth[state] is not third[state]
            assert fourth[state].labels == {"server": "live", "state": "stopped"}
            assert fourth[("leosuite_server_up", "live")].value == 0
            assert (
                fourth[("leosuite_server_state", "idle")]
                is third[("leosuite_server_state", "idle")]
            )

            # Another owner is a new info sample; a destroyed server leaves every family.
            info = ("leosuite_server_info", "idle")
            ctx.metrics._state.owners = {}
            fifth = series(daemon)
            assert fifth[info] is not fourth[info]
            assert fifth[info].labels == {"server": "idle", "type": "command", "owner": ""}
            await api.ok("server_destroy", {"server": "idle", "delete_files": True})
            sixth = series(daemon)
            assert {server for _, server in sixth} == {"live"}
            text = await scraped_text(daemon)
            assert 'server="idle"' not in text
            assert scraped_value(text, "leosuite_server_info", "live") == 1
