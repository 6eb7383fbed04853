"""Drawpile's own admin tools against the real admin listener: dpwebadmin (every call of
its ``src/api/index.js``), drawpile-monitor's live calls and pubsrvproxy's reads, each
sent exactly as the tool sends it (see ``drawpile_requests``), then the fields the
tool's code reads checked in the answer, and what the call is for checked on the
daemon (the alert reached the members, the kicked member is gone, the setting holds)."""

from __future__ import annotations

from contextlib import nullcontext

import httpx
import pytest
import trio

from tests.api.admin.drawpile_effects import EFFECTS
from tests.api.admin.drawpile_requests import (
    DPWEBADMIN,
    MONITOR,
    PUBSRVPROXY,
    Call,
    by_name,
)
from tests.api.admin.drawpile_world import (
    World,
    answer_of,
    listed,
    open_world,
    reads_missing,
    send,
)
from tests.helpers.daemon import RunningDaemon
from tests.helpers.ws import client_socket_leak_tolerated

TOOLS = {"dpwebadmin": DPWEBADMIN, "monitor": MONITOR, "pubsrvproxy": PUBSRVPROXY}
CALLS = {tool: by_name(calls) for tool, calls in TOOLS.items()}
CASES = [(tool, call) for tool, calls in TOOLS.items() for call in calls]


def called(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url.raw_path.decode()} -> {response.status_code}"


@pytest.mark.parametrize(("tool", "call"), CASES, ids=[f"{t}: {c.name}" for t, c in CASES])
async def test_tool_request(daemon: RunningDaemon, tool: str, call: Call) -> None:
    # A member the call disconnects leaves trio-websocket's client socket behind.
    closes = call.effect == "bob_disconnected"
    with trio.fail_after(30), client_socket_leak_tolerated() if closes else nullcontext():
        await replay(daemon, tool, call)


async def replay(daemon: RunningDaemon, tool: str, call: Call) -> None:
    async with open_world(daemon) as world:
        for name in call.before:
            response = await send(world, tool, CALLS[tool][name])
            assert response.is_success, f"first {name!r}: {called(response)}"
        world.response = await send(world, tool, call)
        await check(world, call, world.response)


async def check(world: World, call: Call, response: httpx.Response) -> None:
    status = response.status_code
    if call.status is not None:
        assert status == call.status, f"{called(response)}: {response.text[:300]}"
    elif call.unsupported and call.method != "GET":
        # The page shows an error's message: one that says why, not the router's.
        if not response.is_success:
            message = answer_of(response).get("message")
            assert isinstance(message, str), called(response)
            assert status != 405, f"{called(response)}: {message}"
            assert "requested URL was not found" not in message, f"{called(response)}: {message}"
    else:
        assert response.is_success, f"{called(response)}: {response.text[:300]}"
    # The tools parse a success as JSON (dpwebadmin's changeExtBan as text) and read an
    # error's message.
    wanted = (response.is_success and not call.text_answer) or call.effect == "error_message"
    answer = answer_of(response) if wanted else None
    problems = reads_missing(listed(answer, call.listed), call.reads)
    assert not problems, f"{called(response)}:\n" + "\n".join(problems)
    if call.effect:
        await EFFECTS[call.effect](world, call, answer)


def test_every_function_of_the_web_admin_is_replayed() -> None:
    """Every exported function of dpwebadmin's ``src/api/index.js`` has a call here."""
    functions = {
        "tryLogin", "getStatus", "getServerSettings", "setServerSettings",
        "getListserverWhitelist", "setListserverWhitelist", "getSessions", "changeSessions",
        "getSession", "changeSession", "terminateSession", "unlistSession", "createInvite",
        "revokeInvite", "getUsers", "kickUserByUid", "changeUser", "kickUserFromSession",
        "connectChat", "disconnectChat", "sendChatMessage", "getChatMessages", "getAccounts",
        "createAccount", "changeAccount", "deleteAccount", "getBanList", "addBan", "deleteBan",
        "getExtBanList", "refreshExtBans", "changeExtBan", "getLogs", "getLocks", "putLocks",
    }  # fmt: skip
    assert {call.name.split(":")[0] for call in DPWEBADMIN} == functions
