"""Servers stopped at the same time share their searches for escaped descendants (one
pass over ``/proc`` for all that ask meanwhile), and each still stops exactly its own
(real processes)."""

from __future__ import annotations

from pathlib import Path

import trio

from leosuite.supervision.console_file import ConsoleFile
from leosuite.supervision.states import State
from tests.helpers.servers import make_spec, pid_alive, running_fleet, text

#: A server whose grandchild leaves the group with ``setsid`` (orphaned at once);
#: prints ``escaper <pid>`` and ``ready``.
ESCAPING = """
import os, sys, time
r, w = os.pipe()
middle = os.fork()
if middle == 0:
    os.close(r)
    if os.fork() == 0:
        os.setsid()
        os.write(w, b"%d\\n" % os.getpid())
        while True:
            time.sleep(3600)
    os._exit(0)
os.close(w)
escaper = int(os.read(r, 64))
os.waitpid(middle, 0)
print(f"escaper {escaper}", flush=True)
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


async def test_concurrent_stops_each_stop_their_own_escaper(tmp_path: Path) -> None:
    script = tmp_path / "escaping.py"
    script.write_text(ESCAPING)
    with trio.fail_after(30):
        async with running_fleet() as (fleet, consoles):
            sups = []
            for i in range(5):
                directory = tmp_path / "logs" / f"s{i}"
                directory.mkdir(parents=True)
                console = ConsoleFile(directory, retention_bytes=1 << 20)
                consoles.append(console)
                spec = make_spec(tmp_path, str(script), ready_pattern="ready")
                sup = await fleet.add(f"s{i}", spec, console)
                await sup.request("start")
                sups.append((sup, console))
            escapers = []
            for sup, console in sups:
                await sup.wait_state(State.RUNNING)
                escapers.append(int(text(console).split("escaper ", 1)[1].split()[0]))
            assert all(pid_alive(pid) for pid in escapers)

            async with trio.open_nursery() as nursery:
                for sup, _ in sups:
                    nursery.start_soon(sup.request, "stop")
            for (sup, console), escaper in zip(sups, escapers, strict=True):
                assert sup.state is State.STOPPED
                assert not pid_alive(escaper)
                out = text(console)
                assert f"left the process group: {escaper}\n" in out, out
                others = [str(pid) for pid in escapers if pid != escaper]
                assert not any(f"group: {pid}" in out for pid in others), out
