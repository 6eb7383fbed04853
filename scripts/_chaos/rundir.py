"""Where a chaos or soak run keeps its files: a data directory (a small tmpfs mounted
for the run where the system allows it, so that a full disk can be made and undone
without touching anything else), the daemon logs and the server programs beside it.
Everything the run mounted or wrote is removed at the end unless it is kept."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["RunDir"]

FILLER = "chaos-filler"


class RunDir:
    """``root/data`` (the data directory), ``root/logs`` and ``root/programs``; with
    ``data_dir`` given, that is the data directory (never mounted over, left in place at
    the end) and the rest go to a temporary root."""

    def __init__(self, prefix: str, data_dir: str | None, tmpfs_mib: int | None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"leosuite-{prefix}-"))
        self.data_dir = Path(data_dir).resolve() if data_dir else self.root / "data"
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise SystemExit(f"{self.data_dir}: not empty (give a new or empty data directory)")
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self.programs = self.root / "programs"
        self.mounted = False
        self.mount_note = "no tmpfs asked for"
        if tmpfs_mib:
            self._mount(tmpfs_mib)

    def _mount(self, mib: int) -> None:
        if os.geteuid() != 0:
            self.mount_note = "not root: no tmpfs, a full disk is a filler file"
            return
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0700", "leosuite-chaos",
             str(self.data_dir)],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if result.returncode == 0:
            self.mounted = True
            self.mount_note = f"data directory on a {mib} MiB tmpfs"
        else:
            self.mount_note = f"mount refused ({result.stderr.strip()}): a filler file"

    # -- a full disk ---------------------------------------------------------------

    def free_bytes(self) -> int:
        stat = os.statvfs(self.data_dir)
        return stat.f_bavail * stat.f_frsize

    def fill(self, cap: int) -> int | None:
        """Fill the data directory's filesystem up to ENOSPC with a filler file, writing at
        most ``cap`` bytes; the bytes written, or None when ``cap`` would not fill it."""
        if self.free_bytes() > cap:
            return None
        written = 0
        fd = os.open(self.data_dir / FILLER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (1 << 20, 1 << 12, 1 << 9):
                block = b"\0" * size
                while written < cap:
                    try:
                        written += os.write(fd, block)
                    except OSError as exc:
                        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                            raise
                        break
        finally:
            os.close(fd)
        return written

    def unfill(self) -> None:
        (self.data_dir / FILLER).unlink(missing_ok=True)

    # -- the end -------------------------------------------------------------------

    def keep_copy(self) -> Path | None:
        """Copy the store and the consoles out of a tmpfs before it goes (for a look)."""
        if not self.mounted:
            return None
        target = self.root / "data-copy"
        with contextlib.suppress(OSError, shutil.Error):
            shutil.copytree(self.data_dir, target, ignore=shutil.ignore_patterns(FILLER, "stdin"))
        return target

    def close(self, keep: bool) -> str:
        """Unmount and remove; a sentence saying what is left."""
        self.unfill()
        left = []
        if self.mounted:
            for flags in ([], ["-l"]):
                result = subprocess.run(
                    ["umount", *flags, str(self.data_dir)], capture_output=True, check=False
                )
                if result.returncode == 0:
                    self.mounted = False
                    break
            if self.mounted:
                left.append(f"could not unmount {self.data_dir}")
        if keep:
            return f"kept {self.root}" + (f"; {'; '.join(left)}" if left else "")
        shutil.rmtree(self.root, ignore_errors=True)
        if not self.data_dir.is_relative_to(self.root):
            left.append(f"the data directory {self.data_dir} is left as it is")
        return "; ".join(left) or "cleaned up"
