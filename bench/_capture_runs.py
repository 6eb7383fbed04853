"""The runs of bench/capture.py: one function per way of capturing the producer.

Each returns a :class:`Run`: the seconds until every byte is in the file (and, for
leosuite, reported by the daemon) and, for a daemon, its CPU seconds over that window.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from _common import BENCH_DIR, Leosuite, Supervisord, cpu_seconds, wait_until

__all__ = [
    "Producer",
    "Run",
    "leosuite_overhead",
    "run_leosuite",
    "run_shell_limit",
    "run_supervisord",
    "run_to_file",
]

MARKER = b"[leosuite] "
TAIL = 1024  # producer bytes matched at the end of the console
RUNNING = ("starting", "running")


@dataclass
class Run:
    seconds: float
    cpu: float | None = None  # the daemon's CPU seconds over the window
    exit_lag: float | None = None  # seconds from the producer's last byte to its exit
    note: str = ""


@dataclass
class Producer:
    """The producer's command line and the bytes it writes (byte k is block[k % chunk])."""

    size: int
    chunk: int
    block: bytes

    @classmethod
    def make(cls, size: int, chunk: int) -> Producer:
        one = subprocess.run(producer_argv(chunk, chunk), check=True, capture_output=True)
        return cls(size, chunk, one.stdout)

    @property
    def argv(self) -> list[str]:
        return producer_argv(self.size, self.chunk)

    def tail(self, n: int) -> bytes:
        """The last ``n`` bytes the producer writes."""
        return bytes(self.block[k % self.chunk] for k in range(self.size - n, self.size))


def producer_argv(size: int, chunk: int) -> list[str]:
    return [sys.executable, str(BENCH_DIR / "_producer.py"), str(size), str(chunk)]


# -- the limits --------------------------------------------------------------------


def _run_group(argv: list[str], limit: float) -> None:
    """Run ``argv`` in its own process group; kill the group if it outlives ``limit``."""
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        code = proc.wait(limit)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if code:
        raise RuntimeError(f"{shlex.join(argv)}: exit status {code}")


def run_shell_limit(producer: Producer, target: str, path: Path, limit: float) -> Run:
    """``producer | cat > target``, until both have exited."""
    cmd = f"{shlex.join(producer.argv)} | cat > {shlex.quote(target)}"
    t0 = time.perf_counter()
    _run_group(["sh", "-c", cmd], limit)
    elapsed = time.perf_counter() - t0
    path.unlink(missing_ok=True)
    return Run(elapsed)


