"""What ``leosuite serve`` sets up before anything runs: the data directory and its
lock, the listening sockets (a taken port is one clear error before start-up), and
the atomic writes of files under ``run/``.

After a reload the lock and the listening sockets are inherited from the image that
re-executed itself (:func:`inherit_listener`, :meth:`DataDirLock.adopt`): the lock is
never let go and no connection attempt is refused in between."""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import logging
import os
import socket
import stat
from collections.abc import Mapping
from pathlib import Path

from .errors import StartupError
from .settings import Address, Settings, parse_address

__all__ = [
    "LISTEN_BACKLOG",
    "LISTEN_KEYS",
    "DataDirLock",
    "bind_listener",
    "inherit_listener",
    "listener_url",
    "open_listeners",
    "prepare_data_dir",
    "write_atomic",
]

log = logging.getLogger("leosuite.daemon")

#: The accept queue of every listening socket: connection attempts made while the
#: daemon reloads wait here.
LISTEN_BACKLOG = 256
#: The listening sockets, by the settings key of their address.
LISTEN_KEYS = ("http.listen", "admin.listen", "ws.listen")


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


def _host(address: Address) -> str:
    return "127.0.0.1" if address.host == "localhost" else address.host


def bind_listener(address: Address, key: str) -> socket.socket:
    """Bind and listen now, so a taken port is one clear error before start-up."""
    host = _host(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, address.port))
        sock.listen(LISTEN_BACKLOG)
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


def inherit_listener(fd: int, address: Address, key: str) -> socket.socket | None:
    """The listening socket at ``fd`` if it is a TCP socket listening on ``address``
    (any port when ``address`` asks for port 0), no longer inheritable; None otherwise.
    A listening socket on another address is closed (the settings changed); any other
    descriptor is left alone."""
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return None
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        if sock.type != socket.SOCK_STREAM or not listening:
            sock.detach()
            return None
        host, port = sock.getsockname()[:2]
        wanted = ipaddress.ip_address(_host(address))
        if ipaddress.ip_address(host) != wanted or address.port not in (0, port):
            log.info("%s changed: no longer listening on %s:%d", key, host, port)
            sock.close()
            return None
    except (OSError, ValueError):
        sock.detach()
        return None
    sock.set_inheritable(False)
    sock.setblocking(False)
    return sock


def open_listeners(settings: Settings, inherited: Mapping[str, int]) -> dict[str, socket.socket]:
    """Every listening socket by its settings key: the ``inherited`` descriptor where
    it is still the right one, else bound now. None is left open on failure."""
    sockets: dict[str, socket.socket] = {}
    try:
        for key in LISTEN_KEYS:
            address = parse_address(getattr(settings, key.split(".")[0]).listen, key=key)
            fd = inherited.get(key, -1)
            sock = inherit_listener(fd, address, key) if fd >= 0 else None
            sockets[key] = sock or bind_listener(address, key)
    except BaseException:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


def listener_url(scheme: str, sock: socket.socket) -> str:
    """The URL of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


class DataDirLock:
    """An exclusive ``flock`` on ``<data>/run/leosuite.lock`` held for the daemon's life."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "leosuite.lock"
        self._fd = -1

    def fileno(self) -> int:
        """The locked descriptor (-1 when not held)."""
        return self._fd

    def adopt(self, fd: int) -> bool:
        """Take over the lock held on ``fd`` by the image this one replaced: True when
        ``fd`` is this lock file and holds its lock (no longer inheritable)."""
        try:
            held = os.fstat(fd)
            here = os.stat(self.path)
            if (held.st_dev, held.st_ino) != (here.st_dev, here.st_ino):
                return False
            # Our own open file description already holds it: this cannot block.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        os.set_inheritable(fd, False)
        self._fd = fd
        return True

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
