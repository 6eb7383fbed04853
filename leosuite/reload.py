"""Reloading the daemon in place: it re-executes itself (same pid), handing its
listening sockets and its data-directory lock to the new image, and every managed
server keeps running.

The image that reloads ends its services, then :func:`exec_self` marks the handed
descriptors inheritable and re-executes the same command line with a
:class:`Handoff` in :data:`HANDOFF_ENV`; the new image takes it back with
:func:`take_handoff` before reading its settings. Every other descriptor is
close-on-exec, so nothing else crosses. Signals sent meanwhile wait for the new
image (:mod:`leosuite.signals`).

The client side is :func:`reload_daemon` (``leosuite reload``): it finds the daemon
holding a data directory's lock, sends it SIGHUP and waits until the new image
serves (``endpoints.json`` rewritten with a newer ``generation``).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path

import msgspec

from .errors import NotFound, StartupError

__all__ = [
    "HANDOFF_ENV",
    "Handoff",
    "Reloaded",
    "daemon_pid",
    "exec_self",
    "monotonic_usec",
    "reload_daemon",
    "take_handoff",
]

log = logging.getLogger("leosuite.daemon")

#: The environment variable that carries the :class:`Handoff` across ``execve``
#: (managed servers never see ``LEOSUITE_*`` variables).
HANDOFF_ENV = "LEOSUITE_HANDOFF"
#: How long ``leosuite reload`` waits for the new image to serve.
RELOAD_WAIT = 30.0


class Handoff(msgspec.Struct, frozen=True, kw_only=True):
    """What one image hands the next across ``execve``."""

    #: How many reloads this process has been through (the new image's number).
    generation: int = 0
    #: The descriptor holding the data directory's lock (-1: none).
    lock: int = -1
    #: Listening sockets by settings key (``"http.listen"``) -> descriptor.
    listeners: dict[str, int] = msgspec.field(default_factory=dict)
    #: A stop signal came during the reload: the new image stops once it serves.
    stop: bool = False

    def descriptors(self) -> list[int]:
        fds = list(self.listeners.values())
        return [self.lock, *fds] if self.lock >= 0 else fds


_decode_handoff = msgspec.json.Decoder(Handoff)


def take_handoff(environ: MutableMapping[str, str]) -> Handoff | None:
    """Remove :data:`HANDOFF_ENV` from ``environ``; the handoff it held, if valid."""
    text = environ.pop(HANDOFF_ENV, None)
    if text is None:
        return None
    try:
        return _decode_handoff.decode(text)
    except msgspec.DecodeError as exc:
        log.warning("ignoring %s: %s", HANDOFF_ENV, exc)
        return None


def monotonic_usec() -> int:
    """``CLOCK_MONOTONIC`` in microseconds, as systemd wants it with ``RELOADING=1``."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def exec_self(handoff: Handoff, *, stop_pending: Callable[[], bool] = lambda: False) -> None:
    """Re-execute this process's command line with ``handoff``; never returns, and
    raises the ``OSError`` when ``execve`` fails (the descriptors are then
    close-on-exec again). ``stop_pending()``, asked last, says whether a stop signal
    is on its way that the next image must act on."""
    fds = handoff.descriptors()
    for fd in fds:
        os.set_inheritable(fd, True)
    env = dict(os.environ)
    argv = [sys.executable, *sys.orig_argv[1:]]
    for handler in logging.getLogger().handlers:
        handler.flush()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # Both encodings first, so that nothing runs between the last look and execve.
    plain = msgspec.json.encode(handoff).decode()
    stopping = msgspec.json.encode(msgspec.structs.replace(handoff, stop=True)).decode()
    env[HANDOFF_ENV] = stopping if stop_pending() else plain
    try:
        os.execve(sys.executable, argv, env)  # noqa: S606 - this very program, no shell
    finally:  # only reached when execve failed
        for fd in fds:
            os.set_inheritable(fd, False)


# -- the client side: ``leosuite reload`` ------------------------------------------


class Reloaded(msgspec.Struct, frozen=True, kw_only=True):
    pid: int
    generation: int
    seconds: float


def _lock_holder(lock_path: Path) -> int | None:
    """The pid holding the exclusive ``flock`` on ``lock_path``, from ``/proc/locks``."""
    try:
        st = os.stat(lock_path)
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2146352 0 EOF"; waiters have a "->".
        if fields[1:2] == ["FLOCK"] and fields[3:4] == ["WRITE"] and fields[5:6] == [inode]:
            return int(fields[4]) if fields[4].isdigit() else None
    return None


def daemon_pid(data_dir: Path) -> int:
    """The pid of the daemon serving ``data_dir``; :class:`NotFound` when none runs."""
    pid = _lock_holder(data_dir / "run" / "leosuite.lock")
    if pid is None:
        raise NotFound(f"no leosuite daemon is running for the data directory {data_dir}")
    return pid


def _generation(endpoints_path: Path, pid: int) -> int | None:
    """The generation ``endpoints.json`` announces for ``pid`` (None: not written yet)."""
    try:
        data = msgspec.json.decode(endpoints_path.read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    if not isinstance(data, dict) or data.get("pid") != pid:
        return None
    generation = data.get("generation", 0)
    return generation if isinstance(generation, int) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reload_daemon(data_dir: Path, *, poll: float = 0.02) -> Reloaded:
    """Send SIGHUP to the daemon of ``data_dir`` and wait (at most :data:`RELOAD_WAIT`
    seconds) until its new image serves."""
    pid = daemon_pid(data_dir)
    endpoints = data_dir / "run" / "endpoints.json"
    # Without endpoints.json the daemon is still starting (generation 0): the held
    # SIGHUP reloads it once it serves.
    before = _generation(endpoints, pid) or 0
    began = time.monotonic()
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise NotFound(f"no leosuite daemon is running for the data directory {data_dir}") from None
    except PermissionError:
        raise StartupError(
            f"not allowed to signal the daemon (pid {pid}): run as its user"
        ) from None
    while time.monotonic() - began < RELOAD_WAIT:
        generation = _generation(endpoints, pid)
        if generation is not None and generation > before:
            return Reloaded(pid=pid, generation=generation, seconds=time.monotonic() - began)
        if not _alive(pid):
            raise StartupError(f"the daemon (pid {pid}) exited during the reload; see its log")
        time.sleep(poll)
    raise StartupError(
        f"the daemon (pid {pid}) did not serve again within {RELOAD_WAIT:.0f} s; see its log"
    )