def run_to_file(producer: Producer, path: Path, poll: float, limit: float) -> Run:
    """``producer > path`` (opened O_APPEND, like a leosuite console), until it has
    written every byte (see :func:`wrote_all`), then until it exited (``exit_lag``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    proc = None
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(producer.argv, stdout=fd, stderr=fd, start_new_session=True)
        pid = proc.pid
        wait_until(
            lambda: wrote_all(pid, producer.size), timeout=limit, interval=poll, what="producer"
        )
        elapsed = time.perf_counter() - t0
        code = proc.wait(limit)
        exit_lag = time.perf_counter() - t0 - elapsed
        written = os.fstat(fd).st_size
    finally:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(fd)
        path.unlink(missing_ok=True)
    if code or written != producer.size:
        raise RuntimeError(f"producer > file: status {code}, {written} bytes of {producer.size}")
    return Run(elapsed, exit_lag=exit_lag)


def wrote_all(pid: int, size: int) -> bool:
    """Whether process ``pid`` has made ``size`` bytes of write() calls (a write to a
    regular file is in the file when it returns) or has exited."""
    try:
        return bool(psutil.Process(pid).io_counters().write_chars >= size)
    except psutil.NoSuchProcess:  # a zombie too
        return True


# -- leosuite ----------------------------------------------------------------------


def _log(ls: Leosuite, name: str, index: int, limit: int) -> tuple[int, bytes]:
    answer = ls.api.post(
        "/api/server_log",
        {"server": name, "readIndex": index, "max": limit, "encoding": "base64"},
    )
    return int(answer["oldReadIndex"]), base64.b64decode(answer["data"])


def producer_end(ls: Leosuite, name: str, final: int, producer: Producer) -> int:
    """Index one past the producer's last byte, found in the console's tail: the last
    place its last TAIL bytes match (only daemon markers may follow them)."""
    want = producer.tail(min(TAIL, producer.size))
    start, data = _log(ls, name, max(0, final - 8 * TAIL), 8 * TAIL)
    at = data.rfind(want)
    if at < 0:
        raise RuntimeError(f"{name}: the producer's last bytes are not in the console's tail")
    end = start + at + len(want)
    after = data[at + len(want) :]
    if after and not after.lstrip(b"\n").startswith(MARKER):
        raise RuntimeError(f"{name}: unexpected bytes after the producer's: {after[:80]!r}")
    return end


def count_check(ls: Leosuite, name: str, end: int, producer: Producer) -> str:
    """Check that the console holds exactly the producer's bytes between the start
    markers and ``end``; skipped when retention already dropped the head."""
    start, head = _log(ls, name, 0, 64 * 1024)
    if start != 0:
        return "count skipped (head dropped by retention)"
    first = head.index(b"\n", head.index(MARKER + b"starting: ")) + 1
    pid_at = head.find(MARKER + b"started pid ", first)
    if pid_at < 0:
        return "count skipped (pid marker past the head)"
    marker_len = head.index(b"\n", pid_at) + 1 - pid_at
    newline = (pid_at - first) % producer.chunk  # the marker's own leading newline, if any
    counted = end - first - marker_len - newline
    if newline > 1 or counted != producer.size:
        raise RuntimeError(f"{name}: {counted} producer bytes in the console, not {producer.size}")
    return "count ok"


def run_leosuite(ls: Leosuite, name: str, producer: Producer, poll: float, limit: float) -> Run:
    """From the ``server_start`` request until the producer has written every byte (see
    :func:`wrote_all`; polling the API that often would cost the daemon, and the
    producer on a small machine, more than capturing does) and ``server_status`` then
    reports a readIndex at or past its last byte, found afterwards in the console's
    tail; then until ``server_status`` shows the exit (``exit_lag``)."""
    ls.create(name, shlex.join(producer.argv))
    cpu0 = cpu_seconds(ls.pid)
    t0 = time.perf_counter()
    ls.api.post("/api/server_start", {"server": name})
    pid = ls.status(name)["pid"]
    if pid is not None:
        wait_until(lambda: wrote_all(pid, producer.size), timeout=limit, interval=poll, what=name)
    index = int(ls.status(name)["readIndex"])
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds(ls.pid) - cpu0
    wait_until(
        lambda: ls.status(name)["status"] not in RUNNING, timeout=limit, interval=poll, what=name
    )
    exit_lag = time.perf_counter() - t0 - seconds
    end = producer_end(ls, name, int(ls.status(name)["readIndex"]), producer)
    if index < end:
        raise RuntimeError(f"{name}: readIndex {index} once all was written, not {end}")
    note = count_check(ls, name, end, producer)
    ls.api.post("/api/server_destroy", {"server": name, "delete_files": True})
    return Run(seconds, cpu, exit_lag, f"last {TAIL} B ok, {note}")


def leosuite_overhead(ls: Leosuite, calls: int = 50) -> tuple[float, float]:
    """The daemon's CPU (ms) per ``server_status`` call, and for starting a server that
    writes nothing until its exit is seen (about the fixed cost in every run)."""
    ls.create("probe", shlex.join(producer_argv(0, 1)))
    ls.status("probe")
    cpu0 = cpu_seconds(ls.pid)
    for _ in range(calls):
        ls.status("probe")
    cpu1 = cpu_seconds(ls.pid)
    ls.api.post("/api/server_start", {"server": "probe"})
    wait_until(lambda: ls.status("probe")["status"] not in RUNNING, timeout=60, what="exit")
    cpu2 = cpu_seconds(ls.pid)
    ls.api.post("/api/server_destroy", {"server": "probe", "delete_files": True})
    return 1000 * (cpu1 - cpu0) / calls, 1000 * (cpu2 - cpu1)


# -- supervisord -------------------------------------------------------------------


def run_supervisord(
    sd: Supervisord, name: str, path: Path, size: int, poll: float, limit: float
) -> Run:
    """From ``startProcess`` until the log file holds every byte; with rotation (program
    ``rot``) until supervisord reports the exit, since rotated files are deleted."""
    _remove_logs(path)
    cpu0 = cpu_seconds(sd.pid)
    t0 = time.perf_counter()
    sd.rpc.supervisor.startProcess(name, False)

    def written() -> int:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0

    def done() -> bool:
        if name == "rot":
            state = sd.rpc.supervisor.getProcessInfo(name)["statename"]
            return state not in ("STARTING", "RUNNING")
        return written() >= size

    wait_until(done, timeout=limit, interval=poll, what=f"supervisord's {name}")
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(sd.pid) - cpu0
    wait_until(
        lambda: (
            sd.rpc.supervisor.getProcessInfo(name)["statename"] in ("EXITED", "STOPPED", "FATAL")
        ),
        timeout=30,
        what="the producer to exit under supervisord",
    )
    _remove_logs(path)
    return Run(elapsed, cpu)


def _remove_logs(path: Path) -> None:
    """Delete a log and its backups: every run then starts with the page cache it
    freed (on a VM, pages never touched or long free can cost several times more)."""
    path.unlink(missing_ok=True)
    for old in path.parent.glob(path.name + ".*"):
        old.unlink()
