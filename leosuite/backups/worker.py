"""Archive jobs in a child process, so the work never competes with the daemon's event
loop for its interpreter lock, and runs at a lower CPU priority than the daemon.

The daemon spawns ``python -m leosuite.backups.worker`` (the same interpreter and the
same ``leosuite``; never a fork of the daemon), writes one job line to its stdin and
keeps that pipe open; it reads the child's reports from its stdout, one JSON line each:
progress, then the result or the error. The child runs at the lowest CPU priority
(``SCHED_IDLE``, and :data:`NICE`) and stops within about one block, removing
what it wrote, once its stdin ends (the daemon closed it, or died) or on SIGTERM. A
cancelled caller closes the pipe, waits :data:`STOP_GRACE` seconds, then kills the
child, and removes what it may have left itself: a create's temporary archive, a
restore's destination (emptied, or removed when the job made it).

:func:`create_archive` and :func:`restore_archive` take the arguments and raise the
errors of :mod:`.archive`'s functions of the same names.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import trio

import leosuite
from leosuite.backups.archive_restore import restore_into
from leosuite.backups.archive_types import (
    MAX_MEMBERS,
    ArchiveResult,
    ArchiveTooLarge,
    Compression,
    CorruptArchive,
    Progress,
    Stopped,
    UnreadableFile,
    UnsafeArchive,
    check_create_options,
)
from leosuite.backups.archive_walk import normalize_patterns
from leosuite.backups.archive_write import partial_path, write_archive
from leosuite.errors import (
    Conflict,
    DiskFull,
    InternalError,
    InvalidInput,
    LeosuiteError,
    NotFound,
)

__all__ = ["NICE", "STOP_GRACE", "create_archive", "restore_archive"]

#: The niceness the child adds to its own (the daemon's requests come first).
NICE = 10
#: Seconds a cancelled child has to stop on SIGTERM before it is killed.
STOP_GRACE = 5.0
#: The longest report line read from a child.
_LINE_MAX = 64 * 1024
#: The tail of a child's stderr kept for the error of a child that died.
_STDERR_TAIL = 2000


class CreateJob(msgspec.Struct, tag="create", kw_only=True):
    src: str
    dest: str
    compression: Compression
    patterns: tuple[str, ...]
    threads: int = 0
    max_size: int | None = None


class RestoreJob(msgspec.Struct, tag="restore", kw_only=True):
    archive: str
    dest: str
    max_bytes: int | None = None
    max_members: int = MAX_MEMBERS
    expect_sha256: str | None = None
    fsync: bool = True


Job = CreateJob | RestoreJob


class Moved(msgspec.Struct, tag="progress"):
    done: int
    total: int


class Done(msgspec.Struct, tag="done", kw_only=True):
    result: ArchiveResult


class Failed(msgspec.Struct, tag="failed", kw_only=True):
    kind: str
    message: str
    field: str | None = None
    #: The error's own attributes (``limit``, ``rel``, ``in_store``).
    attributes: dict[str, int | str | bool] = {}


Report = Moved | Done | Failed

_job_decoder = msgspec.json.Decoder(Job)
_report_decoder = msgspec.json.Decoder(Report)
_encoder = msgspec.json.Encoder()

#: The errors a child reports by name; anything else arrives as an InternalError.
_KINDS: dict[str, type[LeosuiteError]] = {
    cls.__name__: cls
    for cls in (
        CorruptArchive,
        UnsafeArchive,
        ArchiveTooLarge,
        UnreadableFile,
        DiskFull,
        InvalidInput,
        NotFound,
        Conflict,
        InternalError,
    )
}
_ATTRIBUTES = ("limit", "rel", "in_store")


def _failed(exc: LeosuiteError) -> Failed:
    kind = next((name for name, cls in _KINDS.items() if type(exc) is cls), "InternalError")
    attributes = {a: getattr(exc, a) for a in _ATTRIBUTES if hasattr(exc, a)}
    return Failed(kind=kind, message=exc.message, field=exc.field, attributes=attributes)


def _rebuilt(failed: Failed) -> LeosuiteError:
    cls = _KINDS.get(failed.kind, InternalError)
    exc = cls.__new__(cls)
    LeosuiteError.__init__(exc, failed.message, field=failed.field)
    for name, value in failed.attributes.items():
        if name in _ATTRIBUTES:
            setattr(exc, name, value)
    return exc


# -- the parent side ------------------------------------------------------------------


def _argv() -> list[str]:
    # -P: the daemon's working directory is never on the child's import path.
    return [sys.executable, "-P", "-m", "leosuite.backups.worker"]


def _env() -> dict[str, str]:
    """The daemon's environment without its own settings and systemd's variables, with
    the directory its ``leosuite`` came from first on the import path, so the child
    runs the same code."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LEOSUITE_", "NOTIFY_SOCKET", "WATCHDOG_", "LISTEN_"))
    }
    root = str(Path(leosuite.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _dest_state(job: Job) -> str:
    """What a restore's destination is before the job: ``missing``, ``empty`` (an empty
    directory) or ``other`` (which the engine refuses, and is never cleaned)."""
    if isinstance(job, CreateJob):
        return "other"
    try:
        with os.scandir(job.dest) as listing:
            return "other" if any(True for _ in listing) else "empty"
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "other"


def _clean_after(job: Job, dest_state: str) -> None:
    """Remove what a child stopped by force may have left (blocking)."""
    if isinstance(job, CreateJob):
        with contextlib.suppress(FileNotFoundError):
            partial_path(Path(job.dest)).unlink()
        return
    dest = Path(job.dest)
    if dest_state == "missing":
        shutil.rmtree(dest, ignore_errors=True)
    elif dest_state == "empty" and dest.is_dir() and not dest.is_symlink():
        for entry in os.scandir(dest):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


async def _read_reports(
    stream: trio.abc.ReceiveStream, progress: Progress | None
) -> Done | Failed | None:
    """Hand progress to ``progress`` until the stream ends; the final report, if any."""
    buffer = b""
    final: Done | Failed | None = None
    while data := await stream.receive_some(65536):
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        if len(buffer) > _LINE_MAX:
            raise InternalError("the backup worker wrote an over-long report")
        for line in lines:
            report = _report_decoder.decode(line)
            if isinstance(report, Moved):
                if progress is not None:
                    progress(report.done, report.total)
            else:
                final = report
    return final


async def _tail(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    while data := await stream.receive_some(65536):
        into += data
        del into[:-_STDERR_TAIL]


async def _stop(process: trio.Process) -> None:
    """The end of the child's stdin, a grace period, then SIGKILL; waits for the exit."""
    if process.returncode is None:
        assert process.stdin is not None
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await process.stdin.aclose()
        with trio.move_on_after(STOP_GRACE):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _run(job: Job, progress: Progress | None, limiter: trio.CapacityLimiter | None) -> Any:
    async with limiter if limiter is not None else contextlib.nullcontext():
        dest_state = await trio.to_thread.run_sync(_dest_state, job)
        process = await trio.lowlevel.open_process(
            _argv(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        errors = bytearray()
        try:
            await process.stdin.send_all(_encoder.encode(job) + b"\n")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_tail, process.stderr, errors)
                final = await _read_reports(process.stdout, progress)
            await process.wait()
        except BaseException:
            with trio.CancelScope(shield=True):
                await _stop(process)
                await trio.to_thread.run_sync(_clean_after, job, dest_state)
            raise
        finally:
            with trio.CancelScope(shield=True):
                await process.stdin.aclose()
                await process.stdout.aclose()
                await process.stderr.aclose()
    if isinstance(final, Done):
        return final.result
    if isinstance(final, Failed):
        raise _rebuilt(final)
    tail = errors.decode("utf-8", "replace").strip()[-500:]
    raise InternalError(f"the backup worker exited with {process.returncode}: {tail}")


async def create_archive(
    src: Path,
    dest: Path,
    *,
    compression: Compression = "zstd",
    exclude: Sequence[str] = (),
    progress: Progress | None = None,
    limiter: trio.CapacityLimiter | None = None,
    zstd_threads: int = 0,
    max_size: int | None = None,
) -> ArchiveResult:
    """:func:`leosuite.backups.archive.create_archive`, in a child process."""
    check_create_options(compression, zstd_threads)
    job = CreateJob(
        src=str(src),
        dest=str(dest),
        compression=compression,
        patterns=normalize_patterns(exclude),
        threads=zstd_threads,
        max_size=max_size,
    )
    result: ArchiveResult = await _run(job, progress, limiter)
    return result


async def restore_archive(
    archive: Path,
    dest: Path,
    *,
    progress: Progress | None = None,
    limiter: trio.CapacityLimiter | None = None,
    max_bytes: int | None = None,
    max_members: int = MAX_MEMBERS,
    expect_sha256: str | None = None,
    fsync: bool = True,
) -> ArchiveResult:
    """:func:`leosuite.backups.archive.restore_archive`, in a child process."""
    job = RestoreJob(
        archive=str(archive),
        dest=str(dest),
        max_bytes=max_bytes,
        max_members=max_members,
        expect_sha256=expect_sha256,
        fsync=fsync,
    )
    result: ArchiveResult = await _run(job, progress, limiter)
    return result


# -- the child side -------------------------------------------------------------------


def _stop_at_end_of_input(stop: threading.Event) -> None:
    """Set ``stop`` once stdin ends: the daemon closed it, or died."""
    while os.read(0, 4096):
        pass
    stop.set()


def _emit(report: Report) -> None:
    data = _encoder.encode(report) + b"\n"
    while data:
        data = data[os.write(1, data) :]


def _progress(done: int, total: int) -> None:
    _emit(Moved(done, total))


def _work(job: Job, stop: threading.Event) -> ArchiveResult:
    progress = _progress
    if isinstance(job, CreateJob):
        return write_archive(
            Path(job.src),
            Path(job.dest),
            compression=job.compression,
            patterns=job.patterns,
            progress=progress,
            stop=stop,
            threads=job.threads,
            max_size=job.max_size,
        )
    return restore_into(
        Path(job.archive),
        Path(job.dest),
        max_bytes=job.max_bytes,
        max_members=job.max_members,
        expect_sha256=job.expect_sha256,
        progress=progress,
        stop=stop,
        fsync=job.fsync,
    )


def _lower_priority() -> None:
    """Run only when the daemon's own threads do not want the CPU: ``SCHED_IDLE`` (a
    waking daemon thread preempts this process at once; it stays in the daemon's
    session, so in its scheduling group), and :data:`NICE` where that is refused."""
    os.nice(NICE)
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def main() -> int:
    job = _job_decoder.decode(sys.stdin.buffer.readline())
    _lower_priority()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # A Ctrl-C at the daemon's terminal reaches this child too: the daemon stops it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_stop_at_end_of_input, args=(stop,), daemon=True).start()
    try:
        _emit(Done(result=_work(job, stop)))
    except Stopped:
        return 1
    except LeosuiteError as exc:
        _emit(_failed(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
