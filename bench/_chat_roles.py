"""The child processes of ``chat_fanout.py``: chat members, the sender, the baseline.

Members and the sender are lean raw WebSocket clients on asyncio protocols (no task
and no JSON parse per message; frames are cut out of the stream by hand), so that the
client side costs a few microseconds per delivery and the server stays the
bottleneck. Each role speaks JSON lines on stdin/stdout with the orchestrator.

* members: ``--role members URL i,j,k...`` connects nicks ``m<i>``; commands ``join
  CHANNEL i,j,...`` (waits for each one's join echo), ``mark`` (starts a window:
  counts, clears latencies), ``end`` (counts and the window's latencies in µs).
* sender: ``--role sender URL``; ``join CHANNEL``, ``run RATE|sat WINDOW SECONDS``
  (a bounded offered rate, or saturated: at most WINDOW messages not yet echoed back
  to the sender, who is a member of the channel too).
* baseline: a minimal asyncio `websockets` chat with the seed-003 subset the bench
  uses: login by path, type 4 join (echoed to the channel), type 0 to the channel.

Each message's text starts ``@<unix time> <seq>``; a member's latency is its arrival
time minus that stamp (same machine, same clock).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import time
from typing import Any

import psutil  # type: ignore[import-untyped]

STAMP = b'"message":"@'
PAD = "x" * 80  # ~190 B frames, the size of a typical chat message


def _cpu() -> float:
    t = psutil.Process(os.getpid()).cpu_times()
    return float(t.user + t.system)


def client_frame(text: str, opcode: int = 0x1) -> bytes:
    """A masked client frame (an all-zero mask: valid, and no XOR to compute)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + data


class Stats:
    def __init__(self) -> None:
        self.count = 0
        self.closed = 0
        self.measuring = False
        self.latencies: list[int] = []


class RawWs(asyncio.Protocol):
    """One chat connection: handshake, then frames cut out of the byte stream."""

    def __init__(self, host: str, path: str, nick: str, stats: Stats) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n"
        ).encode()
        self.nick = nick
        self.stats = stats
        self.buf = b""
        self.upgraded = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.waiting: tuple[bytes, bytes, asyncio.Future[None]] | None = None
        self.echo: Any = None  # the sender's callback for its own messages

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.closed += 1
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("closed during the handshake"))

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(text))

    def join(self, channel: str) -> asyncio.Future[None]:
        done = asyncio.get_running_loop().create_future()
        user = f'"user":"{self.nick}"'.encode()
        self.waiting = (user, f'"channel":"{channel}"'.encode(), done)
        self.send(json.dumps({"type": 4, "channel": channel}))
        return done

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.upgraded.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if b" 101 " not in buf[: buf.find(b"\r\n")]:
                self.upgraded.set_exception(ConnectionError(buf[:200].decode(errors="replace")))
                return
            self.upgraded.set_result(None)
            buf = buf[end + 4 :]
        i, n = 0, len(buf)
        now = time.time()
        stats = self.stats
        while n - i >= 2:
            size, head = buf[i + 1] & 0x7F, 2
            if size == 126:
                if n - i < 4:
                    break
                size, head = int.from_bytes(buf[i + 2 : i + 4], "big"), 4
            elif size == 127:
                if n - i < 10:
                    break
                size, head = int.from_bytes(buf[i + 2 : i + 10], "big"), 10
            if n - i < head + size:
                break
            opcode = buf[i] & 0x0F
            start, i = i + head, i + head + size
            if opcode == 0x1:
                k = buf.find(STAMP, start, i)
                if k >= 0:
                    stats.count += 1
                    if stats.measuring or self.echo is not None:
                        k += len(STAMP)
                        j = buf.find(b" ", k, i)
                        if stats.measuring:
                            stats.latencies.append(int((now - float(buf[k:j])) * 1e6))
                        if self.echo is not None:
                            self.echo()
                elif self.waiting is not None:
                    user, channel, done = self.waiting
                    frame = buf[start:i]
                    if b'"type":4' in frame and user in frame and channel in frame:
                        self.waiting = None
                        done.set_result(None)
            elif opcode == 0x9 and self.transport is not None:  # ping: pong it back
                payload = buf[start:i]
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
        self.buf = buf[i:]


async def connect(url: str, nick: str, stats: Stats) -> RawWs:
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    path = f"/chat/login/{nick}"
    _, proto = await loop.create_connection(
        lambda: RawWs(host_port, path, nick, stats), host, int(port)
    )
    await asyncio.wait_for(proto.upgraded, 60)
    return proto


async def _lines() -> Any:
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line in ("", "quit"):
            return
        yield line


def _say(obj: Any) -> None:
    print(json.dumps(obj), flush=True)


