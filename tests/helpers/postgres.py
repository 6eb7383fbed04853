"""A throwaway PostgreSQL server for the tests: Debian's ``postgresql`` package,
``initdb`` and ``pg_ctl`` in a temporary directory, on a free port of 127.0.0.1, a fresh
database per test, stopped and removed at the end.

``initdb`` refuses to run as root: as root the server runs as the ``postgres`` user
(``runuser``), its directory handed to that user.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

__all__ = ["PostgresServer", "find_bin_dir"]

#: The account the tests connect as (the cluster's superuser, trusted on loopback).
USER = "leosuite_test"


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb and pg_ctl."""
    found: list[tuple[int, Path]] = []
    for path in glob.glob("/usr/lib/postgresql/*/bin"):
        version = Path(path).parent.name
        if version.isdigit() and os.access(Path(path) / "initdb", os.X_OK):
            found.append((int(version), Path(path)))
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One cluster: :meth:`start` it, :meth:`new_database` per test, :meth:`stop` it."""

    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        #: fsync on, as in production (benchmarks); the tests turn it off.
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="leosuite-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._names = itertools.count(1)
        self._as: list[str] = []
        self._template: str | None = None
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            [*self._as, *argv], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D", str(self.data), "-U", USER, "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        for _attempt in range(5):  # a free port may be taken before the server binds it
            self.port = _free_port()
            try:
                self.resume()
                return
            except RuntimeError:
                if "already in use" not in self.log():
                    raise
        raise RuntimeError("no free port for PostgreSQL")

    def resume(self) -> None:
        """Start the server (again) on its port."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
        options += "-c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run(
            str(self.bin_dir / "pg_ctl"), "start", "-w", "-t", "60",
            "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
        )  # fmt: skip

    def pause(self) -> None:
        """Stop the server, keeping its data (every connection to it is lost)."""
        self._run(str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w")

    def log(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A connection to the maintenance database, in autocommit mode."""
        return psycopg.connect(self.url(), autocommit=True)

    def new_database(self, template: str | None = None) -> str:
        """Create an empty database (UTF-8, C locale), or a copy of ``template``; its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        if template is None:
            sql = f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'"
        else:  # copying the files is faster than replaying the WAL for a small database
            sql = f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY"
        with self.admin() as conn:
            conn.execute(sql)  # type: ignore[arg-type]
        return self.url(name)

    def store_template(self) -> str:
        """The name of a database that holds a fresh, migrated store (made once): copies
        of it start a daemon faster than an empty database it migrates itself."""
        if self._template is None:
            from leosuite.store.postgres import PostgresDatabase

            url = self.new_database()
            PostgresDatabase.connect(url).close()
            self._template = url.rsplit("/", 1)[1]
        return self._template

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data),
                          "-m", "immediate", "-w")  # fmt: skip
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
