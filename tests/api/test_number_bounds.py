"""Every number a client sends is range-checked before it reaches the store: out of
range it is INVALID_ARGUMENT naming the field on the WebSocket (a float where a whole
number belongs is MODEL_EXCEPTION pointing at it), 400 naming the field on HTTP and on
the admin API (404 for an id in a path), never an internal error.

Property-based: hypothesis draws out-of-range values (huge, negative, past 64 bits,
fractional) for every call that takes a number, against one daemon for all examples;
hypothesis runs in a worker thread and each example is sent from the daemon's trio run.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leosuite.api.admin.log import MAX_PAGE as ADMIN_MAX_PAGE
from leosuite.api.ws.api import MAX_PAGE
from leosuite.api.ws.sessions import MAX_USERS_MAX
from tests.helpers.chat import chat, core_of
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, login
from tests.helpers.ws import WsClient, ws_client

INDEX_MAX = 2**53
#: Any longer wait is accepted and cut to ``servers.log_max_wait``.
WAIT_MAX = float("inf")
#: Values every call gets, whatever hypothesis draws.
EDGES = [2**63, 2**63 - 1, -(2**63) - 1, -(2**63), 2**64, 10**30, -1, -(10**30)]


@dataclass(frozen=True)
class Target:
    """One number of one call: where it goes, its bounds, and whether it is whole."""

    surface: str  # "ws", "http" or "admin"
    call: str
    field: str
    low: float
    high: float
    whole: bool = True

    def __repr__(self) -> str:
        return f"{self.surface}:{self.call}:{self.field}"


TARGETS = [
    Target("ws", "get_logs", "p", 0, MAX_PAGE),
    Target("ws", "get_logs", "ps", 1, 1000),
    Target("ws", "server.log", "readIndex", 0, INDEX_MAX),
    Target("ws", "server.log", "max", 0, INDEX_MAX),
    Target("ws", "server.log", "wait", 0, WAIT_MAX, whole=False),
    Target("ws", "console.subscribe", "from", 0, INDEX_MAX),
    Target("ws", "session.set", "maxUserCount", 1, MAX_USERS_MAX),
    Target("http", "/api/server_log", "readIndex", 0, INDEX_MAX),
    Target("http", "/api/server_log", "max", 0, INDEX_MAX),
    Target("http", "/api/server_log", "wait", 0, WAIT_MAX, whole=False),
    Target("admin", "GET /log", "page", 0, ADMIN_MAX_PAGE),
    Target("admin", "PUT /session", "maxUserCount", 1, MAX_USERS_MAX),
    Target("admin", "POST /banlist", "subnet", 0, 128),
    Target("admin", "DELETE /banlist", "id", 1, 2**63 - 1),
    Target("admin", "GET /accounts", "id", 1, 2**63 - 1),
]


def out_of_range(target: Target) -> st.SearchStrategy[float]:
    if not target.whole:  # JSON has no infinity: only the lower bound can be passed
        return st.floats(max_value=target.low, exclude_max=True, allow_infinity=False)
    low, high = int(target.low), int(target.high)
    values: list[st.SearchStrategy[Any]] = [
        st.integers(max_value=low - 1),
        st.integers(min_value=high + 1),
        st.sampled_from([v for v in EDGES if not low <= v <= high]),
    ]
    # A fraction where a whole number belongs.
    values.append(st.floats(allow_nan=False, allow_infinity=False).filter(_fractional))
    return st.one_of(values)


def _fractional(value: float) -> bool:
    return not value.is_integer()


CASES = st.sampled_from(TARGETS).flatmap(lambda t: st.tuples(st.just(t), out_of_range(t)))

Send = Callable[[Target, float], Awaitable[None]]


class Surfaces:
    """Sends one value to one target and checks the answer."""

    def __init__(
        self, ws: WsClient, http: httpx.AsyncClient, admin: httpx.AsyncClient, session: int
    ) -> None:
        self.ws = ws
        self.http = http
        self.admin = admin
        self.session = session

    async def check(self, target: Target, value: float) -> None:
        if target.surface == "ws":
            await self._ws(target, value)
        elif target.surface == "http":
            await self._http(target, value)
        else:
            await self._admin(target, value)

    async def _ws(self, target: Target, value: float) -> None:
        content: dict[str, Any] = {target.field: value}
        if target.call == "server.log":
            content = {"server": "s1", "readIndex": 0, **content}
        elif target.call == "console.subscribe":
            content["server"] = "s1"
        elif target.call == "session.set":
            content["session"] = str(self.session)
        answer = await self.ws.call(target.call, content)
        if isinstance(value, float) and target.whole:
            assert answer["status_code"] == 11, (target, value, answer)  # MODEL_EXCEPTION
            [error] = answer["content"]["errors"]
            assert error["source"]["pointer"] == f"/content/{target.field}"
        else:
            assert answer["status_code"] == 12, (target, value, answer)  # INVALID_ARGUMENT
            assert answer["content"] == {"field": target.field}

    async def _http(self, target: Target, value: float) -> None:
        body = {"server": "s1", "readIndex": 0, target.field: value}
        response = await self.http.post(target.call, json=body)
        assert response.status_code == 400, (target, value, response.text)
        answer = response.json()
        assert answer["error_type"] == "invalid"
        assert target.field in answer["error_message"]

    async def _admin(self, target: Target, value: float) -> None:
        number = repr(value) if isinstance(value, float) else str(value)
        if target.call == "GET /log":
            response = await self.admin.get("/log", params={"page": number})
        elif target.call == "PUT /session":
            body = {target.field: value}
            response = await self.admin.put(f"/session/{self.session}", json=body)
        elif target.call == "POST /banlist":
            response = await self.admin.post("/banlist", json={"ip": "10.9.9.9", "subnet": value})
        elif target.call == "DELETE /banlist":
            response = await self.admin.delete(f"/banlist/{number}")
        else:
            response = await self.admin.get(f"/accounts/{number}")
        answer = response.json()
        assert answer["status"] == "error", (target, value, answer)
        if target.field == "id":  # a number in the path names no such thing
            assert response.status_code == 404, (target, value, response.text)
        else:
            assert response.status_code == 400, (target, value, response.text)
            assert target.field in answer["message"]


async def test_out_of_range_numbers_are_invalid_arguments_on_every_surface(
    daemon: RunningDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    with trio.fail_after(120):
        async with (
            ws_client(daemon, login=True) as ws,
            daemon.http() as http,
            daemon.admin(headers={"Authorization": f"Basic {basic}"}) as admin,
            chat(daemon, "alice") as alice,
        ):
            http.headers["Authorization"] = f"Bearer {await login(http)}"
            await ws.ok("server.create", {"server": "s1", "type": "demo-game"})
            await alice.join("#lobby")
            [session] = [s.id for s in core_of(daemon).sessions.values() if s.name == "lobby"]
            surfaces = Surfaces(ws, http, admin, session)
            for target in TARGETS:
                for value in EDGES:
                    if not target.low <= value <= target.high:
                        await surfaces.check(target, value)

            @settings(
                max_examples=150,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(CASES)
            def property_holds(case: tuple[Target, float]) -> None:
                trio.from_thread.run(surfaces.check, *case)

            await trio.to_thread.run_sync(property_holds)
    internal = [r for r in caplog.records if r.name.startswith("leosuite")]
    assert not internal, caplog.text
