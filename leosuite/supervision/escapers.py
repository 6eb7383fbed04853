"""A server's descendants that left its process group: found by a tag, stopped with it.

A server is stopped through its process group, but a descendant may leave the group
(``setsid``, ``setpgid``) and would outlive the stop. Every server process is spawned
with :data:`TAG_VARIABLE` in its environment (:func:`server_tag`: the server's name and
a digest of its console directory, so two daemons on one host never share a tag;
nothing secret), its descendants inherit it, and ``/proc/<pid>/environ`` shows the
environment a process started with whatever it did since. Once the server's process
has exited, :func:`stop_escapers` looks for the processes carrying the tag and gives
them the server's stop signal, then SIGKILL, each step bounded by the stop timeout,
looking again each round for strays forked meanwhile. Searches asked for while one
pass over ``/proc`` is under way share the next pass (:class:`_SharedSearch`): stopping
a thousand servers at once reads ``/proc`` a few times, not a thousand.

The tag alone is not trusted: a process counts only if it also runs as the server's
(real) user and started no earlier than the server's process (a descendant is never
older than its ancestor). A process that copies the tag but was running already, or
runs as another user, is left alone; one of the server's user started later could
signal the server itself anyway. The search reads ``/proc``, so it finds the same
processes whether they are children of the daemon (see :mod:`.reaper`) or orphans that
init took while the daemon was restarting. It cannot find a descendant that cleared
its environment (``env -i``) or changed its user before leaving the group. A cgroup
per server would find those too, but needs a cgroup hierarchy the daemon may write to,
which it often does not have; the tag needs nothing but ``/proc``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import trio

from leosuite.supervision.reaper import REAPER, read_stat

__all__ = [
    "ROUNDS",
    "TAG_VARIABLE",
    "Lineage",
    "find_escapers",
    "real_uid",
    "server_tag",
    "stop_escapers",
]

log = logging.getLogger(__name__)

#: The environment variable that names the server a process descends from.
TAG_VARIABLE = "LEOSUITE_SERVER_ID"
#: How many times the search runs during one stop (the stop signal, then SIGKILL twice).
ROUNDS = 3


def server_tag(name: str, directory: str | os.PathLike[str]) -> str:
    """``<name>:<digest>``: the server's name and 16 hex digits of its console directory."""
    digest = hashlib.sha256(os.fsencode(os.path.abspath(directory))).hexdigest()[:16]
    return f"{name}:{digest}"


def real_uid(pid: int) -> int | None:
    """The real uid of a process (``/proc/<pid>/status``); None when it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class Lineage:
    """What marks a server's descendants: its tag, its user, its process's start."""

    tag: str
    uid: int
    #: The server process: its group is stopped on its own, so its members are not searched.
    leader: int
    #: When the server process started, in clock ticks since boot.
    start: int

    @classmethod
    def of(cls, pid: int, start: int, tag: str) -> Lineage | None:
        """The lineage of the running server process ``pid``; None when it is gone."""
        uid = real_uid(pid)
        return None if uid is None else cls(tag=tag, uid=uid, leader=pid, start=start)


class Escaper(NamedTuple):
    pid: int
    start: int


class _Pinned(NamedTuple):
    pid: int
    start: int
    pidfd: int


def _carries(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return needle in environ.read().split(b"\0")
    except OSError:
        return False


def _candidates(lineage: Lineage) -> list[Escaper]:
    needle = f"{TAG_VARIABLE}={lineage.tag}".encode()
    me = os.getpid()
    found: list[Escaper] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        stat = read_stat(pid)
        if stat is None or stat.state in ("Z", "X", "x") or stat.start < lineage.start:
            continue
        if stat.pgid == lineage.leader:
            continue  # still in the server's group: the group's own stop reaches it
        if real_uid(pid) == lineage.uid and _carries(pid, needle):
            found.append(Escaper(pid, stat.start))
    return found


class Tagged(NamedTuple):
    """The live processes that carry one server's tag."""

    #: Session leaders (a server's own process is one), oldest first.
    leaders: list[Escaper]
    #: The rest: descendants, oldest first.
    others: list[Escaper]


def tagged_processes() -> dict[str, Tagged]:
    """Every live process that carries a server tag, by tag, with its real uid checked
    by the caller (blocking: reads ``/proc`` once). After a daemon restart this finds a
    server's process that was never recorded (the store could not be written) and what
    is left of one that ended meanwhile."""
    prefix = f"{TAG_VARIABLE}=".encode()
    me = os.getpid()
    found: dict[str, Tagged] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
        except OSError:
            continue
        tag = next((v[len(prefix) :] for v in variables if v.startswith(prefix)), None)
        stat = read_stat(pid) if tag is not None else None
        if tag is None or stat is None or stat.state in ("Z", "X", "x"):
            continue
        group = found.setdefault(tag.decode("utf-8", "replace"), Tagged([], []))
        (group.leaders if stat.session == pid else group.others).append(Escaper(pid, stat.start))
    for group in found.values():
        group.leaders.sort(key=lambda e: e.start)
        group.others.sort(key=lambda e: e.start)
    return found


def find_escapers(lineage: Lineage) -> list[Escaper]:
    """The live processes outside the server's group that descend from it (blocking:
    reads ``/proc``)."""
    return _candidates(lineage)


