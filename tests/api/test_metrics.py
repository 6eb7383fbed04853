"""``GET /metrics`` on the admin listener, fetched over real HTTP and read with
prometheus_client's own parser: the values are what the daemon knows (servers, their
restarts and owners, logins, bans, requests by route pattern), label sets stay bounded
whatever paths are requested, and only ADMIN credentials or the scrape token get in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import trio
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from leosuite.api.metrics._registry import _Collected, _Texts
from leosuite.settings import Settings
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, running_daemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO, command_settings

TOKEN = "scrape-token-0123456789abcdef"
DOCS = Path(__file__).resolve().parents[2] / "docs"

Labels = frozenset[tuple[str, str]]
Samples = dict[str, dict[Labels, float]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "data",
        metrics={"scrape_token": TOKEN},
        servers={"backoff_initial": 0.05, "backoff_max": 0.1},
        http={"trusted_proxies": ["127.0.0.1"]},
    )


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    found = [v for k, v in samples.get(name, {}).items() if set(labels.items()) <= k]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


async def scrape(daemon: RunningDaemon, **kwargs: object) -> httpx.Response:
    async with daemon.admin(**kwargs) as admin:  # type: ignore[arg-type]
        return await admin.get("/metrics")


async def scraped(daemon: RunningDaemon) -> Samples:
    response = await scrape(daemon, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def test_metrics_are_what_the_daemon_knows(daemon: RunningDaemon) -> None:
    ctx = daemon.ctx
    with trio.fail_after(60):
        async with api_client(daemon) as api:
            await api.create("demo", "demo-game", FAST_DEMO)
            await api.ok("server_start", {"server": "demo"})
            await api.wait_status("demo", "running")
            crash = command_settings("crash", 3, restart="on-failure", max_restarts=1)
            await api.create("crashy", "command", crash)
            await api.ok("server_start", {"server": "crashy"})
            while (status := await api.status("crashy"))["restarts"] < 1 or status[
                "status"
            ] != "crashed":
                await trio.sleep(0.05)
            bogus = {"username": "admin", "password": "x", "random": "0" * 32, "proof_of_works": []}
            refused = await api.client.post("/api/auth/login", json=bogus)
            assert refused.status_code == 403
            # A banned address (behind a trusted proxy) is refused and counted.
            await ctx.bans.add("10.9.9.9")
            banned = await api.client.get("/api/health", headers={"X-Forwarded-For": "10.9.9.9"})
            assert banned.status_code == 403

            samples = await scraped(daemon)

            # Type and owner are on the info series only; every other one has the name.
            assert value(samples, "leosuite_server_info", server="demo") == 1
            info = {dict(k)["server"]: dict(k) for k in samples["leosuite_server_info"]}
            assert info == {
                "demo": {"server": "demo", "type": "demo-game", "owner": "admin"},
                "crashy": {"server": "crashy", "type": "command", "owner": "admin"},
            }
            for name, series in samples.items():
                if name.startswith("leosuite_server_") and name != "leosuite_server_info":
                    extra = {"state"} if name == "leosuite_server_state" else set()
                    assert all({k for k, _ in labels} == {"server", *extra} for labels in series)
            demo = {"server": "demo"}
            assert value(samples, "leosuite_server_up", **demo) == 1
            assert value(samples, "leosuite_server_state", **demo, state="running") == 1
            states = [dict(k)["state"] for k in samples["leosuite_server_state"]
                      if ("server", "demo") in k]  # fmt: skip
            assert states == ["running"]
            assert value(samples, "leosuite_server_uptime_seconds", **demo) > 0
            crashy = {"server": "crashy"}
            supervisor = ctx.servers.supervisor("crashy").status()
            assert value(samples, "leosuite_server_up", **crashy) == 0
            assert value(samples, "leosuite_server_state", **crashy, state="crashed") == 1
            assert value(samples, "leosuite_server_restarts_total", **crashy) == 1
            assert supervisor.restarts == 1
            assert value(samples, "leosuite_server_last_exit_code", **crashy) == 3
            console_end = ctx.servers.console("crashy").end_index
            assert value(samples, "leosuite_server_console_bytes_total", **crashy) == console_end
            assert console_end > 0

            assert value(samples, "leosuite_logins_total", result="failure") == (
                ctx.auth.failed_logins
            )
            assert ctx.auth.failed_logins >= 1
            assert value(samples, "leosuite_logins_total", result="success") >= 1
            assert value(samples, "leosuite_bans_hit_total") == ctx.bans.refusals == 1
            assert value(samples, "leosuite_ws_connections", listener="api") == 0
            assert value(samples, "leosuite_ws_connections", listener="chat") == 0
            assert value(samples, "leosuite_chat_members") == len(ctx.chat.core.members)
            assert value(samples, "leosuite_store_commit_duration_seconds_count") > 0
            assert value(samples, "process_resident_memory_bytes") > 0
            assert value(samples, "process_open_fds") > 0
            # Requests by route pattern: server_status was polled above.
            polled = value(
                samples,
                "leosuite_http_requests_total",
                listener="http",
                route="/api/server_status",
                method="POST",
                status="200",
            )
            assert polled >= 2
            assert value(
                samples,
                "leosuite_http_request_duration_seconds_count",
                listener="http",
                route="/api/server_status",
            ) == sum(
                v
                for k, v in samples["leosuite_http_requests_total"].items()
                if ("route", "/api/server_status") in k and ("listener", "http") in k
            )


async def test_hostile_paths_keep_the_label_set_bounded(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        async with daemon.http() as client:

            async def hostile(count: int, start: int) -> None:
                for i in range(start, start + count):
                    await client.get(f"/no-such-{i}/{'x' * i}")
                    await client.request(f"VERB{i}", f"/api/nothing-{i}")

            await scraped(daemon)  # the scrape's own series exists from here on
            await hostile(5, 0)
            before = await scraped(daemon)
            await hostile(40, 5)
            after = await scraped(daemon)
    series = set(after["leosuite_http_requests_total"])
    assert series == set(before["leosuite_http_requests_total"])
    routes = {dict(k)["route"] for k in series}
    methods = {dict(k)["method"] for k in series}
    assert not any("no-such" in r or "nothing" in r for r in routes), routes
    assert "(unmatched)" in routes
    assert "OTHER" in methods
    assert not any(m.startswith("VERB") for m in methods)
    unmatched_get = value(
        after,
        "leosuite_http_requests_total",
        listener="http",
        route="(unmatched)",
        method="GET",
        status="404",
    )
    assert (
        unmatched_get
        - value(
            before,
            "leosuite_http_requests_total",
            listener="http",
            route="(unmatched)",
            method="GET",
            status="404",
        )
        == 40
    )


async def test_scrapes_during_a_scrape_share_its_text(daemon: RunningDaemon) -> None:
    metrics = daemon.ctx.metrics
    lookups = 0

    async def owners() -> dict[int, str]:
        nonlocal lookups
        lookups += 1
        await trio.sleep(0)
        return {}

    bodies: list[bytes] = []

    async def one() -> None:
        bodies.append(await metrics.exposition(owners))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(one)
        assert lookups == 1
        assert len(bodies) == 3
        assert all(body is bodies[0] for body in bodies)
        assert "leosuite_ws_connections" in parse(bodies[0].decode())
        # Once written, the next scrape reads the state again.
        later = await metrics.exposition(owners)
    assert lookups == 2
    assert later is not bodies[0]


async def test_unchanged_families_reuse_their_text_and_the_whole_stays_exact(
    daemon: RunningDaemon,
) -> None:
    registry = daemon.ctx.metrics.registry
    texts = _Texts()
    with trio.fail_after(60):
        async with api_client(daemon) as api:
            await api.create("demo", "demo-game", FAST_DEMO)
            first = list(registry.collect())
            assert texts.write(first) == generate_latest(_Collected(first))
            await api.ok("server_start", {"server": "demo"})
            await api.wait_status("demo", "running")
            second = list(registry.collect())
    assert texts.write(second) == generate_latest(_Collected(second))
    changed = {m.name for m in second} - {m.name for m in first if m in second}
    assert {"leosuite_server_state", "leosuite_server_up"} <= changed
    assert "leosuite_server" not in changed  # the info series held still
    assert texts.write(second) == generate_latest(_Collected(second))


async def test_the_dashboard_and_the_docs_query_series_the_daemon_has(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(60):
        response = await scrape(daemon, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    # Every family has its TYPE line, samples or not; a histogram's series add suffixes.
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", response.text, re.MULTILINE):
        suffixes = ["_bucket", "_count", "_sum"] if kind == "histogram" else [""]
        names.update(name + suffix for suffix in suffixes)
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    queries += re.findall(r"```promql\n(.*?)```", (DOCS / "operations.md").read_text(), re.DOTALL)
    used = {m for q in queries for m in re.findall(r"\b(?:leosuite|process)_[a-z_]+", q)}
    assert "leosuite_server_info" in used
    assert used - names == set()


async def test_metrics_need_admin_credentials_or_the_scrape_token(daemon: RunningDaemon) -> None:
    with trio.fail_after(60):
        await add_account(daemon, "bob")
        nobody = await scrape(daemon)
        assert nobody.status_code == 401
        assert "leosuite_" not in nobody.text
        wrong = await scrape(daemon, headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401
        not_admin = await scrape(daemon, auth=("bob", PASSWORD))
        assert not_admin.status_code == 403
        admin = await scrape(daemon, auth=("admin", ADMIN_PASSWORD))
        assert admin.status_code == 200
        assert "leosuite_server_up" in admin.text or "leosuite_ws_connections" in admin.text
        by_token = await scraped(daemon)
        # The wrong token only: no credentials at all is not a failed attempt.
        assert value(by_token, "leosuite_admin_auth_failures_total") == 1
        foreign = await scrape(
            daemon, headers={"Authorization": f"Bearer {TOKEN}", "Host": "evil.example"}
        )
        assert foreign.status_code == 421


async def test_without_a_scrape_token_a_bearer_must_be_an_admin_token(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_daemon(make_settings(tmp_path / "data")) as daemon:
            guessed = await scrape(daemon, headers={"Authorization": "Bearer guessed"})
            assert guessed.status_code == 401
            async with api_client(daemon) as api:
                token = api.token
            by_session = await scrape(daemon, headers={"Authorization": f"Bearer {token}"})
            assert by_session.status_code == 200
            assert "process_open_fds" in by_session.text
