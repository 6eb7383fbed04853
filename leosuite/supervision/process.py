"""Spawning one server: checks, the user it runs as, and where its console goes.

A server is spawned in a session of its own (so its process group can be signalled
as a whole) with stdout and stderr on its console file, opened ``O_APPEND``: the
child writes its console itself and no byte of it passes through the daemon. Its
stdin is the read-write end of a FIFO, so the server outlives the daemon: nothing
the daemon holds is needed for the child to go on writing and reading.

Every spawn first repeats :func:`~leosuite.supervision.spec.check_launch` (a planted
symbolic link fails the start); a server with a ``user`` gets its directory handed to
that user and runs with that user's uid, gid and groups. The daemon's own
descriptors (its listening sockets among them) are never inherited.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import shlex
import shutil
import signal
import subprocess
from functools import partial
from pathlib import Path
from typing import Literal, Protocol

import trio

from leosuite.errors import InvalidInput, LeosuiteError, ProcessError
from leosuite.supervision.cgroups import Group, join_argv, join_preexec
from leosuite.supervision.escapers import TAG_VARIABLE
from leosuite.supervision.fs import add_search_bit, reown_tree
from leosuite.supervision.run_as import RunAs, spawn_options
from leosuite.supervision.spec import LaunchSpec, check_launch

__all__ = [
    "ConsoleSink",
    "StopStart",
    "child_environment",
    "describe_exit",
    "format_argv",
    "raise_nofile_limit",
    "safe_marker",
    "spawn",
]

log = logging.getLogger(__name__)


#: Where a stop begins: write the stop command; wait (it was typed); or signal at once.
StopStart = Literal["command", "wait", "signal"]


class ConsoleSink(Protocol):
    """What the process shell needs of a console."""

    def marker(self, text: str) -> None: ...


def safe_marker(console: ConsoleSink, text: str) -> None:
    """Write a marker line; a failing log (disk full) must not break supervision."""
    with contextlib.suppress(LeosuiteError):
        console.marker(text)


def child_environment(extra: dict[str, str], run_as: RunAs | None = None) -> dict[str, str]:
    """The daemon's environment without ``LEOSUITE_*`` (secrets), with the home and
    names of the user it runs as, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEOSUITE_")}
    if run_as is not None and not run_as.is_daemon:
        env.update(run_as.environment())
    env.update(extra)
    return env


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (best effort); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def describe_exit(code: int | None) -> str:
    """``exited with code 3``, ``killed by SIGKILL``, or an exit whose code is unknown."""
    if code is None:
        return "exited (exit code unknown: the daemon was not its parent any more)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exited with code {code}"


def _spawn_error(spec: LaunchSpec, exc: OSError, run_as: RunAs | None) -> ProcessError:
    program = spec.argv[0]
    switching = run_as is not None and not run_as.is_daemon
    if switching and exc.errno == errno.EPERM and exc.filename is None:
        message = f"cannot switch to user {spec.user}: the daemon needs CAP_SETUID and CAP_SETGID"
    elif exc.errno in (errno.EMFILE, errno.ENFILE):
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        message = (
            f"out of file descriptors ({errno.errorcode[exc.errno]}, soft limit {soft}): "
            "raise LimitNOFILE / ulimit -n"
        )
    elif isinstance(exc, FileNotFoundError) and exc.filename == spec.cwd:
        message = f"working directory does not exist: {spec.cwd}"
    elif isinstance(exc, FileNotFoundError):
        message = f"command not found: {program}"
    elif isinstance(exc, PermissionError) and switching:
        message = f"user {spec.user} may not use {exc.filename or program} (permission denied)"
    elif isinstance(exc, PermissionError):
        message = f"permission denied: {exc.filename or program}"
    else:
        message = f"cannot start {program}: {exc.strerror or exc}"
    return ProcessError(message)


def _check_program(program: str, cwd: str, env: dict[str, str]) -> None:
    """Raise what ``exec`` of ``program`` would (not found, not executable), looked up as
    the spawn does: a path with a slash from ``cwd``, a bare name in ``env``'s PATH."""
    if "/" in program:
        found = os.path.join(cwd, program)
        if not os.path.isfile(found):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", program)
        if not os.access(found, os.X_OK):
            raise PermissionError(errno.EACCES, "Permission denied", program)
        return
    path = env.get("PATH", os.defpath)
    if shutil.which(program, path=path) is None:
        if shutil.which(program, mode=os.F_OK, path=path) is not None:
            raise PermissionError(errno.EACCES, "Permission denied", program)
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", program)


