"""One chaos run's state and the steps every fault shares: start the daemon again and
time its recovery, then check every invariant."""

from __future__ import annotations

import random
import signal
from dataclasses import dataclass, field

import trio

from .checks import check_processes, integrity, none_left, recovery
from .daemon import Api, CallFailed, Daemon
from .ledger import Ledger
from .report import Tally
from .rundir import RunDir

__all__ = ["Run"]


@dataclass
class Run:
    daemon: Daemon
    rundir: RunDir
    tally: Tally
    rng: random.Random
    api: Api
    ledger: Ledger
    quick: bool
    #: ``daemon.on_exit = "leave"`` for this share of the daemon's starts.
    leave_share: float = 0.3
    #: Servers that run until stopped (no crash loop, no flood that ends).
    long_running: list[str] = field(default_factory=list)
    stops: list[float] = field(default_factory=list)
    startups: list[float] = field(default_factory=list)
    recoveries: list[float] = field(default_factory=list)

    async def start(self, what: str, on_exit: str | None = None) -> None:
        """Start the daemon (on_exit chosen at random unless given) and time its recovery."""
        if on_exit is None:
            on_exit = "leave" if self.rng.random() < self.leave_share else "stop"
        self.startups.append(await self.daemon.start(on_exit))
        await self.recovered(trio.current_time(), what)

    async def recovered(self, since: float, what: str) -> None:
        took = await recovery(self.daemon, since, what, self.tally)
        if took is not None:
            self.recoveries.append(took)

    async def ensure_running(self) -> None:
        """A daemon that ended by itself is a violation; it is started again."""
        if self.daemon.running:
            return
        code = self.daemon.returncode
        self.tally.violate(
            "exits", f"the daemon exited by itself (code {code}):\n{self.daemon.log_tail()}"
        )
        await self.start("an unexpected exit")

    async def stop(
        self, expected: set[int], what: str, limit: float, second: float | None = None
    ) -> None:
        """SIGTERM (and another one ``second`` seconds later); check how the stop ended
        and, when it stopped the servers, that none is left. A daemon still running
        after ``limit`` seconds is a violation, and is killed."""
        began = trio.current_time()
        self.daemon.send(signal.SIGTERM)
        if second is not None:
            await trio.sleep(second)
            if not self.daemon.running:
                expected = {0}  # the first stop was over before the second signal
            self.daemon.send(signal.SIGTERM)
        code = await self.daemon.wait_exit(limit)
        if code is None:
            self.tally.check("exits", [f"{what}: still running after {limit:.0f} s"])
            await self.daemon.kill()
            return
        self.stops.append(trio.current_time() - began)
        problems = [] if code in expected else [f"{what}: exit code {code}, expected {expected}"]
        if problems:
            problems[0] += "\n" + self.daemon.log_tail()
        self.tally.check("exits", problems)
        if self.daemon.on_exit == "stop":
            left = await none_left(self.rundir.data_dir, f"after {what} (on_exit=stop)")
            self.tally.check("unknown", left)

    async def check_all(self) -> None:
        """Every invariant that needs the daemon, then the store's integrity."""
        await self.ensure_running()
        async with self.ledger.lock:
            try:
                await check_processes(self.api, self.rundir.data_dir, self.tally)
                self.tally.check("writes", await self.ledger.check())
            except CallFailed as exc:
                if self.daemon.running:
                    self.tally.note(f"a check could not ask the daemon: {exc}")
        await integrity(self.rundir.data_dir / "leosuite.db", self.tally)

    async def final_stop(self) -> None:
        """Stop the daemon with ``on_exit = "stop"``; then no process may be left."""
        await self.ensure_running()
        if self.daemon.on_exit != "stop":
            await self.stop({0}, "SIGTERM (leave)", 40)
            await self.start("the final start", on_exit="stop")
        await self.stop({0}, "the final SIGTERM", 40)
        await integrity(self.rundir.data_dir / "leosuite.db", self.tally)
