"""All supervised servers: the long-lived nursery of their supervisors, autostart,
parallel graceful shutdown (or letting every server run on: :meth:`Fleet.leave`),
state-change fan-out, the one stats sampler, the one console watch, and the reaper
of the orphans that servers leave (the daemon is their subreaper while the fleet runs).

Each server is isolated: what one supervisor raises (its own recovery failing, a
shutdown that cannot signal) is logged with that server's name and never cancels the
others or the fleet.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from functools import partial

import trio

from leosuite.errors import Conflict, LeosuiteError, NotFound
from leosuite.supervision.cgroups_limits import ServerLimits
from leosuite.supervision.console_file import ConsoleFile
from leosuite.supervision.console_watch import ConsoleWatch
from leosuite.supervision.process import raise_nofile_limit
from leosuite.supervision.reaper import REAP_INTERVAL, REAPER
from leosuite.supervision.spec import LaunchSpec, StateChange, StateChanges
from leosuite.supervision.states import STOPPED_STATES, Backoff, State
from leosuite.supervision.stats import StatsSampler
from leosuite.supervision.stats_history import StatsHistory
from leosuite.supervision.stdin_fifo import StdinFifo
from leosuite.supervision.supervisor import ProcessBook, Supervisor

__all__ = ["IDLE_FACTOR", "KILL_WAIT", "Fleet"]

#: While nobody watches the live figures (or scrapes them), a pass runs every this many
#: stats intervals: a minute at the default, the history's spacing when unwatched.
IDLE_FACTOR = 30

#: How long a shutdown cut short waits for the SIGKILLed servers to exit.
KILL_WAIT = 5.0

log = logging.getLogger(__name__)


class Fleet:
    """Owns one :class:`Supervisor` task tree per server. Start :meth:`run` first."""

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.time,
        backoff: Backoff = Backoff(),  # noqa: B008 (frozen)
        stats_interval: float = 2.0,
        sampler: StatsSampler | None = None,
        command_max_bytes: int = 4096,
        raise_fd_limit: bool = True,
        book: ProcessBook | None = None,
        watch: ConsoleWatch | None = None,
        reap_interval: float = REAP_INTERVAL,
        limits: ServerLimits | None = None,
    ) -> None:
        self._now = now
        #: The resource limits and the cgroup driver (none: no cgroups).
        self.limits = limits or ServerLimits()
        self._reap_interval = reap_interval
        self._backoff = backoff
        self._stats_interval = stats_interval
        self._sampler = sampler or StatsSampler()
        #: The last hour of each server's samples (see :meth:`sample_stats_once`).
        self.history = StatsHistory(stats_interval, now, longest=stats_interval * IDLE_FACTOR)
        #: How many want live figures now (:meth:`watching_stats`), and the wake-up of
        #: the sampler when the first one comes.
        self._watchers = 0
        self._watched = trio.Event()
        #: When the last pass began; one pass at a time (the sampler keeps the last).
        self._last_pass = -math.inf
        self._pass_lock = trio.Lock()
        self._command_max_bytes = command_max_bytes
        self._raise_fd_limit = raise_fd_limit
        self._book = book
        #: Tells each server's console when its process wrote to it.
        self.watch = watch or ConsoleWatch()
        self._supervisors: dict[str, Supervisor] = {}
        self._consoles: dict[str, ConsoleFile] = {}
        self._pending: set[str] = set()
        #: Every server's state changes; see :meth:`subscribe`.
        self.changes = StateChanges()
        self.changes.add_listener(self._on_change)
        #: When a server that began running since the last pass gets its first figures.
        self._first_due = math.inf
        self._nursery: trio.Nursery | None = None
        self._closing = False
        #: Soft RLIMIT_NOFILE after start-up.
        self.nofile_limit: int | None = None

    async def run(self, *, task_status: trio.TaskStatus[Fleet] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the supervisors' nursery, the stats sampler and the reaper until cancelled."""
        if self._raise_fd_limit:
            self.nofile_limit = raise_nofile_limit()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.watch.run)
                await nursery.start(partial(REAPER.run, interval=self._reap_interval))
                nursery.start_soon(self._sample_stats)
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._closing = True
            self.changes.close()
            self.limits.close()

    # ------------------------------------------------------------ membership

    async def add(
        self, name: str, spec: LaunchSpec, console: ConsoleFile, *, stdin: StdinFifo | None = None
    ) -> Supervisor:
        """Create and start the supervisor of a new server (it stays stopped)."""
        if self._nursery is None or self._closing:
            raise Conflict("the fleet is not running")
        if name in self._supervisors or name in self._pending:
            raise Conflict(f"server {name!r} exists already")
        sup = Supervisor(
            name,
            spec,
            console,
            stdin=stdin,
            book=self._book,
            now=self._now,
            backoff=self._backoff,
            command_max_bytes=self._command_max_bytes,
            limits=self.limits,
        )
        self._pending.add(name)
        try:
            await self._nursery.start(self._supervise, sup)
        finally:
            self._pending.discard(name)
        self.watch.add(console)
        self._consoles[name] = console
        sup.changes.add_listener(self.changes.publish)
        self._supervisors[name] = sup
        return sup

    def set_book(self, book: ProcessBook) -> None:
        """Where servers added from now on record their live process."""
        self._book = book

    async def _supervise(
        self, sup: Supervisor, *, task_status: trio.TaskStatus[Supervisor]
    ) -> None:
        """Run one supervisor; an error escaping it ends that server only."""
        try:
            await sup.run(task_status=task_status)
        except Exception:
            log.exception("server %s: supervision ended by an internal error", sup.name)

    async def remove(self, name: str) -> None:
        """Stop the server (gracefully) and forget its supervisor."""
        sup = self.get(name)
        await sup.shutdown()
        sup.close()
        await sup.wait_closed()
        if self._supervisors.get(name) is sup:
            del self._supervisors[name]
            self.watch.remove(self._consoles.pop(name))
            self.history.forget(name)
            await self.limits.discard(name)

    def get(self, name: str) -> Supervisor:
        try:
            return self._supervisors[name]
        except KeyError:
            raise NotFound(f"no server {name!r}", field="server") from None

    def names(self) -> list[str]:
        return sorted(self._supervisors)

    def __iter__(self) -> Iterator[Supervisor]:
        return iter(list(self._supervisors.values()))

    def __len__(self) -> int:
        return len(self._supervisors)

    def __contains__(self, name: object) -> bool:
        return name in self._supervisors

    # ------------------------------------------------------------ lifecycle

    async def start_autostart(self) -> list[str]:
        """Start every server at rest whose spec says autostart, in parallel; return
        when each is spawned (or crashed trying) or installing: an install goes on in
        the fleet's nursery and never holds the daemon's readiness. Returns the names
        started or installing. One that runs already (re-adopted) or waits to restart
        is left as it is.

        Called once re-adoption is over: from then on the reaper also reaps the
        children found when the fleet started that were not re-adopted."""
        REAPER.release_inherited()
        if self._nursery is None:
            raise Conflict("the fleet is not running")
        started: list[str] = []

        async def start_one(sup: Supervisor, settled: trio.Event) -> None:
            try:
                await sup.request("start")
            except LeosuiteError as exc:
                log.warning("autostart of %s: %s", sup.name, exc)
                return
            except Exception:
                log.exception("autostart of %s failed", sup.name)
                return
            finally:
                settled.set()
            started.append(sup.name)

        async def settle(sup: Supervisor, settled: trio.Event) -> None:
            async with trio.open_nursery() as race:

                async def installing() -> None:
                    while not sup.installing:
                        await sup.wait_change()
                    started.append(sup.name)
                    race.cancel_scope.cancel()

                race.start_soon(installing)
                await settled.wait()
                race.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            for sup in self:
                if sup.spec.autostart and sup.state in STOPPED_STATES and sup.busy is None:
                    settled = trio.Event()
                    self._nursery.start_soon(start_one, sup, settled)
                    nursery.start_soon(settle, sup, settled)
        return sorted(set(started))

    async def shutdown(self) -> None:
        """Stop every server gracefully, in parallel, each within its own stop timeout
        (escalating to SIGKILL); return when no server process is left.

        Cancelled (the daemon's shutdown deadline, a second signal), it SIGKILLs every
        server still alive at once and waits up to :data:`KILL_WAIT` for the exits
        before the cancellation goes on.
        """
        self._closing = True

        async def shutdown_one(sup: Supervisor) -> None:
            try:
                await sup.shutdown()
            except Exception:  # its process is then ended when the supervisor closes
                log.exception("server %s: graceful stop failed", sup.name)

        try:
            async with trio.open_nursery() as nursery:
                for sup in self:
                    nursery.start_soon(shutdown_one, sup)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(KILL_WAIT):
                await self.kill_all()

    async def leave(self) -> None:
        """Let every server run on without the daemon: each supervisor ends without
        signalling its process, whose record stays for the next daemon to re-adopt."""
        self._closing = True
        for sup in self:
            sup.leave()
        for sup in self:
            await sup.wait_closed()

    def kill_now(self) -> None:
        """SIGKILL the process group of every live server process now (best effort)."""
        for sup in self:
            pgid = sup.pgid
            if pgid is not None:
                with contextlib.suppress(OSError):
                    os.killpg(pgid, signal.SIGKILL)

    async def kill_all(self) -> None:
        """SIGKILL every server still alive (pre-empting graceful stops, cancelling
        pending restarts); return when their processes have exited."""
        alive = [sup for sup in self if sup.state not in STOPPED_STATES]
        if not alive:
            return
        log.warning("killing %d server(s): %s", len(alive), ", ".join(s.name for s in alive))
        self.kill_now()

        async def kill_one(sup: Supervisor) -> None:
            try:
                await sup.request("force_kill")
            except Exception:
                log.exception("server %s: kill failed", sup.name)

        async with trio.open_nursery() as nursery:
            for sup in alive:
                nursery.start_soon(kill_one, sup)

    # ------------------------------------------------------------ events

    def subscribe(self, max_buffer: int = 256) -> trio.MemoryReceiveChannel[StateChange]:
        """Every server's state changes on one channel (drop-if-full, counted in
        ``changes.dropped``). Close it to unsubscribe."""
        return self.changes.subscribe(max_buffer)

    # ------------------------------------------------------------ stats

    async def sample_stats_once(self, *, cgroups: bool = True) -> None:
        """One pass over every live process group (in a worker thread); with
        ``cgroups``, a server in a cgroup is sampled from it (every process in it,
        whatever its process group), else from its process group like the others."""
        live = {sup.pgid: sup for sup in self if sup.pgid is not None}
        if not live:
            return
        now = trio.current_time()
        stats = await trio.to_thread.run_sync(self._sampler.sample, list(live), now)
        groups = (
            {sup.name: group for sup in live.values() if (group := sup.cgroup) is not None}
            if cgroups
            else {}
        )
        by_group = await trio.to_thread.run_sync(self.limits.sample, groups, now) if groups else {}
        for pgid, sup in live.items():
            if sup.pgid == pgid:  # still the same process
                sample = by_group.get(sup.name) or stats.get(pgid)
                sup.set_stats(sample)
                if sample is not None:
                    self.history.record(sup.name, sample)

    @contextlib.contextmanager
    def watching_stats(self) -> Iterator[None]:
        """While entered (a live ``stats`` subscriber), a pass runs every stats
        interval; with nobody in it, every :data:`IDLE_FACTOR` intervals."""
        self._watchers += 1
        self._watched.set()
        try:
            yield
        finally:
            self._watchers -= 1

    async def _sample_stats(self) -> None:
        """The passes: the history's sample of every running server each
        ``history.interval`` (one pass over the machine's processes), and more often
        only while someone watches the live figures (:meth:`watching_stats`). The
        cgroups' own files (several per server) are read only while someone watches;
        nobody watching, the one pass over ``/proc`` serves every server."""
        last = trio.current_time()
        while True:
            if self._watchers:
                await trio.sleep_until(last + self._stats_interval)
            else:
                self._watched = trio.Event()
                next_at = min(last + self.history.interval, self._first_due)
                with trio.move_on_at(next_at):
                    await self._watched.wait()  # the first watcher: a pass now
                if not self._watchers and trio.current_time() < next_at:
                    continue  # a server began running: its first pass is due sooner
            due = trio.current_time() >= self._first_due
            spacing = self._stats_interval if self._watchers else self.history.interval
            if (
                not due
                and self._last_pass > last
                and trio.current_time() - self._last_pass < spacing
            ):
                last = self._last_pass  # a scrape's pass came in between: count from it
                continue
            last = trio.current_time()
            await self._one_pass(cgroups=self._watchers > 0)

    def _on_change(self, change: StateChange) -> None:
        """A server that begins running has figures one stats interval later, watched
        or not (one pass for every server that began meanwhile)."""
        if change.new in (State.STARTING, State.RUNNING):
            due = trio.current_time() + self._stats_interval
            if due < self._first_due:
                self._first_due = due
                self._watched.set()

    async def fresh_stats(self) -> None:
        """Make the figures no older than a stats interval (a pass now unless one began
        within it): what a metrics scrape reads, however long nobody has watched."""
        if trio.current_time() - self._last_pass >= self._stats_interval:
            await self._one_pass(cgroups=True, unless_within=self._stats_interval)

    async def _one_pass(self, *, cgroups: bool, unless_within: float = 0.0) -> None:
        async with self._pass_lock:
            if trio.current_time() - self._last_pass < unless_within:
                return  # another caller's pass ran while this one waited for the lock
            self._last_pass = trio.current_time()
            self._first_due = math.inf
            try:
                await self.sample_stats_once(cgroups=cgroups)
            except OSError:
                log.exception("stats sampling failed")
