"""Drawpile's admin tools as they talk to the admin listener: ``WebAdmin`` sends exactly
what dpwebadmin's ``src/api/index.js`` sends (``REACT_APP_APIROOT=/api``, Basic
credentials, ``X-Requested-With``, ``JSON.stringify`` bodies, ``encodeURIComponent``
paths); chat members made through the chat core with a recording ``deliver``."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import httpx

from leosuite.community.models import ChatEvent, Member
from leosuite.store import audit as audit_table
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon

AUTH = ("admin", ADMIN_PASSWORD)
API = "/api"


def encode(value: Any) -> str:
    """JavaScript's ``encodeURIComponent``."""
    return quote(str(value), safe="-_.!~*'()")


class WebAdmin:
    """dpwebadmin's API calls, one method each, named as in ``src/api/index.js``."""

    def __init__(self, client: httpx.AsyncClient, username: str, password: str) -> None:
        self.client = client
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.auth = {"Authorization": f"Basic {token}"}

    async def get(self, path: str) -> httpx.Response:
        headers = {**self.auth, "X-Requested-With": "XMLHttpRequest"}
        return await self.client.get(API + path, headers=headers)

    async def send(self, path: str, method: str, body: Any) -> httpx.Response:
        headers = {
            **self.auth,
            "X-Requested-With": "XMLHttpRequest",
            "Content-Type": "application/json",
        }
        content = json.dumps(body, separators=(",", ":"))
        return await self.client.request(method, API + path, headers=headers, content=content)

    async def delete(self, path: str) -> httpx.Response:
        headers = {**self.auth, "X-Requested-With": "XMLHttpRequest"}
        return await self.client.delete(API + path, headers=headers)

    async def getSessions(self) -> httpx.Response:
        return await self.get("/sessions/?v=2")

    async def changeSessions(self, changes: Any) -> httpx.Response:
        return await self.send("/sessions", "PUT", changes)

    async def getSession(self, sid: str) -> httpx.Response:
        return await self.get(f"/sessions/{sid}")

    async def changeSession(self, sid: str, changes: Any) -> httpx.Response:
        return await self.send(f"/sessions/{sid}", "PUT", changes)

    async def terminateSession(self, sid: str, quiet: bool) -> httpx.Response:
        return await self.delete(f"/sessions/{sid}{'?quiet=true' if quiet else ''}")

    async def createInvite(self, sid: str, max_uses: Any, trust: bool, op: bool) -> httpx.Response:
        body = {"maxUses": max_uses, "trust": trust, "op": op}
        return await self.send(f"/sessions/{encode(sid)}/invites", "POST", body)

    async def revokeInvite(self, sid: str, secret: str) -> httpx.Response:
        return await self.delete(f"/sessions/{encode(sid)}/invites/{encode(secret)}")

    async def getUsers(self) -> httpx.Response:
        return await self.get("/users/?v=2")

    async def kickUserByUid(self, uid: Any) -> httpx.Response:
        return await self.delete(f"/users/{uid}")

    async def changeUser(self, sid: str, uid: Any, changes: Any) -> httpx.Response:
        return await self.send(f"/sessions/{sid}/{uid}", "PUT", changes)

    async def kickUserFromSession(self, sid: str, uid: Any) -> httpx.Response:
        return await self.delete(f"/sessions/{sid}/{uid}")

    async def connectChat(self, sid: str, message: str) -> httpx.Response:
        return await self.send(f"/sessions/{encode(sid)}/chat", "POST", {"message": message})

    async def disconnectChat(self, sid: str, message: str) -> httpx.Response:
        return await self.delete(f"/sessions/{encode(sid)}/chat?message={encode(message)}")

    async def sendChatMessage(self, sid: str, message: str, offset: int) -> httpx.Response:
        body = {"message": message, "offset": offset}
        return await self.send(f"/sessions/{encode(sid)}/chat", "PUT", body)

    async def getChatMessages(self, sid: str, offset: Any) -> httpx.Response:
        return await self.get(f"/sessions/{encode(sid)}/chat?offset={encode(offset)}")

    async def getExtBanList(self) -> httpx.Response:
        return await self.get("/extbans/")

    async def refreshExtBans(self) -> httpx.Response:
        return await self.send("/extbans/refresh", "POST", {})

    async def changeExtBan(self, ban_id: Any, changes: Any) -> httpx.Response:
        return await self.send(f"/extbans/{ban_id}", "PUT", changes)

    async def getListserverWhitelist(self) -> httpx.Response:
        return await self.get("/listserverwhitelist/")

    async def setListserverWhitelist(self, whitelist: Any) -> httpx.Response:
        return await self.send("/listserverwhitelist/", "PUT", whitelist)

    async def getLocks(self) -> httpx.Response:
        return await self.get("/locks/")

    async def putLocks(self, sections: list[str], password: str) -> httpx.Response:
        return await self.send("/locks/", "PUT", {"sections": sections, "password": password})


def web_admin(client: httpx.AsyncClient) -> WebAdmin:
    return WebAdmin(client, *AUTH)


class Someone:
    """A chat member made through the core, recording what it is delivered."""

    def __init__(self, daemon: RunningDaemon, name: str, *channels: str, **kw: Any) -> None:
        self.inbox: list[ChatEvent] = []
        self.gone: list[str] = []
        core = daemon.ctx.chat.core
        self.member = Member(
            name, ip="10.1.2.3", deliver=self._keep, disconnect=self.gone.append, **kw
        )
        core.connect(self.member)
        for channel in channels:
            core.join(self.member, channel)

    def _keep(self, event: ChatEvent) -> bool:
        self.inbox.append(event)
        return True

    def got(self, kind: str) -> list[ChatEvent]:
        return [e for e in self.inbox if e.kind == kind]

    def said(self, core: Any, channel: str, text: str) -> None:
        core.say(self.member, core.find(channel), text)


def session_id(daemon: RunningDaemon, name: str) -> str:
    session = daemon.ctx.chat.core.find(name)
    assert session is not None
    sid: str = session.id
    return sid


async def admin_audit(daemon: RunningDaemon) -> list[str]:
    """The messages of the ``Status`` entries the admin account made, oldest first."""
    entries = await daemon.ctx.db.call(
        lambda c: audit_table.page(c, offset=0, limit=1000, newest_first=False)
    )
    return [e.message for e in entries if e.topic == "Status" and e.user_name == "admin"]