def _candidates_of(lineages: list[Lineage], servers: frozenset[int]) -> list[list[Escaper]]:
    """:func:`_candidates` of each lineage, from one pass over ``/proc``. A process in
    the group of a server process (``servers``, or a lineage's) is in that server's
    session, which no other server's descendant can join, and its own group's stop
    reaches it: its environment is not read."""
    prefix = f"{TAG_VARIABLE}=".encode()
    wanted: dict[bytes, list[int]] = {}
    for i, lineage in enumerate(lineages):
        wanted.setdefault(lineage.tag.encode(), []).append(i)
    earliest = min(lineage.start for lineage in lineages)
    leaders = {lineage.leader for lineage in lineages}
    me = os.getpid()
    found: list[list[Escaper]] = [[] for _ in lineages]
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        stat = read_stat(pid)
        if stat is None or stat.state in ("Z", "X", "x") or stat.start < earliest:
            continue
        if stat.pgid in servers or stat.pgid in leaders:
            continue  # in a server's own group: no other server's descendant
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
        except OSError:
            continue
        tags = {v[len(prefix) :] for v in variables if v.startswith(prefix)}
        uid: int | None = None
        for tag in tags:
            for i in wanted.get(tag, ()):
                lineage = lineages[i]
                if stat.start < lineage.start or stat.pgid == lineage.leader:
                    continue  # older than the server, or in its group (stopped with it)
                uid = real_uid(pid) if uid is None else uid
                if uid == lineage.uid:
                    found[i].append(Escaper(pid, stat.start))
    return found


def _pin_many(lineages: list[Lineage], servers: frozenset[int]) -> list[list[_Pinned]]:
    """The pinned escapers of each lineage, from one pass over ``/proc``."""
    return [_pinned(found) for found in _candidates_of(lineages, servers)]


class _SharedSearch:
    """Pins the escapers of every lineage asked for while a pass runs in the next pass
    (one pass at a time, run by the first caller; shielded, since its results hold
    descriptors that only their caller closes)."""

    def __init__(self) -> None:
        self._queue: list[tuple[Lineage, list[list[_Pinned]], trio.Event]] = []
        self._running = False

    async def pin(self, lineage: Lineage) -> list[_Pinned]:
        result: list[list[_Pinned]] = []
        done = trio.Event()
        self._queue.append((lineage, result, done))
        with trio.CancelScope(shield=True):
            if not self._running:
                await self._drain()
            await done.wait()
        return result[0]

    async def _drain(self) -> None:
        self._running = True
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    pinned = await trio.to_thread.run_sync(
                        _pin_many, [b[0] for b in batch], REAPER.leaders()
                    )
                except BaseException:
                    for _, result, done in batch:
                        result.append([])
                        done.set()
                    raise
                for (_, result, done), found in zip(batch, pinned, strict=True):
                    result.append(found)
                    done.set()
        finally:
            self._running = False
            left, self._queue = self._queue, []
            for _, result, done in left:  # the pass failed: nobody runs these now
                result.append([])
                done.set()


_SEARCH = _SharedSearch()


def _pinned(candidates: list[Escaper]) -> list[_Pinned]:
    """The escapers, each held by a pidfd opened before its start time is checked again
    (so a pid reused since the search is never signalled)."""
    pinned: list[_Pinned] = []
    for pid, start in candidates:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue
        stat = read_stat(pid)
        if stat is None or stat.start != start:
            os.close(pidfd)
            continue
        pinned.append(_Pinned(pid, start, pidfd))
    return pinned


def _send(target: _Pinned, sig: int, note: Callable[[str], None]) -> None:
    try:
        signal.pidfd_send_signal(target.pidfd, sig)
    except ProcessLookupError:
        pass
    except OSError as exc:
        note(f"cannot signal process {target.pid}: {exc.strerror or exc}")


async def _wait_exits(pinned: list[_Pinned], hurry: trio.Event | None) -> None:
    """Until every pinned process has exited, or ``hurry`` is set."""
    async with trio.open_nursery() as nursery:

        async def cut_short(hurry: trio.Event) -> None:
            await hurry.wait()
            nursery.cancel_scope.cancel()

        if hurry is not None:
            nursery.start_soon(cut_short, hurry)
        for target in pinned:
            await trio.lowlevel.wait_readable(target.pidfd)
        nursery.cancel_scope.cancel()


async def stop_escapers(
    lineage: Lineage,
    *,
    stop_signal: int,
    timeout: float,
    hurry: trio.Event,
    note: Callable[[str], None],
) -> list[int]:
    """Stop the server's escaped descendants; return their pids (empty: none found).

    ``stop_signal`` first (SIGKILL at once when ``hurry`` is set), then SIGKILL. The
    search runs before each round, :data:`ROUNDS` times at most, and each round waits
    up to ``timeout`` for the exits (``hurry`` cuts short the wait after the stop
    signal). What still runs after that is noted and left. ``note`` tells each step.
    """
    seen: dict[Escaper, None] = {}
    sig = stop_signal
    for _ in range(ROUNDS):
        pinned = await _SEARCH.pin(lineage)
        if not pinned:
            break
        try:
            seen.update((Escaper(p.pid, p.start), None) for p in pinned)
            if hurry.is_set():
                sig = signal.SIGKILL
            pids = ", ".join(str(p.pid) for p in pinned)
            note(
                f"sending {signal.Signals(sig).name} to {len(pinned)} process(es) that "
                f"left the process group: {pids}"
            )
            for target in pinned:
                _send(target, sig, note)
            with trio.move_on_after(timeout):  # only a polite signal is cut short
                await _wait_exits(pinned, hurry if sig != signal.SIGKILL else None)
        finally:
            for target in pinned:
                os.close(target.pidfd)
        sig = signal.SIGKILL
    else:
        left = await trio.to_thread.run_sync(find_escapers, lineage)
        if left:
            note(f"left running: {', '.join(str(e.pid) for e in left)} (could not be killed)")
    REAPER.wake()
    return [escaper.pid for escaper in seen]
