"""Running a server's install steps (:mod:`.install_steps`), with progress in its console
and as events for the dashboard.

An install runs before a server's first start, again before a start once its steps
change (a new version), and on demand. Steps run in order; the first that fails ends
the install with :class:`InstallFailed` (its message the reason), and nothing it was
writing is left behind. Downloads run in worker threads of their own (at most
``servers.install_concurrency`` at once, so stalled downloads never hold the threads the
store uses), each within ``servers.install_timeout`` (:mod:`.install_fetch`); a cancel
stops one between two chunks. Before the steps run, what a download killed with the
daemon left beside its target (a ``.leosuite-*.tmp`` file untouched for an hour) is
removed. A ``run`` step runs in a process group of its own, with the server's tag in
its environment (:mod:`.escapers`), and the group is killed as a whole once the step
ends, at its timeout or on a cancel. What is written is handed to the server's own user
when it has one. What an install did is remembered per server (the store's ``kv``
table, under the server's id) as a digest of its steps.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio
from outcome import Outcome
from outcome import acapture as outcome_capture

from ..errors import InvalidInput, LeosuiteError
from ..store import kv
from ..store.db import Database
from .console_file import ConsoleFile
from .escapers import TAG_VARIABLE, server_tag
from .file_paths import parse_path
from .fs import reown_tree
from .install_fetch import FetchStopped, InstallFailed, Stop, download_into
from .install_minecraft import minecraft_jar
from .install_steps import RenderedStep, install_key, render_install
from .process import child_environment, safe_marker
from .run_as import RunAs, spawn_options
from .server_files import ServerFiles
from .spec import LaunchSpec, check_launch
from .types import ServerType

__all__ = ["InstallEvents", "InstallFailed", "Installer"]

T = TypeVar("T")
#: The ``kv`` key of a server's last install, before its id.
_KEY = "server_install:"
#: A progress line at every this much of a download whose size is known, in percent.
_PERCENT_STEP = 10
#: ... and at every this many bytes of one whose size is not.
_BYTES_STEP = 16 * 1024 * 1024
#: A file the daemon writes beside its target before it takes the target's place.
_TEMP = re.compile(r"\.leosuite-[0-9a-f]{16}\.tmp")
#: Seconds a temporary file must be left untouched before an install removes it.
_STALE_AFTER = 3600.0


class InstallEvents:
    """Fan-out of install progress events (drop-if-full: a slow subscriber never slows
    an install). A subscription ends when its receiving channel is closed."""

    def __init__(self) -> None:
        self._channels: list[trio.MemorySendChannel[dict[str, Any]]] = []

    def subscribe(self, max_buffer: int = 256) -> trio.MemoryReceiveChannel[dict[str, Any]]:
        # Ended subscriptions are let go here too: subscribers come and go between installs.
        self._channels = [c for c in self._channels if c.statistics().open_receive_channels]
        send, receive = trio.open_memory_channel[dict[str, Any]](max_buffer)
        self._channels.append(send)
        return receive

    def held(self) -> int:
        """How many subscriptions are held (an ended one until the next subscribe)."""
        return len(self._channels)

    def publish(self, event: dict[str, Any]) -> None:
        for channel in list(self._channels):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._channels.remove(channel)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


class Installer:
    """Runs installs and remembers what each server's last install did."""

    def __init__(
        self,
        *,
        db: Database,
        manifest_url: str,
        max_bytes: int,
        events: InstallEvents,
        concurrency: int = 4,
        timeout: float = 3600.0,
    ) -> None:
        self._db = db
        self._manifest_url = manifest_url
        self._max_bytes = max_bytes
        self.events = events
        #: How many downloads run at once; their threads are never trio's default ones.
        self._slots = trio.CapacityLimiter(concurrency)
        self._threads = trio.CapacityLimiter(math.inf)
        self._timeout = timeout
        #: The digest of each server's last complete install, by server id.
        self._done: dict[int, str] = {}

    # -- what was installed -------------------------------------------------------------

    async def load(self) -> None:
        """Read what every server's last install did from the store."""
        found = await self._db.call(lambda conn: kv.items(conn, _KEY))
        self._done = {int(k.removeprefix(_KEY)): v for k, v in found.items()}

    def view(
        self, server_id: int, stype: ServerType, settings: dict[str, object], spec: LaunchSpec
    ) -> dict[str, Any] | None:
        """What a status says of the install: None for a type without install steps, else
        ``{steps, done}`` (``done``: the last install ran these very steps)."""
        if not stype.install:
            return None
        try:
            key = install_key(render_install(stype, settings, python="", server_dir=""))
        except InvalidInput:
            key = ""
        return {"steps": len(stype.install), "done": self._done.get(server_id) == key}

    async def forget(self, server_id: int) -> None:
        """A destroyed server's record (ids are never reused: a left-over harms nothing)."""
        self._done.pop(server_id, None)
        await self._db.call(lambda conn: kv.delete(conn, f"{_KEY}{server_id}"))

    async def prepare(
        self,
        name: str,
        server_id: int,
        stype: ServerType,
        settings: dict[str, object],
        spec: LaunchSpec,
        console: ConsoleFile,
        *,
        python: str,
        force: bool,
    ) -> None:
        """Install the server unless its last install ran these very steps (``force``:
        in any case); remember the steps once done."""
        if not stype.install:
            return
        root = spec.server_dir or spec.cwd
        try:
            steps = render_install(stype, settings, python=python, server_dir=root)
        except InvalidInput as exc:
            safe_marker(console, f"install failed: {exc.message}")
            raise InstallFailed(f"install failed: {exc.message}") from None
        key = install_key(render_install(stype, settings, python="", server_dir=""))
        if not force and self._done.get(server_id) == key:
            return
        await self.run(name, steps, spec, console)
        self._done[server_id] = key
        await self._db.call(lambda conn: kv.set(conn, f"{_KEY}{server_id}", key))

    # -- running ------------------------------------------------------------------------

    async def run(
        self, name: str, steps: list[RenderedStep], spec: LaunchSpec, console: ConsoleFile
    ) -> None:
        """Run ``steps`` for server ``name`` in its directory (``spec.server_dir``);
        InstallFailed with the reason when one fails; a cancel stops it cleanly."""
        root = Path(spec.server_dir or spec.cwd)
        count = len(steps)

        def say(phase: str, step: int, label: str, message: str, **extra: Any) -> None:
            safe_marker(console, message)
            self.events.publish({"kind": "install", "server": name, "phase": phase,
                                 "step": step, "steps": count, "label": label,
                                 "message": message, **extra})  # fmt: skip

        say("begin", 0, "", f"install: {count} step{'s' if count != 1 else ''}")
        try:
            try:
                run_as = check_launch(spec)
            except InvalidInput as exc:
                raise InstallFailed(exc.message) from None
            owner = None if run_as is None or run_as.is_daemon else (run_as.uid, run_as.gid)
            targets = {step.to.rpartition("/")[0] for step in steps if step.to}
            await trio.to_thread.run_sync(_sweep, root, targets)
            for i, step in enumerate(steps, 1):
                if step.refused:
                    raise InstallFailed(step.refused)
                say("step", i, step.label, f"install: step {i} of {count}: {step.label}")
                await self._step(name, i, step, root, _Target(spec, run_as, owner, console), say)
        except InstallFailed as exc:
            say("failed", 0, "", f"install failed: {exc.message}")
            raise
        except BaseException as exc:  # a cancel, alone or in a group from a nursery
            cancelled = isinstance(exc, trio.Cancelled) or (
                isinstance(exc, BaseExceptionGroup) and exc.subgroup(trio.Cancelled) is not None
            )
            say("cancelled" if cancelled else "failed", 0, "",
                "install cancelled" if cancelled else "install failed: internal error")  # fmt: skip
            raise
        say("done", count, "", "install: done")

    async def _step(
        self,
        name: str,
        index: int,
        step: RenderedStep,
        root: Path,
        target: _Target,
        say: Callable[..., None],
    ) -> None:
        if step.kind == "run":
            await self._run(name, step, root, target)
            return
        if step.kind == "write":
            data = step.content.encode()
            await trio.to_thread.run_sync(_write, root, step.to, data, target.owner)
            return
        if step.kind == "minecraft_jar" and step.version == "none":
            say("progress", index, step.label, f"install: version none: {step.to} is kept")
            return
        shown = {"value": -1}
        token = trio.lowlevel.current_trio_token()

        def progress(done: int, total: int | None) -> None:
            mark = done * 100 // total // _PERCENT_STEP if total else done // _BYTES_STEP
            if mark == shown["value"] and done != total:
                return
            shown["value"] = mark
            of = (
                f"{done * 100 // total}% ({_size(done)} of {_size(total)})"
                if total
                else _size(done)
            )
            message = f"install: {step.to}: {of}"
            trio.from_thread.run_sync(
                partial(say, "progress", index, step.label, message, done=done, total=total),
                trio_token=token,
            )

        if step.kind == "download":
            fetch = partial(download_into, root, step.to, step.url, step.checksum,
                            max_bytes=self._max_bytes, progress=progress,
                            guarded=step.guarded, owner=target.owner)  # fmt: skip
        else:
            fetch = partial(minecraft_jar, self._manifest_url, root, step,
                            max_bytes=self._max_bytes, progress=progress,
                            owner=target.owner)  # fmt: skip
        async with self._slots:  # the deadline counts from the download's own start
            with trio.move_on_after(self._timeout) as deadline:
                await _stoppable(fetch, self._threads)
        if deadline.cancelled_caught:
            raise InstallFailed(f"{step.label} took more than {self._timeout:g} s: stopped")

    async def _run(self, name: str, step: RenderedStep, root: Path, target: _Target) -> None:
        """The command in the server's directory as its user, with the server's tag; its
        process group killed once it ends or at its timeout."""
        run_as, console = target.run_as, target.console
        if run_as is not None and not run_as.is_daemon:
            try:
                await trio.to_thread.run_sync(reown_tree, root, run_as.uid, run_as.gid)
            except OSError as exc:
                raise InstallFailed(f"cannot hand the server directory to {run_as.name}") from exc
        try:
            fd = console.open_for_child()
        except LeosuiteError as exc:
            raise InstallFailed(exc.message) from None

        async def kill_group(process: trio.Process) -> None:
            # The step's group: it was made for it, so nothing else is in it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        env = child_environment(target.spec.env, run_as)
        env[TAG_VARIABLE] = server_tag(name, console.directory)
        run = partial(
            trio.run_process,
            list(step.argv),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            cwd=str(root),
            env=env,
            process_group=0,
            check=False,
            deliver_cancel=kill_group,
            **spawn_options(run_as),
        )
        process: trio.Process | None = None
        try:
            with trio.move_on_after(step.timeout) as scope:
                async with trio.open_nursery() as nursery:
                    process = await nursery.start(run)
        except FileNotFoundError:
            raise InstallFailed(f"command not found: {step.argv[0]}") from None
        except OSError as exc:
            raise InstallFailed(f"cannot run {step.argv[0]}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
            if process is not None:  # what the step left running in its group ends with it
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
        if scope.cancelled_caught:
            raise InstallFailed(f"{step.label} took more than {step.timeout:g} s: killed")
        assert process is not None  # the nursery ended without a cancel: it started
        if process.returncode != 0:
            raise InstallFailed(f"{step.label} exited with code {process.returncode}")


class _Target:
    """Whom an install works for: the server's spec, its user, the owner of the files it
    writes (None: the daemon's user) and its console."""

    def __init__(
        self,
        spec: LaunchSpec,
        run_as: RunAs | None,
        owner: tuple[int, int] | None,
        console: ConsoleFile,
    ) -> None:
        self.spec, self.run_as, self.owner, self.console = spec, run_as, owner, console


def _write(root: Path, to: str, data: bytes, owner: tuple[int, int] | None) -> None:
    try:
        ServerFiles(root, owner=owner).write(parse_path(to, field="to"), data)
    except LeosuiteError as exc:
        raise InstallFailed(exc.message) from None


def _sweep(root: Path, directories: set[str]) -> None:
    """Remove the temporary files a download killed with the daemon left in
    ``directories`` (relative to ``root``): only regular files of the daemon's name
    pattern untouched for :data:`_STALE_AFTER` seconds (a live upload's is fresher)."""
    files = ServerFiles(root)
    old = time.time() - _STALE_AFTER
    for directory in sorted(directories):
        try:
            parts = parse_path(directory, field="to")
            entries = files.list(parts)["entries"]
        except LeosuiteError:
            continue  # not there (yet): nothing to sweep
        for entry in entries:
            if entry["type"] == "file" and _TEMP.fullmatch(entry["name"]) and entry["mtime"] < old:
                with contextlib.suppress(LeosuiteError):
                    files.delete((*parts, entry["name"]))


async def _stoppable(fetch: Callable[..., T], limiter: trio.CapacityLimiter) -> T:
    """``fetch(stop=event)`` in a worker thread of ``limiter``; a cancel sets the event
    (the fetch ends at its next chunk) and waits for the thread, so nothing is left
    half-written."""
    stop = Stop()
    outcome: list[Outcome[T]] = []

    async def watch() -> None:
        try:
            await trio.sleep_forever()
        finally:
            stop.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        outcome.append(
            await outcome_capture(
                trio.to_thread.run_sync, partial(fetch, stop=stop), limiter=limiter
            )
        )
        nursery.cancel_scope.cancel()
    try:
        return outcome[0].unwrap()
    except FetchStopped:
        await trio.lowlevel.checkpoint()  # raises the cancel that stopped it
        raise InstallFailed("stopped") from None
    except InstallFailed:
        raise
    except LeosuiteError as exc:
        raise InstallFailed(exc.message) from None
