"""File modes as the daemon leaves them, under the umask a login shell usually has."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def mode(path: Path) -> int:
    """The permission bits of ``path`` (links followed)."""
    return stat.S_IMODE(os.stat(path).st_mode)


@contextmanager
def usual_umask() -> Iterator[None]:
    """Run with umask 022, so a mode tighter than 0755/0644 is the daemon's own doing."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)
