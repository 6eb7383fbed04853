"""Running a server's install steps (:mod:`.install_steps`), with progress in its console
and as events for the dashboard.

An install runs before a server's first start, again before a start once its steps
change (a new version), and on demand. Steps run in order; the first that fails ends
the install with :class:`InstallFailed` (its message the reason), and nothing it was
writing is left behind. Downloads run in a worker thread (:mod:`.install_fetch`) that
a cancel stops between two chunks; a ``run`` step runs in a process group of its own,
killed as a whole at its timeout or on a cancel. What an install did is remembered
per server (the store's ``kv`` table, under the server's id) as a digest of its steps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import trio
from outcome import Outcome
from outcome import acapture as outcome_capture

from ..errors import InvalidInput, LeosuiteError
from ..store import kv
from ..store.db import Database
from .console_file import ConsoleFile
from .file_paths import parse_path
from .fs import reown_tree
from .install_fetch import FetchStopped, InstallFailed, Stop, download_into, fetch_json
from .install_steps import RenderedStep, install_key, render_install
from .process import child_environment, safe_marker
from .run_as import spawn_options
from .server_files import ServerFiles
from .spec import LaunchSpec, check_launch
from .types import ServerType

__all__ = ["InstallEvents", "InstallFailed", "Installer"]

T = TypeVar("T")
#: The ``kv`` key of a server's last install, before its id.
_KEY = "server_install:"
_MANIFEST_MAX = 16 * 1024 * 1024
#: A progress line at every this much of a download whose size is known, in percent.
_PERCENT_STEP = 10
#: ... and at every this many bytes of one whose size is not.
_BYTES_STEP = 16 * 1024 * 1024


class _Latest(msgspec.Struct):
    release: str


class _Entry(msgspec.Struct):
    id: str
    url: str
    sha1: str | None = None


class _Manifest(msgspec.Struct):
    latest: _Latest
    versions: list[_Entry]


class _ServerDownload(msgspec.Struct):
    url: str
    sha1: str


class _Downloads(msgspec.Struct):
    server: _ServerDownload | None = None


class _Version(msgspec.Struct):
    downloads: _Downloads


class InstallEvents:
    """Fan-out of install progress events (drop-if-full: a slow subscriber never slows
    an install)."""

    def __init__(self) -> None:
        self._channels: list[trio.MemorySendChannel[dict[str, Any]]] = []

    def subscribe(self, max_buffer: int = 256) -> trio.MemoryReceiveChannel[dict[str, Any]]:
        send, receive = trio.open_memory_channel[dict[str, Any]](max_buffer)
        self._channels.append(send)
        return receive

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
        self, *, db: Database, manifest_url: str, max_bytes: int, events: InstallEvents
    ) -> None:
        self._db = db
        self._manifest_url = manifest_url
        self._max_bytes = max_bytes
        self.events = events
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
            for i, step in enumerate(steps, 1):
                if step.refused:
                    raise InstallFailed(step.refused)
                say("step", i, step.label, f"install: step {i} of {count}: {step.label}")
                await self._step(name, i, step, root, spec, console, say)
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
        spec: LaunchSpec,
        console: ConsoleFile,
        say: Callable[..., None],
    ) -> None:
        if step.kind == "run":
            await self._run(step, root, spec, console)
            return
        if step.kind == "write":
            await trio.to_thread.run_sync(_write, root, step.to, step.content.encode())
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
                            max_bytes=self._max_bytes, progress=progress)  # fmt: skip
        else:
            fetch = partial(self._minecraft_jar, root, step, progress=progress)
        await _stoppable(fetch)

    def _minecraft_jar(
        self,
        root: Path,
        step: RenderedStep,
        *,
        stop: Stop,
        progress: Callable[[int, int | None], None],
    ) -> int:
        """Mojang's manifest, the version's JSON, then its server jar (a worker thread)."""
        url = self._manifest_url
        try:
            manifest = msgspec.convert(
                fetch_json(url, max_bytes=_MANIFEST_MAX, stop=stop), _Manifest
            )
        except msgspec.ValidationError:
            raise InstallFailed(f"{url[:200]} is not a Minecraft version manifest") from None
        version = manifest.latest.release if step.version == "latest" else step.version
        entry = next((v for v in manifest.versions if v.id == version), None)
        if entry is None:
            raise InstallFailed(f"Minecraft version {version[:100]!r} is not in the manifest")
        try:
            about = msgspec.convert(
                fetch_json(entry.url, max_bytes=_MANIFEST_MAX, stop=stop, sha1=entry.sha1),
                _Version,
            )
        except msgspec.ValidationError:
            raise InstallFailed(f"the manifest of Minecraft {version} is not valid") from None
        server = about.downloads.server
        if server is None:
            raise InstallFailed(f"Minecraft {version} has no server download")
        return download_into(root, step.to, server.url, ("sha1", server.sha1.lower()),
                             max_bytes=self._max_bytes, stop=stop, progress=progress)  # fmt: skip

    async def _run(
        self, step: RenderedStep, root: Path, spec: LaunchSpec, console: ConsoleFile
    ) -> None:
        """The command in the server's directory as its user, killed at its timeout."""
        try:
            run_as = check_launch(spec)
        except InvalidInput as exc:
            raise InstallFailed(exc.message) from None
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

        try:
            with trio.move_on_after(step.timeout) as scope:
                done = await trio.run_process(
                    list(step.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=fd,
                    stderr=fd,
                    cwd=str(root),
                    env=child_environment(spec.env, run_as),
                    process_group=0,
                    check=False,
                    deliver_cancel=kill_group,
                    **spawn_options(run_as),
                )
        except FileNotFoundError:
            raise InstallFailed(f"command not found: {step.argv[0]}") from None
        except OSError as exc:
            raise InstallFailed(f"cannot run {step.argv[0]}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        if scope.cancelled_caught:
            raise InstallFailed(f"{step.label} took more than {step.timeout:g} s: killed")
        if done.returncode != 0:
            raise InstallFailed(f"{step.label} exited with code {done.returncode}")


def _write(root: Path, to: str, data: bytes) -> None:
    try:
        ServerFiles(root).write(parse_path(to, field="to"), data)
    except LeosuiteError as exc:
        raise InstallFailed(exc.message) from None


async def _stoppable(fetch: Callable[..., T]) -> T:
    """``fetch(stop=event)`` in a worker thread; a cancel sets the event (the fetch ends
    at its next chunk) and waits for the thread, so nothing is left half-written."""
    stop = Stop()
    outcome: list[Outcome[T]] = []

    async def watch() -> None:
        try:
            await trio.sleep_forever()
        finally:
            stop.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        outcome.append(await outcome_capture(trio.to_thread.run_sync, partial(fetch, stop=stop)))
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
