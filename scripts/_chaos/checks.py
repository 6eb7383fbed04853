"""The invariants a chaos run checks after every fault.

- Processes (:func:`check_processes`, while the daemon serves): a process that carries
  a server's tag while the daemon says that server is ``stopped``, ``crashed`` or in
  ``backoff`` (or has no such server), or a main process other than the one the daemon
  names, is unknown to the daemon; two main processes of one server are a server
  running twice. Only processes seen both before and after a status answer count, so
  a process that starts or ends during the check is never blamed.
- After a stop that stops servers (:func:`none_left`): no process of any server at all.
- The store (:func:`integrity`): ``PRAGMA integrity_check`` on a read-only connection.
- Recovery (:func:`recovery`): the first ``server_list`` answers within 1 s
  (``--recovery-limit``) of the daemon serving again (or of the fault ending), with the
  token it had before.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import trio

from .daemon import Api, CallFailed, Daemon
from .procs import Proc, alive, scan
from .report import Problem, Tally

__all__ = ["IDLE", "check_processes", "integrity", "none_left", "recovery"]

#: States in which a server has no process.
IDLE = frozenset({"stopped", "crashed", "backoff"})
#: How long a recovery is given before it is a violation for good.
RECOVERY_GIVE_UP = 15.0


async def _statuses(api: Api) -> dict[str, dict[str, Any]]:
    answer: dict[str, dict[str, Any]] = (await api.call("server_status"))["servers"]
    return answer


async def check_processes(api: Api, data_dir: Path, tally: Tally) -> None:
    """Check the unknown-process and running-twice invariants once (the daemon serves)."""
    before = {p.key for p in await trio.to_thread.run_sync(scan, data_dir)}
    first = await _statuses(api)
    procs = await trio.to_thread.run_sync(scan, data_dir)
    second = await _statuses(api)
    unknown: list[Problem] = []
    for proc in procs:
        if proc.key not in before:
            continue  # started during the check
        one, two = first.get(proc.server), second.get(proc.server)
        if one is None and two is None:
            text = f"{proc.server} is no server of the daemon, yet {proc.describe()}"
            unknown.append((proc.key, text))
        elif one is not None and two is not None:
            if one["status"] in IDLE and two["status"] in IDLE:
                unknown.append(
                    (proc.key, f"{proc.server} is {one['status']}, yet {proc.describe()}")
                )
            elif (
                proc.is_main
                and one["status"] == two["status"] == "running"
                and one["pid"] == two["pid"] != proc.pid
            ):
                text = (
                    f"{proc.server} runs as pid {one['pid']}, yet another main process: "
                    f"{proc.describe()}"
                )
                unknown.append((proc.key, text))
    twice: list[Problem] = []
    mains: dict[str, list[Proc]] = {}
    for proc in procs:
        if proc.is_main and alive(proc):
            mains.setdefault(proc.server, []).append(proc)
    for server, found in sorted(mains.items()):
        if len(found) > 1:
            status = second.get(server, {})
            text = f"{server} ({status.get('status')}, pid {status.get('pid')}): " + "; ".join(
                p.describe() for p in found
            )
            # The same stray copy beside each new one the daemon starts counts once.
            strays = [p for p in found if p.pid != status.get("pid")] or found
            twice.append(((server, frozenset(p.key for p in strays)), text))
    tally.check("unknown", unknown)
    tally.check("twice", twice)


async def none_left(data_dir: Path, why: str) -> list[Problem]:
    """After a stop that stops every server: the processes still there after a moment
    (a SIGKILLed process takes a little while to exit), each a violation."""
    left: list[Proc] = []
    for _ in range(60):  # 3 s
        left = await trio.to_thread.run_sync(scan, data_dir)
        if not left:
            break
        await trio.sleep(0.05)
    return [
        (("left", *proc.key), f"{why}: {proc.server}'s {proc.describe()} still runs")
        for proc in left
    ]


def _integrity(db_path: Path) -> str | None:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return None if rows == [("ok",)] else "; ".join(str(row[0]) for row in rows[:5])


async def integrity(db_path: Path, tally: Tally) -> None:
    """``PRAGMA integrity_check``; a store that cannot be opened is retried a few times."""
    error = "not checked"
    for _ in range(5):
        try:
            problem = await trio.to_thread.run_sync(_integrity, db_path)
        except sqlite3.Error as exc:
            error = f"cannot check the store: {exc}"
            await trio.sleep(0.5)
            continue
        tally.check("integrity", [] if problem is None else [f"integrity_check: {problem}"])
        return
    tally.check("integrity", [error])


async def recovery(daemon: Daemon, since: float, what: str, tally: Tally) -> float | None:
    """Time the first ``server_list`` answered after ``since`` (None, unchecked, when
    the daemon has exited); a token the daemon refuses after a restart is a lost store
    write."""
    api = Api(daemon, timeout=RECOVERY_GIVE_UP)
    try:
        with trio.move_on_after(RECOVERY_GIVE_UP):
            while True:
                try:
                    await api.call("server_list", relogin=False)
                except CallFailed as exc:
                    if exc.status == 403:
                        tally.violate("writes", f"{what}: the login token is refused: {exc}")
                        await daemon.login(str(daemon.http_url))
                        continue
                    if not daemon.running:
                        return None  # an exit, which the caller reports
                    await trio.sleep(0.02)
                    continue
                took = trio.current_time() - since
                late = (
                    []
                    if took <= tally.recovery_limit
                    else [f"{what}: first answer after {took:.2f} s"]
                )
                tally.check("recovery", late)
                return took
    finally:
        await api.aclose()
    tally.check("recovery", [f"{what}: no answer within {RECOVERY_GIVE_UP:.0f} s"])
    return None
