"""A client of ``/service`` that sends what GameConsole's web client sends: its headers,
its JSON (``JSON.stringify`` of the same objects, keys in the same order) and proofs made
the way its web worker makes them."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import httpx
import trio

from leosuite.api.http.gameconsole import solve
from tests.helpers.daemon import ADMIN_PASSWORD

#: The origin the client's page is served from in these tests.
CLIENT_ORIGIN = "http://console.example.org:8080"
#: What jQuery 1.11 sends with ``dataType: "json"`` from a page elsewhere (no
#: ``X-Requested-With`` on a cross-domain request).
ACCEPT = "application/json, text/javascript, */*; q=0.01"
JSON_UTF8 = "application/json; charset=utf-8"


def js_number(value: float) -> str:
    """A float from ``Math.random()`` as JavaScript prints it (``0.123...``)."""
    return repr(value)


def worker_proofs(seed: str, count: int) -> list[str]:
    """Proofs as the client's worker finds them: ``seed + Math.random()``, then a
    counter and another ``Math.random()`` until the SHA-512 hex starts with 4 zeros."""
    found: list[str] = []
    while len(found) < count:
        start = seed + js_number(random.random())
        temp = 0
        while True:
            candidate = start + str(temp) + js_number(random.random())
            temp += 1
            if hashlib.sha512(candidate.encode()).hexdigest().startswith("0000"):
                found.append(candidate)
                break
    return found


def stringify(value: Any) -> bytes:
    """``JSON.stringify``: compact, keys in insertion order, non-ASCII as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class GameConsole:
    """One browser page of the client: posts ``/service`` as jQuery does."""

    def __init__(self, client: httpx.AsyncClient, origin: str | None = CLIENT_ORIGIN) -> None:
        self.client = client
        self.origin = origin
        self.token = ""

    def headers(self, *, body: bool) -> dict[str, str]:
        headers = {"Accept": ACCEPT}
        if self.origin is not None:
            headers["Origin"] = self.origin
        if body:
            headers["Content-Type"] = JSON_UTF8
        return headers

    async def config(self) -> httpx.Response:
        return await self.client.get(
            "/service", params={"service": "config"}, headers=self.headers(body=False)
        )

    async def post(self, value: Any, service: str | None = None) -> httpx.Response:
        params = {"service": service} if service else None
        return await self.client.post(
            "/service", params=params, content=stringify(value), headers=self.headers(body=True)
        )

    async def seed(self) -> dict[str, Any]:
        response = await self.post({}, "password")
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def try_login(
        self, username: str, password: str, *, proofs: list[str] | None = None
    ) -> dict[str, Any]:
        seed = await self.seed()
        if proofs is None:
            proofs = solve(seed["random"], seed["proofs"])
        response = await self.post(
            {
                "password": password,
                "username": username,
                "random": seed["random"],
                "proofofwork": proofs,
            },
            "password",
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        answer = await self.try_login(username, password)
        token: str = answer["session_token"]
        self.token = token
        return token

    async def act(
        self, target: str, action: str, server: str | None = None, **extra: Any
    ) -> httpx.Response:
        """An envelope with the token, keys in the client's order."""
        body: dict[str, Any] = {"target": target, "action": action}
        if server is not None:
            body["server"] = server
        body["authkey"] = self.token
        body.update(extra)
        return await self.post(body)

    async def ok(self, target: str, action: str, server: str | None = None, **extra: Any) -> Any:
        response = await self.act(target, action, server, **extra)
        assert response.status_code == 200, response.text
        return response.json()

    async def overview(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self.ok("management", "status")
        return answer

    async def handle(self, name: str) -> str:
        """The key the status answer lists server ``name`` under."""
        for key, entry in (await self.overview()).items():
            if entry["smalldescription"] == name:
                return key
        raise AssertionError(f"{name} is not in the status answer")

    async def log(self, handle: str, read_index: int = 0) -> dict[str, Any]:
        """The client's console poll: no token, ``blocking`` false."""
        response = await self.post(
            {
                "target": "server",
                "action": "log",
                "server": handle,
                "blocking": False,
                "readIndex": read_index,
            }
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def wait_log(self, handle: str, needle: str, start: int = 0) -> str:
        """Poll the console (as the client does, keyless) until ``needle`` is in the
        text read; the escaped text (callers bound it with fail_after)."""

        text, index = "", start
        while needle not in text:
            answer = await self.log(handle, index)
            text += answer["log"]
            index = answer["nextReadIndex"]
            if answer["oldReadIndex"] == answer["nextReadIndex"]:
                await trio.sleep(0.05)
        return text
