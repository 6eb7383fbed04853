"""``leosuite server install NAME``: run a server's install steps now, its console
(the progress lines, a command's output) printed live while it runs."""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["run_install_command"]


def run_install_command(url: str, token: str, name: str, as_json: bool) -> int:
    """The exit status: 0 once installed, 1 when the install failed or was cancelled."""
    from ..ws import ConsoleOverrun
    from .ws_session import open_session, run_ws  # trio loads only when a command needs it

    async def install() -> dict[str, Any]:
        import trio

        async with open_session(url, token) as ws:
            start = (await ws.call("server.status", {"server": name}))["readIndex"]
            async with ws.subscribe_console(name, from_=start) as console:
                end: list[int] = []
                printed = [start]
                shown = trio.Event()

                async def show() -> None:
                    async for event in console:
                        if isinstance(event, ConsoleOverrun):
                            print(f"[{event.skipped} bytes skipped]", file=sys.stderr)
                            continue
                        if not as_json:
                            sys.stdout.buffer.write(event.data)
                            sys.stdout.buffer.flush()
                        printed[0] = event.next_read_index
                        if end and printed[0] >= end[0]:
                            break
                    shown.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(show)
                    answer: dict[str, Any] = await ws.call("server.install", {"server": name})
                    # Every line the install wrote is before this index: show up to it.
                    end.append((await ws.call("server.status", {"server": name}))["readIndex"])
                    if printed[0] < end[0]:
                        with trio.move_on_after(10):
                            await shown.wait()
                    nursery.cancel_scope.cancel()
                return answer

    answer = run_ws(install)
    if as_json:
        print(json.dumps(answer, indent=2))
    elif answer["installed"]:
        print(f"{name}: installed ({answer['status']})")
    else:
        print(f"leosuite: {name}: {answer.get('error') or 'install failed'}", file=sys.stderr)
    return 0 if answer["installed"] else 1
