"""Store writes the run makes all the time, and what the store must show for them.

A write the daemon acknowledged (HTTP 200) must be there after every fault; one whose
answer never came (the connection was cut, a 5xx) may or may not be, and the next check
settles which; one the daemon refused (4xx) or never received (connection refused)
changed nothing. The writes: a new ``port`` on the settings ledgers, and servers
created (some of them started) and destroyed under names never used twice. Writes
and checks take turns (one lock), so a check never races a write under way.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field

import trio

from .daemon import Api, CallFailed
from .fleet import FAST_DEMO

__all__ = ["Ledger"]

#: The most churn servers alive at once.
CHURN_MAX = 4


@dataclass
class Churn:
    port: int
    #: True: must exist; False: must not; None: either (an answer never came).
    present: bool | None
    started: bool = False
    #: What happened to it (wall-clock time, event), the last few, for a violation's text.
    history: deque[str] = field(default_factory=lambda: deque(maxlen=8))

    def event(self, text: str) -> None:
        self.history.append(f"{time.strftime('%H:%M:%S')} {text}")


@dataclass
class Ledger:
    api: Api
    rng: random.Random
    ledgers: list[str]
    pause: tuple[float, float]
    lock: trio.Lock = field(default_factory=trio.Lock)
    #: Ledger server -> the ``port`` values it may show (one once acknowledged).
    ports: dict[str, set[int]] = field(default_factory=dict)
    churn: dict[str, Churn] = field(default_factory=dict)
    acknowledged: int = 0
    unanswered: int = 0
    _serial: int = 0

    def __post_init__(self) -> None:
        self.ports = {name: {1000} for name in self.ledgers}

    async def run(self) -> None:
        """Write until cancelled."""
        while True:
            await trio.sleep(self.rng.uniform(*self.pause))
            async with self.lock:
                roll = self.rng.random()
                live = [name for name, c in self.churn.items() if c.present]
                if roll < 0.15 and len(live) < CHURN_MAX:
                    await self._create()
                elif roll < 0.3 and live:
                    await self._destroy(self.rng.choice(live))
                else:
                    await self._set(self.rng.choice(self.ledgers))

    def _outcome(self, exc: CallFailed) -> bool | None:
        """False: nothing changed; None: it may have."""
        if not exc.sent or (exc.status is not None and 400 <= exc.status < 500):
            return False
        self.unanswered += 1
        return None

    async def _set(self, name: str) -> None:
        self._serial += 1
        value = 1000 + self._serial % 60000
        try:
            await self.api.call("server_settings", {"server": name, "set": {"port": value}})
        except CallFailed as exc:
            if self._outcome(exc) is None:
                self.ports[name].add(value)
            return
        self.acknowledged += 1
        self.ports[name] = {value}

    async def _create(self) -> None:
        self._serial += 1
        name = f"churn-{self._serial}"
        entry = self.churn[name] = Churn(port=1000 + self._serial % 60000, present=None)
        settings = {**FAST_DEMO, "port": entry.port}
        try:
            await self.api.call(
                "server_create", {"server": name, "type": "demo-game", "settings": settings}
            )
        except CallFailed as exc:
            entry.present = self._outcome(exc)
            entry.event(f"create failed ({exc})")
            return
        self.acknowledged += 1
        entry.present = True
        entry.event("create acknowledged")
        if self.rng.random() < 0.5:
            try:
                await self.api.call("server_start", {"server": name})
                entry.started = True
                entry.event("started")
            except CallFailed as exc:
                entry.event(f"start failed ({exc})")

    async def _destroy(self, name: str) -> None:
        entry = self.churn[name]
        try:
            await self.api.call("server_destroy", {"server": name, "delete_files": True})
        except CallFailed as exc:
            entry.event(f"destroy failed ({exc})")
            if exc.status == 404:
                return  # the next check says whether an acknowledged create was lost
            if self._outcome(exc) is None:
                entry.present = None
            return
        self.acknowledged += 1
        entry.present = False
        entry.event("destroy acknowledged")

    async def check(self) -> list[str]:
        """Compare the store with the acknowledged writes (the caller holds the lock);
        the violations. Raises :class:`CallFailed` when the daemon cannot be asked."""
        problems = []
        names = set((await self.api.call("server_list"))["servers"])
        for name, entry in self.churn.items():
            if entry.present is True and name not in names:
                problems.append(f"server {name}: missing ({'; '.join(entry.history)})")
            elif entry.present is False and name in names:
                problems.append(f"server {name}: still listed ({'; '.join(entry.history)})")
            if name in names and entry.present is not False:
                port = await self._port(name)
                if port != entry.port:
                    problems.append(f"server {name}: port {port}, created with {entry.port}")
            if entry.present is not (name in names):
                entry.event("listed" if name in names else "not listed")
            entry.present = name in names
        for name, allowed in self.ports.items():
            port = await self._port(name)
            if port not in allowed:
                problems.append(f"server {name}: port {port}, expected one of {sorted(allowed)}")
            self.ports[name] = {port} if port is not None else allowed
        return problems

    async def _port(self, name: str) -> int | None:
        values = await self.api.call("server_settings", {"server": name})
        for item in values:
            if item["name"] == "port":
                return int(item["value"])
        return None
