"""What ``leosuite serve`` sets up before anything runs: the data directory and its
lock, the listening sockets (a taken port is one clear error before start-up), and
the atomic writes of files under ``run/``."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import stat
from pathlib import Path

from .errors import StartupError
from .settings import Address

__all__ = ["DataDirLock", "bind_listener", "listener_url", "prepare_data_dir", "write_atomic"]

log = logging.getLogger("leosuite.daemon")


def prepare_data_dir(data_dir: Path) -> Path:
    """Create the data directory 0700 (and ``run/`` in it) and return ``run/``; an
    existing one that other users may list or write is left as it is, with a warning."""
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(data_dir.stat().st_mode)
        run_dir = data_dir / "run"
        run_dir.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create the data directory {data_dir}: {exc}") from None
    if mode & 0o066:
        log.warning(
            "the data directory %s is open to other users (mode %04o); it holds the "
            "store and the servers' files: chmod 0700 it (0711 when servers run as "
            "other users)",
            data_dir,
            mode,
        )
    return run_dir


def bind_listener(address: Address, key: str) -> socket.socket:
    """Bind and listen now, so a taken port is one clear error before start-up."""
    host = "127.0.0.1" if address.host == "localhost" else address.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, address.port))
        sock.listen(256)
    except OSError as exc:
        sock.close()
        reason = {
            errno.EADDRINUSE: "the address is already in use",
            errno.EACCES: "permission denied (ports below 1024 need privileges)",
            errno.EADDRNOTAVAIL: "no such address on this machine",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise StartupError(f"cannot listen on {address} ({key}): {reason}", field=key) from None
    sock.setblocking(False)
    return sock


def listener_url(scheme: str, sock: socket.socket) -> str:
    """The URL of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class DataDirLock:
    """An exclusive ``flock`` on ``<data>/run/leosuite.lock`` held for the daemon's life."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "leosuite.lock"
        self._fd = -1

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StartupError(
                f"the data directory {self.path.parent.parent} is in use by another leosuite "
                f"(pid {holder}); stop that one first, or use another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that a reader sees the old content or the new, never a part."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
