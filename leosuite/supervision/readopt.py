"""Finding each server's process again when the daemon starts, so that none runs twice.

The store records each running server's process (pid, start time, boot id). A record
is not always there: a start on a full disk runs the server without one. So the
processes carrying a server's tag (in their environment since the spawn) are looked at
too, once for all servers, keeping only those of the user the server runs as:

- the recorded process, if it still runs, is re-adopted; else a tagged session leader
  (the server's own process, never recorded) is, the newest one;
- any other tagged session leader of that server is a second copy: it is killed;
- with no process to adopt, what is left of the server (tagged descendants of a
  process that ended while the daemon was down) is killed, and the server is shown
  as having ended meanwhile (its restart policy then applies).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import trio

from ..errors import InvalidInput
from ..store import processes as process_table
from ..store.db import Database
from .escapers import Escaper, Tagged, real_uid, server_tag, tagged_processes
from .fleet import Fleet
from .handle import ProcessIdentity, boot_id
from .reaper import read_stat
from .run_as import resolve_user
from .supervisor import Supervisor

__all__ = ["readopt"]

log = logging.getLogger("leosuite.servers")


def _uid_of(sup: Supervisor) -> int | None:
    """The uid the server runs as; None when its user is gone."""
    if not sup.spec.user:
        return os.getuid()
    try:
        return resolve_user(sup.spec.user).uid
    except InvalidInput:
        return None


def _started_at(start_ticks: int) -> float:
    """Wall-clock time of a process start given in clock ticks since boot."""
    with open("/proc/uptime", "rb") as uptime:
        up = float(uptime.read().split()[0])
    return time.time() - up + start_ticks / os.sysconf("SC_CLK_TCK")


def _kill(process: Escaper, *, group: bool) -> None:
    """SIGKILL ``process`` (its whole group when ``group``) if it is still the same one."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except OSError:
        return
    try:  # the pidfd pins the pid: checked, it cannot name another process
        stat = read_stat(process.pid)
        if stat is None or stat.start != process.start:
            return
        with contextlib.suppress(OSError):
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    finally:
        os.close(pidfd)


async def readopt(db: Database, fleet: Fleet, log_dirs: Mapping[str, Path]) -> None:
    """Re-adopt, kill or mark ended each server's processes (``log_dirs``: the loaded
    servers and their console directories); see the module doc."""
    recorded = await db.call(process_table.list_all)
    tagged = await trio.to_thread.run_sync(tagged_processes)
    for name, directory in sorted(log_dirs.items()):
        sup = fleet.get(name)
        uid = _uid_of(sup)
        found = tagged.get(server_tag(name, directory), Tagged([], []))
        leaders = [p for p in found.leaders if uid is not None and real_uid(p.pid) == uid]
        others = [p for p in found.others if uid is not None and real_uid(p.pid) == uid]
        adopted: int | None = None
        entry = recorded.get(name)
        if entry is not None:
            identity = ProcessIdentity(
                pid=entry.pid, start_time=entry.start_time, boot_id=entry.boot_id
            )
            if await sup.adopt(identity, entry.started_at):
                adopted = entry.pid
                log.info("server %s: re-adopted pid %d (still running)", name, entry.pid)
            else:
                forget = partial(process_table.forget, server=name, pid=entry.pid)
                await db.call(forget)
        if adopted is None and leaders:
            newest = leaders[-1]
            identity = ProcessIdentity(pid=newest.pid, start_time=newest.start, boot_id=boot_id())
            started_at = _started_at(newest.start)
            if await sup.adopt(identity, started_at):
                adopted = newest.pid
                log.warning(
                    "server %s: re-adopted pid %d found by its tag (its start was not recorded)",
                    name,
                    newest.pid,
                )
                with contextlib.suppress(Exception):  # best effort: a full disk again
                    await db.call(
                        partial(
                            process_table.record,
                            entry=process_table.ProcessRecord(
                                server=name,
                                pid=newest.pid,
                                start_time=newest.start,
                                boot_id=identity.boot_id,
                                started_at=started_at,
                            ),
                        )
                    )
        for extra in leaders:
            if extra.pid != adopted:
                log.error("server %s: a second copy (pid %d) was running: killed", name, extra.pid)
                _kill(extra, group=True)
        if adopted is None:
            for leftover in others:
                _kill(leftover, group=False)
            swept = await fleet.limits.sweep(name)  # its cgroup holds what the tag misses
            if swept:
                log.warning("server %s: killed %d process(es) left in its cgroup", name, swept)
            if entry is not None:
                log.warning("server %s: pid %d ended while the daemon was down", name, entry.pid)
                sup.exited_while_away()