async def members(url: str, indexes: list[int]) -> None:
    stats = Stats()
    conns: dict[int, RawWs] = {}
    gate = asyncio.Semaphore(20)  # a server's listen backlog may be 100

    async def one(i: int) -> None:
        async with gate:
            conns[i] = await connect(url, f"m{i}", stats)

    await asyncio.gather(*(one(i) for i in indexes))
    _say({"ready": len(conns)})
    async for line in _lines():
        if line.startswith("join "):
            _, channel, which = line.split(" ")
            chosen = [conns[int(i)] for i in which.split(",") if i]
            for k in range(0, len(chosen), 50):
                waits = [c.join(channel) for c in chosen[k : k + 50]]
                await asyncio.wait_for(asyncio.gather(*waits), 120)
            _say({"joined": len(chosen), "closed": stats.closed})
        elif line == "mark":
            stats.latencies = []
            stats.measuring = True
            _say({"count": stats.count, "cpu": _cpu(), "closed": stats.closed})
        elif line == "end":
            stats.measuring = False
            _say(
                {
                    "count": stats.count,
                    "cpu": _cpu(),
                    "closed": stats.closed,
                    "lat": stats.latencies,
                }
            )
            stats.latencies = []


async def _saturate(conn: RawWs, text: Any, window: int, seconds: float) -> tuple[int, int]:
    """Closed loop: keep ``window`` messages not yet echoed back to the sender."""
    counts = [0, 0]  # sent, echoed
    deadline = time.monotonic() + seconds
    done = asyncio.get_running_loop().create_future()

    def on_echo() -> None:
        counts[1] += 1
        if time.monotonic() < deadline:
            conn.send(text())
            counts[0] += 1
        elif counts[1] == counts[0] and not done.done():
            done.set_result(None)

    conn.echo = on_echo
    for _ in range(window):
        conn.send(text())
        counts[0] += 1
    await asyncio.sleep(seconds)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done, 30)
    return counts[0], counts[1]


async def _offer(conn: RawWs, text: Any, rate: float, seconds: float) -> tuple[int, int]:
    """Open loop at ``rate`` messages per second."""
    counts = [0, 0]

    def on_echo() -> None:
        counts[1] += 1

    conn.echo = on_echo
    start = time.monotonic()
    while (now := time.monotonic()) < start + seconds:
        due = int((now - start) * rate) + 1
        while counts[0] < due:
            conn.send(text())
            counts[0] += 1
        await asyncio.sleep(max(0.0, start + counts[0] / rate - time.monotonic()))
    await asyncio.sleep(1.0)  # the last echoes
    return counts[0], counts[1]


async def sender(url: str) -> None:
    stats = Stats()
    conn = await connect(url, "sender", stats)
    _say({"ready": 1})
    seq = 0
    channel = ""

    def text() -> str:
        nonlocal seq
        seq += 1
        message = f"@{time.time():.6f} {seq} {PAD}"
        return json.dumps({"type": 0, "dest": channel, "message": message})

    async for line in _lines():
        if line.startswith("join "):
            channel = line.split(" ")[1]
            await asyncio.wait_for(conn.join(channel), 120)
            _say({"joined": 1})
            continue
        _, mode, seconds = line.split(" ")
        if mode.startswith("sat"):
            sent, echoed = await _saturate(conn, text, int(mode[3:]), float(seconds))
        else:
            sent, echoed = await _offer(conn, text, float(mode), float(seconds))
        conn.echo = None
        _say({"sent": sent, "echoed": echoed, "closed": stats.closed})


def baseline() -> None:
    """A minimal asyncio `websockets` chat: login by path, type 4 join, type 0."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    prefix = "/chat/login/"
    channels: dict[str, set[ServerConnection]] = {}

    def encode(obj: dict[str, Any]) -> str:
        return json.dumps(obj, separators=(",", ":"))

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        if not path.startswith(prefix):
            await ws.close(1008, "not a chat path")
            return
        nick = path[len(prefix) :]
        joined: list[str] = []
        try:
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == 4:
                    channel = str(frame["channel"]).lstrip("#")
                    members = channels.setdefault(channel, set())
                    if ws not in members:
                        members.add(ws)
                        joined.append(channel)
                    event = {"type": 4, "channel": channel, "user": nick, "time": time.time()}
                    broadcast(members, encode(event))
                elif kind == 0:
                    channel = str(frame["dest"]).lstrip("#")
                    members = channels.get(channel, set())
                    if ws not in members:
                        error = {
                            "type": -1,
                            "message": f"join {channel} first",
                            "time": time.time(),
                        }
                        await ws.send(encode(error))
                        continue
                    event = {
                        "type": 0,
                        "dest": channel,
                        "message": frame["message"],
                        "user": nick,
                        "time": time.time(),
                    }
                    broadcast(members, encode(event))
        except ConnectionClosed:
            pass
        finally:
            for channel in joined:
                channels[channel].discard(ws)

    async def main() -> None:
        async with serve(
            handler, "127.0.0.1", 0, compression=None, max_size=2**20, backlog=1024
        ) as server:
            port = server.sockets[0].getsockname()[1] if server.sockets else 0
            _say({"url": f"ws://127.0.0.1:{port}"})
            async for _ in _lines():
                pass

    asyncio.run(main())


def main(argv: list[str]) -> None:
    role, *rest = argv
    if role == "members":
        asyncio.run(members(rest[0], [int(i) for i in rest[1].split(",") if i]))
    elif role == "sender":
        asyncio.run(sender(rest[0]))
    elif role == "baseline":
        baseline()
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main(sys.argv[1:])
