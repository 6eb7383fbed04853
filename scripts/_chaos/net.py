"""Clients that misuse the daemon's listeners, bounded in count and time.

Connections come from many loopback addresses (127.0.0.2 and up: every 127/8 address
reaches a listener bound to 127.0.0.1), so the per-address caps do not stop them, as
they would not stop many real clients.

- :func:`storm`: many short connections at once: HTTP requests, WebSocket handshakes,
  admin requests without credentials, bare connects.
- :func:`exhaust`: idle connections held open until the daemon's descriptors run out,
  then all closed at once.
"""

from __future__ import annotations

import base64
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import trio

__all__ = ["exhaust", "storm"]

#: Connections per source address and listener (under every per-address cap).
PER_SOURCE = 40


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def _source(n: int) -> str:
    return f"127.0.{2 + n // 250}.{2 + n % 250}"


def _request(kind: str, host: str, port: int) -> bytes:
    head = f"Host: {host}:{port}\r\n"
    if kind == "http":
        return f"GET /api/auth/config HTTP/1.1\r\n{head}Connection: close\r\n\r\n".encode()
    if kind == "admin":
        return f"GET /status/ HTTP/1.1\r\n{head}Connection: close\r\n\r\n".encode()
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET / HTTP/1.1\r\n{head}Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def _one(kind: str, where: tuple[str, int], source: str, outcomes: Counter[str]) -> None:
    with trio.move_on_after(5) as scope:
        try:
            stream = await trio.open_tcp_stream(*where, local_address=source)
        except OSError:
            outcomes["connect failed"] += 1
            return
        async with stream:
            if kind == "connect":
                outcomes["connected"] += 1
                return
            try:
                await stream.send_all(_request(kind, *where))
                head = b""
                while b"\r\n" not in head:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    head += chunk
            except (OSError, trio.BrokenResourceError):
                outcomes["cut"] += 1
                return
            status = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else "no answer"
            outcomes[f"{kind} {status}"] += 1
    if scope.cancelled_caught:
        outcomes["timed out (5 s)"] += 1


async def storm(
    endpoints: dict[str, str], rng: random.Random, *, connections: int, concurrency: int
) -> Counter[str]:
    """``connections`` short connections, ``concurrency`` at a time; outcome counts."""
    targets = {
        "http": _address(endpoints["http"]),
        "ws": _address(endpoints["ws"]),
        "admin": _address(endpoints["admin"]),
    }
    outcomes: Counter[str] = Counter()
    limiter = trio.CapacityLimiter(concurrency)

    async def one(n: int) -> None:
        async with limiter:
            kind = rng.choice(["http", "http", "ws", "ws", "admin", "connect"])
            where = targets["http" if kind == "connect" else kind]
            await _one(kind, where, _source(n // 30), outcomes)

    async with trio.open_nursery() as nursery:
        for n in range(connections):
            nursery.start_soon(one, n)
    return outcomes


async def exhaust(
    endpoints: dict[str, str],
    *,
    connections: int,
    hold: float,
    probe: Callable[[], Awaitable[str]],
) -> tuple[Counter[str], str]:
    """Open up to ``connections`` idle connections to the HTTP and WebSocket listeners,
    hold them for ``hold`` seconds while ``probe()`` (an async callable returning a
    sentence) asks the API, then close them all; the outcome counts and the sentence."""
    targets = [_address(endpoints["http"]), _address(endpoints["ws"])]
    outcomes: Counter[str] = Counter()
    held: list[trio.SocketStream] = []
    limiter = trio.CapacityLimiter(64)

    async def one(n: int) -> None:
        async with limiter:
            where = targets[n % 2]
            with trio.move_on_after(3):
                try:
                    source = _source(n // (2 * PER_SOURCE))
                    held.append(await trio.open_tcp_stream(*where, local_address=source))
                    outcomes["held"] += 1
                    return
                except OSError as exc:
                    outcomes[f"connect failed ({exc.__class__.__name__})"] += 1
                    return
            outcomes["connect timed out (3 s)"] += 1

    try:
        async with trio.open_nursery() as nursery:
            for n in range(connections):
                nursery.start_soon(one, n)
        answer = f"no answer within {hold + 10:.0f} s"
        with trio.move_on_after(hold + 10):
            answer = await probe()
        await trio.sleep(max(0.0, hold - 1))
    finally:
        with trio.CancelScope(shield=True):
            for stream in held:
                with trio.move_on_after(0.5):
                    await stream.aclose()
    return outcomes, str(answer)
