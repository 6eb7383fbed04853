"""Real system users for the tests of servers that run as another user: created with
``useradd`` (root only) and removed again, and a data directory that such a user can
reach (outside pytest's private temporary tree)."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="creating system users needs root and useradd",
)


@contextmanager
def system_user(*, group: bool = False) -> Iterator[tuple[pwd.struct_passwd, int | None]]:
    """A new system user (and, with ``group``, a new group it is a supplementary member
    of); both are removed at the end. Yields its passwd entry and that group's gid."""
    name = f"lstest{secrets.token_hex(4)}"
    extra: list[str] = []
    gid: int | None = None
    if group:
        subprocess.run(["groupadd", "--system", f"{name}g"], check=True)
        gid = int(subprocess.check_output(["getent", "group", f"{name}g"]).split(b":")[2])
        extra = ["--groups", f"{name}g"]
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             "--home-dir", "/nonexistent", *extra, name],
            check=True,
        )  # fmt: skip
        try:
            yield pwd.getpwnam(name), gid
        finally:
            subprocess.run(["userdel", name], check=False)
    finally:
        if group:
            subprocess.run(["groupdel", f"{name}g"], check=False)


@contextmanager
def reachable_dir() -> Iterator[Path]:
    """A new directory in the system's temporary directory that every user may pass
    through but not list (0711; pytest's own temporary tree is private)."""
    path = Path(tempfile.mkdtemp(prefix="leosuite-users-"))
    try:
        path.chmod(0o711)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
