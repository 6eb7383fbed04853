"""Chat over WebSocket: a client that checks every frame the server sends (integer
``type``, float ``time``) and keeps what it read on the way; members made through the
chat core."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from leosuite.community.core import ChatCore
from leosuite.community.models import ChatEvent
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.ws import client_socket_leak_tolerated

Frame = dict[str, Any]


def chat_url(daemon: RunningDaemon, nick: str, token: str | None = None) -> str:
    url = f"{daemon.endpoints.ws}/chat/login/{quote(nick, safe='')}"
    return url + (f"?token={token}" if token else "")


def check_frame(message: str | bytes) -> Frame:
    """Every server message is a JSON object with an integer type and a float time."""
    assert isinstance(message, str), message
    frame: Frame = json.loads(message)
    assert type(frame["type"]) is int, frame
    assert type(frame["time"]) is float, frame
    return frame


class Chat:
    def __init__(self, ws: WebSocketConnection, nick: str) -> None:
        self.ws = ws
        self.nick = nick
        self.seen: list[Frame] = []  # read while looking for something else
        self.login: Frame = {}

    async def send(self, kind: int, **fields: Any) -> None:
        await self.ws.send_message(json.dumps({"type": kind, **fields}))

    async def receive(self) -> Frame:
        return check_frame(await self.ws.get_message())

    async def next(self, match: Callable[[Frame], bool] = lambda _f: True) -> Frame:
        """The first frame (already seen or arriving) that ``match``es."""
        for i, frame in enumerate(self.seen):
            if match(frame):
                return self.seen.pop(i)
        while True:
            frame = await self.receive()
            if match(frame):
                return frame
            self.seen.append(frame)

    async def expect(self, kind: int, **fields: Any) -> Frame:
        """The first frame of ``kind`` whose fields include ``fields``."""
        return await self.next(
            lambda f: f["type"] == kind and all(f.get(k) == v for k, v in fields.items())
        )

    async def error(self) -> str:
        message: str = (await self.expect(-1))["message"]
        return message

    async def join(self, channel: str) -> Frame:
        await self.send(4, channel=channel)
        return await self.expect(4, user=self.nick, channel=channel.lstrip("#"))

    async def closed(self) -> int | None:
        """Read until the server closes; its close code."""
        try:
            while True:
                self.seen.append(await self.receive())
        except ConnectionClosed as exc:
            return None if exc.reason is None else exc.reason.code


@asynccontextmanager
async def chat(daemon: RunningDaemon, nick: str, token: str | None = None,
               **kwargs: Any) -> AsyncIterator[Chat]:  # fmt: skip
    """A logged-in chat client that has read its own login broadcast."""
    async with open_websocket_url(chat_url(daemon, nick, token), **kwargs) as ws:
        client = Chat(ws, nick)
        client.login = await client.expect(2)  # its own login broadcast comes first
        assert token is not None or client.login["user"] == nick
        client.nick = client.login["user"]
        yield client


async def refused_at(url: str) -> str:
    """A login the server refuses: one type -1 error, then close 1008; its message."""
    with client_socket_leak_tolerated():  # the client is gone before it collects
        message = await _refused(url)
    return message


async def _refused(url: str) -> str:
    async with open_websocket_url(url) as ws:
        client = Chat(ws, "")
        error = await client.next()
        assert error["type"] == -1, error
        assert await client.closed() == 1008
        return str(error["message"])


async def refused_login(daemon: RunningDaemon, nick: str, token: str | None = None) -> str:
    return await refused_at(chat_url(daemon, nick, token))


@asynccontextmanager
async def chat_daemon(tmp_path: Path, **sections: dict[str, Any]) -> AsyncIterator[RunningDaemon]:
    """A daemon with the settings ``sections`` changed, for the block."""
    async with running_daemon(make_settings(tmp_path / "data", **sections)) as daemon:
        yield daemon


def core_of(daemon: RunningDaemon) -> ChatCore:
    core = daemon.ctx.chat.core
    assert isinstance(core, ChatCore)
    return core


def keep(inbox: list[ChatEvent]) -> Callable[[ChatEvent], bool]:
    """A member's ``deliver`` that appends every event to ``inbox``."""

    def deliver(event: ChatEvent) -> bool:
        inbox.append(event)
        return True

    return deliver
