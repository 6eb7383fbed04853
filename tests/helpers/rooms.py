"""A user of one room speaking ``POST /rooms`` as the origin's client does (``payload``
a JSON-encoded string), decrypting what it reads with the room's keys."""

from __future__ import annotations

import json
from typing import Any

import httpx

from leosuite.community.crypto import decrypt_payload, encrypt_payload

ROOM_PASS = "the-room-passphrase"  # known to the clients only; the server never sees it


class RoomClient:
    """One user of one room, speaking ``POST /rooms`` like the origin's client."""

    def __init__(self, http: httpx.AsyncClient, room: str, user: str, *, as_string: bool = True):
        self.http = http
        self.room = room
        self.user = user
        self.as_string = as_string
        self.sesskey = ""
        self.syskey = ""
        self.last = 0

    async def call(self, action: str, **payload: Any) -> httpx.Response:
        body = {"roomName": self.room, **payload}
        if action not in ("createRoom", "joinRoom"):
            body = {"user": self.user, "sesskey": self.sesskey, **body}
        wire: Any = json.dumps(body) if self.as_string else body
        return await self.http.post("/rooms", json={"action": action, "payload": wire})

    async def ok(self, action: str, **payload: Any) -> dict[str, Any]:
        response = await self.call(action, **payload)
        assert response.status_code == 200, (action, response.status_code, response.text)
        answer: dict[str, Any] = response.json()
        return answer

    async def error(self, action: str, status: int, **payload: Any) -> dict[str, Any]:
        response = await self.call(action, **payload)
        assert response.status_code == status, (action, response.status_code, response.text)
        answer: dict[str, Any] = response.json()
        assert answer["status"] == "error", answer
        assert answer["text"], answer
        return answer

    async def create(self, password: str) -> dict[str, Any]:
        return await self.ok("createRoom", owner=self.user, **{"pass": password})

    async def join(self, password: str) -> dict[str, Any]:
        answer = await self.ok("joinRoom", user=self.user, userpass=password)
        assert set(answer) == {"status", "last", "session", "syskey"}, answer
        assert answer["status"] == "ok"
        self.sesskey, self.syskey, self.last = answer["session"], answer["syskey"], answer["last"]
        return answer

    async def poll(self, **extra: Any) -> list[list[Any]]:
        """Poll from ``self.last``; returns the new messages and moves ``last`` on."""
        answer = await self.ok("pollMsg", mylast=self.last, **extra)
        if answer["status"] == "unchanged":
            assert answer["last"] == self.last
            return []
        assert answer["status"] == "updated", answer
        messages: list[list[Any]] = answer["messages"]
        ids = [m[0] for m in messages]
        assert ids == sorted(ids)
        assert ids[0] > self.last
        for msgid, text, timestamp, sender, to in messages:
            assert isinstance(msgid, int)
            assert isinstance(text, str)
            assert isinstance(timestamp, float)
            assert isinstance(sender, str)
            assert isinstance(to, str)
        self.last = ids[-1]
        return messages

    async def say(self, text: str, verb: str = "say") -> int:
        payload = encrypt_payload(ROOM_PASS, {"user": self.user, "text": text, "verb": verb})
        answer = await self.ok("sendMsg", msg=payload)
        assert answer["status"] == "ok"
        msgid: int = answer["msgid"]
        return msgid

    async def tell(self, to: str, text: str) -> int:
        payload = encrypt_payload(ROOM_PASS, {"user": self.user, "text": text, "verb": "say"})
        answer = await self.ok("sendDirectMsg", msg=payload, to=to)
        msgid: int = answer["msgid"]
        return msgid

    def read(self, message: list[Any]) -> tuple[str, str, str, str]:
        """(fromuser, touser, verb, text) of one message, decrypted as the client does:
        SYSTEM's with the syskey, everyone else's with the room passphrase."""
        sender, to = message[3], message[4]
        body = decrypt_payload(self.syskey if sender == "SYSTEM" else ROOM_PASS, message[1])
        if sender == "SYSTEM":
            assert body["user"] == "SYSTEM"
        return sender, to, body["verb"], body["text"]

    async def read_new(self, **extra: Any) -> list[tuple[str, str, str, str]]:
        return [self.read(m) for m in await self.poll(**extra)]