def _check_launchable(spec: LaunchSpec, run_as: RunAs | None) -> None:
    if not spec.argv or not spec.argv[0]:
        raise ProcessError("the command is empty")
    if run_as is not None and not run_as.is_daemon:
        return  # the daemon's view of the directory is not the user's: the spawn tells
    if not os.path.isdir(spec.cwd):
        raise ProcessError(f"working directory does not exist: {spec.cwd}")
    if not os.access(spec.cwd, os.W_OK | os.X_OK):
        raise ProcessError(f"working directory is not writable: {spec.cwd}")


async def _prepare(spec: LaunchSpec) -> RunAs | None:
    """Repeat the launch checks; hand the server directory to the user it runs as."""
    try:
        run_as = check_launch(spec)
    except InvalidInput as exc:
        raise ProcessError(exc.message) from None
    if run_as is not None and spec.server_dir is not None:
        directory = Path(spec.server_dir)
        try:
            if spec.search_from is not None and not run_as.is_daemon:
                top = Path(spec.search_from)
                between = directory.relative_to(top).parents[:-1]
                add_search_bit(top, *(top / part for part in reversed(between)))
            await trio.to_thread.run_sync(reown_tree, directory, run_as.uid, run_as.gid)
        except OSError as exc:
            raise ProcessError(
                f"cannot hand the server directory to user {run_as.name}: "
                f"{exc.strerror or exc} (the daemon needs CAP_CHOWN, and to take it back "
                "from another user CAP_DAC_READ_SEARCH)"
            ) from exc
    _check_launchable(spec, run_as)
    return run_as


async def spawn(
    spec: LaunchSpec,
    *,
    stdin_fd: int,
    output_fd: int,
    tag: str | None = None,
    group: Group | None = None,
) -> subprocess.Popen[bytes]:
    """Spawn ``spec.argv`` in a new session, as ``spec.user`` if it names one, with
    ``stdin_fd`` as its stdin and ``output_fd`` as both stdout and stderr; ``tag``
    goes in its environment as :data:`~.escapers.TAG_VARIABLE` (its descendants
    inherit it). With a ``group``, the child joins that cgroup before the ``exec`` of
    the server's program, so nothing it runs is ever outside it: in the fork when the
    user changes, else in a shell run first (:func:`~.cgroups.join_argv`: the daemon
    is then not copied, which costs milliseconds per spawn in a large daemon)."""
    run_as = await _prepare(spec)
    env = child_environment(spec.env, run_as)
    if tag is not None:
        env[TAG_VARIABLE] = tag
    options = spawn_options(run_as)
    argv = list(spec.argv)
    join_fds: list[int] = []
    if group is not None and options:  # a user switch forks the daemon anyway: join there
        try:
            join_fds = group.open_procs()
        except OSError as exc:
            raise ProcessError(f"cannot open the server's cgroup: {exc.strerror or exc}") from exc
        options["preexec_fn"] = join_preexec(join_fds)
    elif group is not None:  # no preexec_fn: a shell joins, the daemon is not copied
        try:
            _check_program(argv[0], spec.cwd, env)
        except OSError as exc:
            raise _spawn_error(spec, exc, run_as) from exc
        argv = join_argv(group.procs_paths(), argv)
    start: partial[subprocess.Popen[bytes]] = partial(
        subprocess.Popen,
        argv,
        stdin=stdin_fd,
        stdout=output_fd,
        stderr=output_fd,
        start_new_session=True,
        cwd=spec.cwd,
        env=env,
        **options,
    )
    try:
        return await trio.to_thread.run_sync(_unmasked, start)
    except OSError as exc:
        raise _spawn_error(spec, exc, run_as) from exc
    except subprocess.SubprocessError as exc:  # the preexec_fn failed: not placed, not run
        raise ProcessError(f"cannot place the server in its cgroup: {exc}") from exc
    finally:
        for fd in join_fds:
            os.close(fd)


def _unmasked(start: partial[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """Run ``start`` with no signal blocked in this thread, so that the child starts
    with none blocked, whatever the worker thread had held (a child inherits the mask)."""
    held = signal.pthread_sigmask(signal.SIG_SETMASK, set())
    try:
        return start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def format_argv(argv: list[str]) -> str:
    return shlex.join(argv)
