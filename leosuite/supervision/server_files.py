"""A server's own files, reached only inside its directory.

A managed server may put anything in its directory, symbolic links to anywhere
included, at any time. So nothing here resolves a path string: the server's directory
is opened (``O_NOFOLLOW``) and every component of a path (:mod:`.file_paths`) is opened
relative to the one before it with ``O_NOFOLLOW | O_DIRECTORY`` (``openat``). A link
anywhere on the way, or as the file read or written, is refused and never followed; a
link itself may be listed, deleted or renamed, as a link. ``..`` and absolute paths
never get this far. A rename is refused when its target is a link or exists at all.

A write never changes a file in place: the content goes to a new file beside it,
which then replaces it (``rename``), so a hard link to a file elsewhere is never
written through. A file with other hard links is not read either (it may be another
user's file linked in from outside). What the daemon creates for a server that runs
as another user is handed to that user and its group. Every method blocks: run it in
a worker thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from ..errors import Conflict, InvalidInput, NotFound, TooLarge
from .file_paths import Parts, entry_of, link_refused, shown, translate

__all__ = ["MAX_LIST_ENTRIES", "PendingFile", "ServerFiles"]

#: The most entries one listing shows (a larger directory's listing says ``truncated``).
MAX_LIST_ENTRIES = 10_000

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_RENAME_NOREPLACE = 1
_CHUNK = 256 * 1024

try:
    _renameat2: Any = ctypes.CDLL(None, use_errno=True).renameat2
except (OSError, AttributeError):  # pragma: no cover - a libc without renameat2
    _renameat2 = None


def _rename_no_replace(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    """``renameat2(..., RENAME_NOREPLACE)``: EEXIST instead of replacing ``dst``; a file
    system (or libc) without it gets the plain rename after an existence check."""
    if _renameat2 is not None:
        done = _renameat2(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), _RENAME_NOREPLACE)
        if done == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(code, os.strerror(code))
    with contextlib.suppress(FileNotFoundError):
        os.stat(dst, dir_fd=dst_fd, follow_symlinks=False)
        raise OSError(errno.EEXIST, os.strerror(errno.EEXIST))
    os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)


class PendingFile:
    """A new file written beside its target; :meth:`commit` puts it in the target's
    place, :meth:`abort` removes it (either once; nothing is left behind)."""

    def __init__(
        self,
        dir_fd: int,
        parts: Parts,
        temp: str,
        fd: int,
        *,
        keep_mode: int | None,
        owner: tuple[int, int] | None,
    ) -> None:
        self._dir_fd = dir_fd
        self.parts = parts
        self._temp = temp
        self._fd = fd
        self._keep_mode = keep_mode
        self._owner = owner
        self._open = True
        #: Bytes written so far.
        self.size = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise translate(exc, self.parts) from exc
        self.size += len(data)

    def commit(self) -> dict[str, Any]:
        """Replace the target with the new file; its entry (as listed)."""
        try:
            if self._keep_mode is not None:
                os.fchmod(self._fd, self._keep_mode)  # while the daemon still owns it
            if self._owner is not None:
                os.fchown(self._fd, *self._owner)
            os.fsync(self._fd)
            os.rename(self._temp, self.parts[-1], src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            entry = entry_of(self.parts[-1], os.fstat(self._fd))
        except OSError as exc:
            self.abort()
            raise translate(exc, self.parts) from exc
        self._close()
        return entry

    def abort(self) -> None:
        if self._open:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp, dir_fd=self._dir_fd)
            self._close()

    def _close(self) -> None:
        if self._open:
            self._open = False
            os.close(self._fd)
            os.close(self._dir_fd)


class ServerFiles:
    """The files under ``root`` (a server's directory); what is created is handed to
    ``owner`` (uid, gid) when given."""

    def __init__(self, root: Path, *, owner: tuple[int, int] | None = None) -> None:
        self.root = root
        self.owner = owner

    # -- walking ------------------------------------------------------------------------

    def _open_root(self) -> int:
        try:
            return os.open(self.root, _DIR)
        except FileNotFoundError:
            raise NotFound("this server's directory does not exist", field="path") from None
        except OSError as exc:
            raise translate(exc, ()) from exc

    def _step(self, fd: int, parts: Parts, field: str) -> int:
        """Open ``parts[-1]`` (in ``fd``) as a directory, never through a link."""
        try:
            return os.open(parts[-1], _DIR, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP) and self._is_link(fd, parts[-1]):
                raise link_refused(parts, field) from None
            raise translate(exc, parts, field) from exc

    @staticmethod
    def _is_link(fd: int, name: str) -> bool:
        try:
            return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def _open_dir(self, parts: Parts, *, make: bool = False, field: str = "path") -> int:
        """A descriptor of the directory ``parts``; with ``make`` the missing ones are made."""
        fd = self._open_root()
        try:
            for depth in range(1, len(parts) + 1):
                if make:
                    self._make_dir(fd, parts[:depth], exist_ok=True)
                step = self._step(fd, parts[:depth], field)
                os.close(fd)
                fd = step
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _make_dir(self, fd: int, parts: Parts, *, exist_ok: bool = False) -> None:
        try:
            os.mkdir(parts[-1], 0o755, dir_fd=fd)
        except FileExistsError:
            if exist_ok:
                return
            raise Conflict(f"{shown(parts)} exists already", field="path") from None
        except OSError as exc:
            raise translate(exc, parts) from exc
        if self.owner is not None:
            made = self._step(fd, parts, "path")
            try:
                os.fchown(made, *self.owner)
            finally:
                os.close(made)

    @staticmethod
    def _lstat(fd: int, parts: Parts, field: str = "path") -> os.stat_result:
        try:
            return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            raise translate(exc, parts, field) from exc

    # -- reading ------------------------------------------------------------------------

    def list(self, parts: Parts, *, limit: int = MAX_LIST_ENTRIES) -> dict[str, Any]:
        """``{"path", "entries", "truncated"}``: the directory's entries, by name."""
        fd = self._open_dir(parts)
        entries: list[dict[str, Any]] = []
        truncated = False
        try:
            with os.scandir(fd) as found:
                for item in found:
                    if len(entries) == limit:
                        truncated = True
                        break
                    with contextlib.suppress(FileNotFoundError):  # gone meanwhile
                        st = os.stat(item.name, dir_fd=fd, follow_symlinks=False)
                        entries.append(entry_of(item.name, st, fd))
        except OSError as exc:
            raise translate(exc, parts) from exc
        finally:
            os.close(fd)
        entries.sort(key=lambda entry: entry["name"])
        return {"path": "/".join(parts), "entries": entries, "truncated": truncated}

    def open_file(self, parts: Parts) -> tuple[int, os.stat_result]:
        """A descriptor of the regular file ``parts`` for reading, and its status."""
        if not parts:
            raise Conflict(". is a directory", field="path")
        dir_fd = self._open_dir(parts[:-1])
        try:
            before = self._lstat(dir_fd, parts)
            self._check_readable(before, parts)
            try:
                fd = os.open(parts[-1], _READ, dir_fd=dir_fd)
            except OSError as exc:
                raise translate(exc, parts) from exc
        finally:
            os.close(dir_fd)
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
            os.close(fd)
            raise Conflict(f"{shown(parts)} was replaced while it was opened; try again")
        try:
            self._check_readable(now, parts)
        except BaseException:
            os.close(fd)
            raise
        return fd, now

    @staticmethod
    def _check_readable(st: os.stat_result, parts: Parts) -> None:
        if stat.S_ISLNK(st.st_mode):
            raise link_refused(parts)
        if stat.S_ISDIR(st.st_mode):
            raise Conflict(f"{shown(parts)} is a directory", field="path")
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"path: {shown(parts)} is not a regular file", field="path")
        if st.st_nlink > 1:
            raise InvalidInput(
                f"path: {shown(parts)} has other hard links (it may be a file from outside "
                "the server's directory linked in): it is not read",
                field="path",
            )

    def read(self, parts: Parts, *, limit: int) -> tuple[bytes, os.stat_result]:
        """The whole file ``parts`` (TooLarge beyond ``limit`` bytes) and its status."""
        fd, st = self.open_file(parts)
        try:
            if st.st_size > limit:
                raise TooLarge(
                    f"{shown(parts)} has {st.st_size} bytes, more than {limit} "
                    "(download it instead)"
                )
            chunks: list[bytes] = []
            size = 0
            while size <= limit and (chunk := os.read(fd, _CHUNK)):
                chunks.append(chunk)
                size += len(chunk)
            if size > limit:
                raise TooLarge(f"{shown(parts)} grew beyond {limit} bytes while it was read")
            return b"".join(chunks), st
        except OSError as exc:
            raise translate(exc, parts) from exc
        finally:
            os.close(fd)

    # -- changing -----------------------------------------------------------------------

    def create(self, parts: Parts) -> PendingFile:
        """A new file that will replace (or become) the regular file ``parts``."""
        if not parts:
            raise Conflict(". is a directory", field="path")
        dir_fd = self._open_dir(parts[:-1])
        try:
            keep_mode: int | None = None
            try:
                st: os.stat_result | None = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None:
                if stat.S_ISLNK(st.st_mode):
                    raise link_refused(parts)
                if stat.S_ISDIR(st.st_mode):
                    raise Conflict(f"{shown(parts)} is a directory", field="path")
                if not stat.S_ISREG(st.st_mode):
                    raise InvalidInput(f"path: {shown(parts)} is not a regular file", field="path")
                keep_mode = stat.S_IMODE(st.st_mode) & 0o777  # never set-id bits
            temp = f".leosuite-{secrets.token_hex(8)}.tmp"
            fd = os.open(temp, _NEW, 0o644 if keep_mode is None else keep_mode, dir_fd=dir_fd)
        except OSError as exc:
            os.close(dir_fd)
            raise translate(exc, parts) from exc
        except BaseException:
            os.close(dir_fd)
            raise
        return PendingFile(dir_fd, parts, temp, fd, keep_mode=keep_mode, owner=self.owner)

    def write(self, parts: Parts, data: bytes) -> dict[str, Any]:
        """Replace (or create) the file ``parts`` with ``data``; its entry."""
        pending = self.create(parts)
        try:
            pending.write(data)
        except BaseException:
            pending.abort()
            raise
        return pending.commit()

    def mkdir(self, parts: Parts, *, parents: bool = False) -> dict[str, Any]:
        """Make the directory ``parts`` (and, with ``parents``, those above it)."""
        if not parts:
            raise Conflict(". exists already", field="path")
        fd = self._open_dir(parts[:-1], make=parents)
        try:
            self._make_dir(fd, parts)
            return entry_of(parts[-1], self._lstat(fd, parts))
        finally:
            os.close(fd)

    def delete(self, parts: Parts, *, recursive: bool = False) -> str:
        """Delete ``parts``: a file, a link (never what it points to), an empty directory,
        or with ``recursive`` a directory and everything in it; what it was."""
        if not parts:
            raise InvalidInput(
                "path: the server's directory itself cannot be deleted", field="path"
            )
        fd = self._open_dir(parts[:-1])
        try:
            st = self._lstat(fd, parts)
            name = parts[-1]
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=fd)
                return "link" if stat.S_ISLNK(st.st_mode) else "file"
            if not recursive:
                os.rmdir(name, dir_fd=fd)
            else:
                _remove_tree(fd, name, parts)
            return "directory"
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                raise Conflict(
                    f"{shown(parts)} is a directory that is not empty (delete it recursively)",
                    field="path",
                ) from None
            raise translate(exc, parts) from exc
        finally:
            os.close(fd)

    def rename(self, parts: Parts, to: Parts) -> dict[str, Any]:
        """Move ``parts`` (a link moves as itself) to ``to``, which must not exist; the
        moved entry."""
        if not parts or not to:
            raise InvalidInput("path: the server's directory itself cannot be moved", field="path")
        src_fd = self._open_dir(parts[:-1])
        try:
            dst_fd = self._open_dir(to[:-1], field="to")
        except BaseException:
            os.close(src_fd)
            raise
        try:
            self._lstat(src_fd, parts)
            with contextlib.suppress(NotFound):
                if stat.S_ISLNK(self._lstat(dst_fd, to, "to").st_mode):
                    raise link_refused(to, "to")
                raise Conflict(f"{shown(to)} exists already", field="to")
            try:
                _rename_no_replace(src_fd, parts[-1], dst_fd, to[-1])
            except OSError as exc:
                field = "to" if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) else "path"
                raise translate(exc, to if field == "to" else parts, field) from exc
            return entry_of(to[-1], self._lstat(dst_fd, to, "to"), dst_fd)
        finally:
            os.close(src_fd)
            os.close(dst_fd)


#: Directories deeper than this below the one deleted are refused (not followed).
_MAX_DEPTH = 128


def _remove_tree(parent: int, name: str, parts: Parts, depth: int = 0) -> None:
    """Delete directory ``name`` of ``parent`` and everything in it. Each directory is
    opened with ``O_DIRECTORY|O_NOFOLLOW|O_NONBLOCK``: a link or a FIFO swapped in for
    it while the delete runs fails at once; nothing is followed or waited on."""
    if depth > _MAX_DEPTH:
        raise InvalidInput(
            f"path: {shown(parts)} is nested over {_MAX_DEPTH} directories deep", field="path"
        )
    fd = os.open(name, _DIR | os.O_NONBLOCK, dir_fd=parent)
    try:
        with os.scandir(fd) as entries:
            names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for child, is_dir in names:
            if is_dir:
                _remove_tree(fd, child, parts, depth + 1)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)
