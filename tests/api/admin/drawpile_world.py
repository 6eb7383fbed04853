"""A daemon as Drawpile's admin tools find it, and their requests sent to it as the
tools send them.

The world: the admin listener, two chat members on real WebSockets in ``#lobby``
(``carol`` opened it and is its operator, ``bob`` joined after), and an account
``host1`` with the HOST flag. :func:`send` writes one :class:`Call` out as the tool's
HTTP client would; :func:`reads_missing` lists the fields the tool's code reads that
the answer lacks or has with another type.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from leosuite.community.core import ChatCore
from leosuite.store import accounts
from tests.api.admin.drawpile_reads import Read
from tests.api.admin.drawpile_requests import JSON_TYPE, NO_BODY, XRW, Call
from tests.helpers.accounts import add_account
from tests.helpers.chat import Chat, chat
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon

__all__ = ["World", "answer_of", "listed", "open_world", "reads_missing", "send"]


def basic(username: str, password: str) -> str:
    """``'Basic ' + btoa(unescape(encodeURIComponent(user + ':' + password)))``."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


CREDENTIALS = {
    "admin": basic("admin", ADMIN_PASSWORD),
    "wrong": basic("admin", "not-the-password"),
}


@dataclass
class World:
    daemon: RunningDaemon
    client: httpx.AsyncClient
    carol: Chat
    bob: Chat
    host1: int
    values: dict[str, str] = field(default_factory=dict)
    #: The answer to the call under test.
    response: httpx.Response | None = None

    @property
    def core(self) -> ChatCore:
        core: ChatCore = self.daemon.ctx.chat.core
        return core

    async def get(self, path: str) -> Any:
        """What a page reads: a dpwebadmin GET that must succeed."""
        response = await self.client.get(
            path, headers={"Authorization": CREDENTIALS["admin"], **XRW}
        )
        assert response.status_code == 200, f"GET {path} -> {response.status_code}"
        return response.json()

    async def fill(self, template: str) -> str:
        """``template`` with its placeholders, each as the tool's page would write it."""
        for name in ("sid", "uid", "user_uid", "account", "admin_account", "ban", "secret"):
            if "{" + name + "}" in template and name not in self.values:
                self.values[name] = await self._value(name)
        return template.format_map(self.values)

    async def _value(self, name: str) -> str:
        lobby = self.core.find("lobby")
        assert lobby is not None, "the session #lobby exists"
        if name == "sid":
            return lobby.id
        if name == "uid":
            bob = lobby.member_named("bob")
            assert bob is not None
            return str(bob.id)
        if name == "user_uid":
            users = listed(await self.get("/api/users/?v=2"), "users")
            bobs = [u for u in users if u.get("name") == "bob" and u.get("session") == lobby.id]
            assert bobs, "the Users page lists bob"
            return js_text(bobs[0].get("uid"))
        if name == "account":
            return str(self.host1)
        if name == "admin_account":
            admin = await self.daemon.ctx.db.call(lambda c: accounts.get_by_name(c, "admin"))
            return str(admin.id)
        if name == "ban":
            bans = listed(await self.get("/api/banlist/?v=2"), "bans")
            return js_text(bans[0].get("id") if bans else None)
        detail = await self.get(f"/api/sessions/{lobby.id}")
        invites = detail.get("invitelist") or [{}]
        return js_text(invites[0].get("secret"))


def js_text(value: Any) -> str:
    """A value in a JavaScript template string: ``undefined`` for a missing one."""
    return "undefined" if value is None else str(value)


def listed(answer: Any, key: str) -> Any:
    """The list a page shows: the answer, or its ``key`` when it is an object."""
    if key and isinstance(answer, dict):
        return answer.get(key)
    return answer


async def send(world: World, tool: str, call: Call) -> httpx.Response:
    """``call`` as ``tool``'s HTTP client sends it."""
    path = await world.fill(call.path)
    body = call.body
    if call.body_from:
        previous = await world.client.get(
            call.body_from, headers={"Authorization": CREDENTIALS["admin"], **XRW}
        )
        if previous.is_success and isinstance(previous.json(), dict):
            body = {**previous.json(), **body}
    headers = dict(call.headers)
    if call.credentials in CREDENTIALS:
        headers["Authorization"] = CREDENTIALS[call.credentials]
    content: bytes | None = None
    if tool == "dpwebadmin":
        headers.update(XRW)
        if body is not NO_BODY:  # JSON.stringify: compact, UTF-8
            headers.update(JSON_TYPE)
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    elif body is not NO_BODY:  # requests' json=: json.dumps with its default separators
        headers.update(JSON_TYPE)
        content = json.dumps(body).encode()
    return await world.client.request(call.method, path, headers=headers, content=content)


def answer_of(response: httpx.Response) -> Any:
    """The answer as the tool parses it (``response.json()``); a failure names the call."""
    try:
        return response.json()
    except ValueError:
        raise AssertionError(
            f"{response.request.method} {response.request.url.raw_path.decode()} -> "
            f"{response.status_code}, not JSON: {response.text[:200]!r}"
        ) from None


def _values_at(answer: Any, path: str) -> tuple[list[Any], str]:
    """The values at ``path`` in ``answer``, or what is missing on the way."""
    values = [answer]
    for part in [p for p in path.replace("[]", ".[]").split(".") if p]:
        found: list[Any] = []
        for value in values:
            if part == "[]":
                if not isinstance(value, list) or not value:
                    return [], "not a non-empty list"
                found.extend(value)
            elif not isinstance(value, dict) or part not in value:
                return [], "missing"
            else:
                found.append(value[part])
        values = found
    return values, ""


def reads_missing(answer: Any, reads: tuple[Read, ...]) -> list[str]:
    """One line per read that the answer does not satisfy."""
    problems = []
    for read in reads:
        values, missing = _values_at(answer, read.path)
        if missing == "missing" and read.optional:
            continue
        if missing:
            problems.append(f"{read.reader} reads {read.path or 'the answer'}: {missing}")
            continue
        wrong = [v for v in values if type(v) not in read.kinds]
        if wrong:
            kinds = "/".join(k.__name__ for k in read.kinds)
            problems.append(f"{read.reader} reads {read.path}: {wrong[0]!r} is not {kinds}")
    return problems


@asynccontextmanager
async def open_world(daemon: RunningDaemon) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(daemon.admin())
        carol = await stack.enter_async_context(chat(daemon, "carol"))
        await carol.join("#lobby")
        bob = await stack.enter_async_context(chat(daemon, "bob"))
        await bob.join("#lobby")
        host1 = await add_account(daemon, "host1", "HOST")
        yield World(daemon, client, carol, bob, host1)
