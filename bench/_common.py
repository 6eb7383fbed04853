"""Shared plumbing of the benchmarks: a leosuite daemon, a supervisord, a keep-alive
HTTP client, process clean-up and table printing.

Every process a benchmark starts is registered in a :class:`Reaper` and killed on the
way out (normal end, exception or Ctrl-C), together with every descendant it left
behind (servers run in their own sessions, so killing a process group is not enough).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import psutil  # type: ignore[import-untyped]

from leosuite.client.http import HttpClient, login

__all__ = [
    "BENCH_DIR",
    "Api",
    "Leosuite",
    "Reaper",
    "Supervisord",
    "cpu_seconds",
    "fmt",
    "machine",
    "percentile",
    "print_table",
    "raise_nofile",
    "ratio",
    "sigterm_as_interrupt",
    "wait_until",
]

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "bench-password-1"
CHEAP_AUTH = {
    "LEOSUITE_AUTH_HASH_MEMORY_KIB": "64",
    "LEOSUITE_AUTH_HASH_TIME_COST": "1",
    "LEOSUITE_AUTH_POW_DIFFICULTY": "4",
}


# -- processes ---------------------------------------------------------------------


def sigterm_as_interrupt() -> None:
    """Make SIGTERM unwind like Ctrl-C so that the ``finally`` blocks clean up."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def raise_nofile(want: int = 65536) -> int:
    """Raise the soft RLIMIT_NOFILE (inherited by every child) towards ``want``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


class Reaper:
    """Processes to stop on the way out: a polite signal, a grace period, then SIGKILL."""

    def __init__(self) -> None:
        self._procs: list[tuple[subprocess.Popen[bytes], float]] = []
        self._before: dict[int, Callable[[], None]] = {}
        self._known: dict[int, psutil.Process] = {}

    def add(
        self,
        proc: subprocess.Popen[bytes],
        grace: float = 10.0,
        before: Callable[[], None] | None = None,
    ) -> None:
        """Stop ``proc`` on the way out, after calling ``before`` (close connections...)."""
        self._procs.append((proc, grace))
        if before is not None:
            self._before[proc.pid] = before

    def remember_descendants(self) -> None:
        """Snapshot the descendants now (a SIGKILLed parent orphans its children)."""
        for proc, _ in self._procs:
            for child in _descendants(proc.pid):
                self._known[child.pid] = child

    def stop(self, proc: subprocess.Popen[bytes], grace: float) -> bool:
        """SIGTERM, wait ``grace`` s, SIGKILL; False if the grace period ran out."""
        in_time = True
        before = self._before.pop(proc.pid, None)
        if before is not None:
            with contextlib.suppress(Exception):
                before()
        for child in _descendants(proc.pid):
            self._known[child.pid] = child
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                in_time = False
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._kill_known()
        return in_time

    def _kill_known(self) -> None:
        for child in list(self._known.values()):
            with contextlib.suppress(psutil.Error):
                if child.is_running():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.pid, signal.SIGKILL)
                    child.kill()
        self._known.clear()

    def close(self) -> None:
        while self._procs:
            proc, grace = self._procs.pop()
            self.stop(proc, grace)
        self._kill_known()


@contextlib.contextmanager
def py_spy(reaper: Reaper, pid: int, out: Path | None, rate: int = 250) -> Iterator[None]:
    """py-spy records ``pid`` (idle samples included) into ``out`` meanwhile, as raw
    collapsed stacks; nothing when ``out`` is None."""
    if out is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    argv = [str(spy), "record", "--pid", str(pid), "--format", "raw", "--nonblocking", "--idle"]
    argv += ["--threads", "--rate", str(rate), "--output", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reaper.add(proc, grace=10.0)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def rss_bytes(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def wait_until(
    check: Callable[[], Any], *, timeout: float, interval: float = 0.01, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# -- leosuite ----------------------------------------------------------------------


class Api:
    """A keep-alive JSON client (one HTTP/1.1 connection per thread)."""

    def __init__(self, base_url: str, token: str) -> None:
        host_port = base_url.split("://", 1)[1].rstrip("/")
        self._host, port = host_port.rsplit(":", 1)
        self._port = int(port)
        self._headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=120)
            self._local.conn = conn
            self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection: the daemon waits for open ones when it shuts down."""
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._local = threading.local()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        payload = json.dumps(body or {}).encode()
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request("POST", path, payload, self._headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        if response.status >= 400:
            raise RuntimeError(f"{path}: HTTP {response.status}: {data[:300]!r}")
        return json.loads(data) if data else None


class Leosuite:
    """``leosuite serve`` in a temporary data directory, on port 0, logged in as admin."""

    def __init__(self, reaper: Reaper, root: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = root / "leosuite-data"
        self.data_dir.mkdir()
        environ = dict(os.environ)
        environ.update(CHEAP_AUTH)
        environ["LEOSUITE_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        environ.update(env or {})
        src = environ.pop("LEOSUITE_BENCH_SRC", "")  # the daemon rejects unknown LEOSUITE_*
        if src:  # benchmark another checkout (e.g. `git archive HEAD`) than this tree
            environ["PYTHONPATH"] = os.pathsep.join(filter(None, [src, environ.get("PYTHONPATH")]))
        self._log = open(root / "leosuite-daemon.log", "wb")  # noqa: SIM115
        argv = [sys.executable, "-m", "leosuite", "serve", "--data-dir", str(self.data_dir)]
        argv += ["--http", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--admin", "127.0.0.1:0"]
        self.proc = subprocess.Popen(
            argv,
            env=environ,
            cwd=root,  # not the repository: `-m` puts the cwd first on sys.path
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._apis: list[Api] = []
        reaper.add(self.proc, grace=60.0, before=self.close_connections)
        self.pid = self.proc.pid
        endpoints_path = self.data_dir / "run" / "endpoints.json"

        def ready() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"leosuite exited early; see {self._log.name}")
            try:
                return json.loads(endpoints_path.read_text())  # type: ignore[no-any-return]
            except (FileNotFoundError, ValueError):
                return None

        self.endpoints = wait_until(ready, timeout=60, what="leosuite endpoints.json")
        self.url = str(self.endpoints["http"])
        client = HttpClient(self.url)
        login(client, "admin", ADMIN_PASSWORD)
        assert client.token is not None
        self.api = Api(self.url, client.token)
        self._apis.append(self.api)

    def close_connections(self) -> None:
        for api in self._apis:
            api.close()

    def create(self, name: str, command: str) -> None:
        self.api.post(
            "/api/server_create",
            {"server": name, "type": "command", "settings": {"command": command}},
        )

    def status(self, name: str | None = None) -> Any:
        return self.api.post("/api/server_status", {} if name is None else {"server": name})


# -- supervisord -------------------------------------------------------------------


class Supervisord:
    """``supervisord -n`` with a temporary config and a unix socket in ``root``."""

    def __init__(
        self,
        reaper: Reaper,
        root: Path,
        programs: dict[str, dict[str, str]],
        *,
        minfds: int = 1024,
    ) -> None:
        self.root = root / "supervisord"
        self.root.mkdir()
        self.socket = self.root / "supervisor.sock"
        lines = [
            "[unix_http_server]",
            f"file={self.socket}",
            "[supervisord]",
            f"logfile={self.root / 'supervisord.log'}",
            f"pidfile={self.root / 'supervisord.pid'}",
            f"childlogdir={self.root}",
            "loglevel=warn",
            f"minfds={minfds}",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]",
            f"serverurl=unix://{self.socket}",
        ]
        for name, options in programs.items():
            lines.append(f"[program:{name}]")
            lines += [f"{key}={value}" for key, value in options.items()]
        self.config = self.root / "supervisord.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self._log = open(self.root / "stdout.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "supervisord"), "-n", "-c", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        reaper.add(self.proc, grace=60.0)
        self.pid = self.proc.pid

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"supervisord exited early; see {self.root}")
            try:  # a fresh proxy each time: a failed one keeps a half-used connection
                return bool(self.proxy().supervisor.getState()["statename"] == "RUNNING")
            except (OSError, http.client.HTTPException, xmlrpc.client.Fault):
                return False

        wait_until(ready, timeout=120, interval=0.05, what="supervisord")
        self.rpc = self.proxy()

    def proxy(self) -> Any:
        from supervisor.xmlrpc import SupervisorTransport  # type: ignore[import-untyped]

        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport)

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [str(VENV_BIN / "supervisorctl"), "-c", str(self.config), *args],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


