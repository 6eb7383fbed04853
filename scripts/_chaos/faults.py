"""The faults a chaos run injects, each bounded in time; each leaves the daemon serving
again (its recovery timed) for the checks that follow.

- ``kill -9``: the daemon dies; it is down for a moment (sometimes one server's main
  process dies meanwhile, leaving its children behind), then starts on the same data.
- ``SIGTERM``: a stop as ``daemon.on_exit`` says (stop: exit 0 and no process left;
  leave: exit 0, servers run on), then a start.
- ``double SIGTERM``: a second SIGTERM during the stop (exit 1, or 0 when the first
  stop was over already), then a start.
- ``reload``: SIGHUP; the same process serves the next generation.
- ``full disk``: the data directory's filesystem is filled for a few seconds.
- ``descriptor exhaustion``: idle connections beyond the daemon's descriptor limit.
- ``connection storm``: a burst of short connections to every listener.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable

import trio

from .daemon import Api, CallFailed
from .net import exhaust, storm
from .procs import scan
from .run import Run

__all__ = ["FAULTS", "WEIGHTS"]

#: The kinds of server whose main process may die while the daemon is down.
ORPHANING = ("forker", "escaper")


async def kill9(run: Run) -> None:
    await run.daemon.kill()
    await trio.sleep(run.rng.uniform(0.2, 1.5))
    if run.rng.random() < 0.3:
        victims = [
            p for p in scan(run.rundir.data_dir) if p.is_main and p.server.startswith(ORPHANING)
        ]
        if victims:
            victim = run.rng.choice(victims)
            os.kill(victim.pid, signal.SIGKILL)
            run.tally.note(
                f"kill -9 #{run.tally.faults['kill -9']}: {victim.server}'s main process "
                f"{victim.pid} was SIGKILLed while the daemon was down (its children live on)"
            )
            await trio.sleep(0.3)
    await run.start("kill -9")


async def sigterm(run: Run) -> None:
    limit = float(run.daemon.settings["LEOSUITE_DAEMON_SHUTDOWN_TIMEOUT"]) + 15
    await run.stop({0}, f"SIGTERM ({run.daemon.on_exit})", limit)
    await run.start("SIGTERM")


async def double_sigterm(run: Run) -> None:
    second = run.rng.uniform(0.05, 0.5)
    await run.stop({1}, f"double SIGTERM ({run.daemon.on_exit})", 25, second)
    await run.start("double SIGTERM")


async def reload(run: Run) -> None:
    daemon = run.daemon
    pid, generation = daemon.pid, int(daemon.endpoints.get("generation", 0))
    daemon.send(signal.SIGHUP)
    with trio.move_on_after(30) as waited:
        await daemon.wait_serving(
            lambda data: data.get("pid") == pid and int(data.get("generation", 0)) > generation
        )
    if waited.cancelled_caught:
        run.tally.check("exits", [f"reload: generation {generation + 1} not serving after 30 s"])
        await daemon.kill()
        await run.start("a reload that did not finish")
        return
    run.tally.check("exits")
    await run.recovered(trio.current_time(), "reload")


async def _probe(run: Run) -> str:
    """One ``server_list`` on a new connection, as a new client would make it."""
    api = Api(run.daemon)
    began = trio.current_time()
    try:
        await api.call("server_list")
    except CallFailed as exc:
        return f"server_list failed after {trio.current_time() - began:.1f} s: {exc}"
    finally:
        await api.aclose()
    return f"server_list answered in {trio.current_time() - began:.2f} s"


async def full_disk(run: Run) -> None:
    count = run.tally.faults["full disk"]
    written = await trio.to_thread.run_sync(run.rundir.fill, 2 << 30)
    if written is None:
        run.tally.note(f"full disk #{count}: not filled (too much free space without a tmpfs)")
        return
    try:
        await trio.sleep(run.rng.uniform(1, 2))
        restarted = await _restart_one(run)
        await trio.sleep(run.rng.uniform(1, 2))
        run.tally.note(
            f"full disk #{count}: {written >> 20} MiB filler; during it {await _probe(run)}; "
            f"{restarted}"
        )
    finally:
        run.rundir.unfill()
    await run.recovered(trio.current_time(), "full disk")


async def _restart_one(run: Run) -> str:
    """Restart a long-running server (as its owner might, or its crash policy would)."""
    name = run.rng.choice(run.long_running)
    try:
        answer = await run.api.call("server_restart", {"server": name})
    except CallFailed as exc:
        return f"server_restart {name}: {exc}"
    return f"server_restart {name}: {answer.get('status')}"


async def descriptors(run: Run) -> None:
    count = run.tally.faults["descriptor exhaustion"]
    outcomes, answer = await exhaust(
        run.daemon.endpoints,
        connections=(run.daemon.nofile or 1024) + 300,
        hold=3,
        probe=lambda: _probe(run),
    )
    run.tally.note(f"descriptor exhaustion #{count}: {dict(outcomes)}; during it {answer}")
    await run.recovered(trio.current_time(), "descriptor exhaustion")


async def connection_storm(run: Run) -> None:
    count = run.tally.faults["connection storm"]
    outcomes = await storm(
        run.daemon.endpoints, run.rng, connections=300 if run.quick else 800, concurrency=100
    )
    run.tally.note(f"connection storm #{count}: {dict(sorted(outcomes.items()))}")
    await run.recovered(trio.current_time(), "connection storm")


FAULTS: dict[str, Callable[[Run], Awaitable[None]]] = {
    "kill -9": kill9,
    "SIGTERM": sigterm,
    "double SIGTERM": double_sigterm,
    "reload": reload,
    "full disk": full_disk,
    "descriptor exhaustion": descriptors,
    "connection storm": connection_storm,
}
#: How often each fault is picked after the first round (which has one of each).
WEIGHTS = {
    "kill -9": 3.0,
    "SIGTERM": 2.0,
    "double SIGTERM": 1.5,
    "reload": 2.5,
    "full disk": 1.0,
    "descriptor exhaustion": 1.0,
    "connection storm": 1.5,
}