@contextlib.contextmanager
def bench_session(
    prefix: str, keep: bool = False, tmp_dir: str | None = None
) -> Iterator[tuple[Reaper, Path]]:
    """A temporary directory and a Reaper, both cleaned up on any exit."""
    sigterm_as_interrupt()
    root = Path(tempfile.mkdtemp(prefix=f"leosuite-bench-{prefix}-", dir=tmp_dir))
    reaper = Reaper()
    try:
        yield reaper, root
    finally:
        reaper.close()
        if keep:
            print(f"(kept {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)


# -- reporting ---------------------------------------------------------------------


def sample(call: Callable[[], Any], count: int) -> list[float]:
    """Milliseconds per call, ``count`` sequential calls."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float, b: float) -> str:
    if not b or a != a or b != b or float("inf") in (a, b):
        return "-"
    return f"{a / b:.2f}x"


def fmt(value: float | int | str | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if value != value:
        return "-"
    return f"{value:,.{digits}f}".replace(",", " ")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Markdown table (pastes straight into bench/README.md)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def machine() -> str:
    import platform

    import supervisor  # type: ignore[import-untyped]  # noqa: F401

    try:
        from importlib.metadata import version

        sup = version("supervisor")
    except Exception:
        sup = "?"
    return (
        f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
        f"supervisor {sup}, load average {os.getloadavg()[0]:.1f}"
    )
