"""One log file as a byte stream with the console's contract: the blocking part of
:class:`~.logfile_follow.LogFollower`, run in its worker threads one call at a time.

The daemon reads the live file. Its bytes are addressed by absolute index (the API's
``readIndex``) that never goes back: the current file's byte 0 is index ``base``. A
rotation continues the stream at the next index:

- rename-and-create: the path names another file once it has its first byte (until
  then the old one, still written by a game that has not reopened its log, stays the
  current file); the old file's bytes up to its size then are the previous segment;
- copy-truncate: the same file got smaller than the bytes seen, or its first bytes
  differ from those seen (it regrew, or another file reuses the inode): it begins
  again one past the bytes seen.

Bytes no longer readable (a previous file emptied, a file gone while nobody held it)
are answered from the next readable byte (``old_read_index`` larger than asked): below
the end a read always makes progress. Every open walks the server's directory without
following links (:class:`~.server_files.ServerFiles`), and a file on another filesystem
than the server's directory (a mount inside it) is refused.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import msgspec

from ..errors import Conflict, InternalError, InvalidInput, LeosuiteError, NotFound
from .console_file import ConsoleChunk, check_read
from .file_paths import Parts, shown
from .server_files import ServerFiles

__all__ = ["LogStream", "LogView"]

#: How many first bytes of a file tell it from another file under the same inode.
_HEAD = 64


class LogView(msgspec.Struct, frozen=True):
    """What a stream showed at the end of its last call (read without its lock)."""

    end_index: int = 0
    oldest_index: int = 0
    size: int = 0
    exists: bool = False
    rotations: int = 0


class _Segment(msgspec.Struct):
    fd: int
    base: int
    end: int
    head: bytes  # its first bytes, as seen while it was the current file


def _refusal(exc: LeosuiteError) -> LeosuiteError:
    """A refusal of ``parts`` named as the ``file`` a client asked for."""
    message = exc.message.removeprefix("path: ")
    return type(exc)(f"file: {message}", field="file")


class LogStream:
    """The file ``parts`` below ``root``; it holds what it opens until :meth:`let_go`."""

    def __init__(self, root: Path, parts: Parts) -> None:
        self.parts = parts
        self._files = ServerFiles(root)
        self._base = 0  # index of the current file's byte 0
        self._size = 0  # bytes of the current file seen
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the current file
        self._fd = -1  # the current file, held until let go
        self._prev: _Segment | None = None  # the file rotated away, held until let go
        self._present = False  # the path named a file at the last look
        self._rotations = 0
        self._head = b""  # the current file's first bytes seen (up to _HEAD)

    @property
    def name(self) -> str:
        return "/".join(self.parts)

    @property
    def end_index(self) -> int:
        return self._base + self._size

    @property
    def oldest_index(self) -> int:
        return self._prev.base if self._prev is not None else self._base

    def view(self) -> LogView:
        return LogView(
            end_index=self.end_index,
            oldest_index=self.oldest_index,
            size=self._size,
            exists=self._present,
            rotations=self._rotations,
        )

    def let_go(self) -> None:
        """Close everything held: nobody reads any more."""
        for fd in (self._fd, self._prev.fd if self._prev else -1):
            if fd >= 0:
                os.close(fd)
        self._fd = -1
        self._prev = None

    # -- following ----------------------------------------------------------------------

    def _open(self) -> tuple[int, os.stat_result] | None:
        for attempt in range(3):
            try:
                fd, st = self._files.open_file(self.parts)
            except NotFound:
                return None
            except Conflict as exc:  # replaced while it was opened (a rotation): again
                if attempt == 2:
                    raise _refusal(exc) from None
                continue
            except LeosuiteError as exc:
                raise _refusal(exc) from None
            except OSError as exc:
                raise InternalError(f"{shown(self.parts)}: {exc.strerror or exc}") from exc
            try:
                root_dev = os.stat(self._files.root, follow_symlinks=False).st_dev
            except OSError:
                root_dev = st.st_dev  # the directory went meanwhile: the next look says so
            if st.st_dev != root_dev:
                os.close(fd)
                raise InvalidInput(
                    f"file: {self.name} is on another filesystem than the server's "
                    "directory (a mount inside it): not followed",
                    field="file",
                )
            return fd, st
        return None

    def refresh(self) -> None:
        """Look at the path: follow a rotation, learn the size. Raises the refusal of a
        path that may not be read (a link, another filesystem...)."""
        opened = self._open()
        self._present = opened is not None
        if opened is not None and not self._waits_for_first_byte(*opened):
            self._adopt(*opened)
        elif self._fd >= 0:  # the file renamed away is read until a new one has a byte
            self._follow_held()
        elif opened is None and self._size > 0:  # gone while nobody held it: bytes lost
            self._begin_again(0)
            self._ident = None
        self._clamp_prev()

    def _waits_for_first_byte(self, fd: int, st: os.stat_result) -> bool:
        """Whether ``fd`` is a new, still empty file while the old one is held: the game
        may still write to the old one (until it reopens its log), so the old one stays
        the current file."""
        if self._fd >= 0 and (st.st_dev, st.st_ino) != self._ident and st.st_size == 0:
            os.close(fd)
            return True
        return False

    def _same_head(self, fd: int, head: bytes) -> bool:
        return not head or os.pread(fd, len(head), 0) == head

    def _learn_head(self, fd: int) -> None:
        if len(self._head) < min(_HEAD, self._size):
            self._head = os.pread(fd, min(_HEAD, self._size), 0)

    def _begin_again(self, size: int) -> None:
        """The current file holds other bytes than those seen (copy-truncate, or another
        file under the same inode): they begin one past the bytes seen."""
        self._base += self._size
        self._size = size
        self._head = b""
        self._rotations += 1
        self._drop_prev()

    def _follow_held(self) -> None:
        self._follow(self._fd, os.fstat(self._fd).st_size)

    def _follow(self, fd: int, size: int) -> None:
        """Take the current file's ``size``, from a stat made before its first bytes
        are compared: a file smaller than the bytes seen, or with other first bytes,
        holds other bytes, which begin again."""
        if size < self._size:
            self._begin_again(size)
        elif not self._same_head(fd, self._head):
            # Rewritten since that stat (copy-truncate): its size now is the new bytes'.
            self._begin_again(os.fstat(fd).st_size)
        else:
            self._size = size
        self._learn_head(fd)

    def _clamp_prev(self) -> None:
        """A previous file that shrank (or was rewritten) lost the bytes past its size."""
        prev = self._prev
        if prev is None:
            return
        if not self._same_head(prev.fd, prev.head):
            prev.end = prev.base
        prev.end = min(prev.end, prev.base + os.fstat(prev.fd).st_size)
        if prev.end <= prev.base:
            self._drop_prev()

    def _adopt(self, fd: int, st: os.stat_result) -> None:
        ident = (st.st_dev, st.st_ino)
        if ident == self._ident:
            self._follow(fd, st.st_size)
            if self._fd < 0:
                self._fd = fd
            else:
                os.close(fd)
            return
        if self._ident is not None:  # another file: rename-and-create
            self._drop_prev()
            final = self._size
            if self._fd >= 0:
                size = os.fstat(self._fd).st_size
                self._prev = _Segment(self._fd, self._base, self._base + size, self._head)
                final = max(final, size)
            self._base += final
            self._rotations += 1
        self._ident = ident
        self._size = st.st_size
        self._head = b""
        self._learn_head(fd)
        self._fd = fd

    def _drop_prev(self) -> None:
        if self._prev is not None:
            os.close(self._prev.fd)
            self._prev = None

    # -- reading ------------------------------------------------------------------------

    def read(self, offset: int, limit: int) -> ConsoleChunk:
        """Look at the path, then up to ``limit`` bytes from ``offset``; if those bytes
        are gone, from the oldest byte still readable (``old_read_index`` then differs
        from ``offset``). Below the end it always makes progress: bytes, or a later
        ``old_read_index``."""
        self.refresh()
        check_read(offset, limit, self.end_index, self.name)
        try:
            for _ in range(3):
                offset = self._readable(offset)
                data = self._pread(offset, limit)
                if data or limit == 0 or offset >= self.end_index:
                    break
                self._shrank(offset)  # nothing where bytes were: look at sizes again
            else:
                offset = self.end_index  # still nothing: those bytes are gone
        except OSError as exc:
            if exc.errno == errno.EIO:
                raise InternalError(f"{self.name}: cannot read: {exc.strerror}") from exc
            raise
        return ConsoleChunk(offset, data, offset + len(data), self.end_index)

    def _readable(self, offset: int) -> int:
        """The first readable index at or after ``offset``."""
        offset = max(offset, self.oldest_index)
        if self._prev is not None and self._prev.end <= offset < self._base:
            return self._base
        return offset

    def _pread(self, offset: int, limit: int) -> bytes:
        prev = self._prev
        if prev is not None and offset < prev.end:
            return os.pread(prev.fd, min(limit, prev.end - offset), offset - prev.base)
        if self._fd >= 0 and offset < self.end_index:
            return os.pread(self._fd, min(limit, self.end_index - offset), offset - self._base)
        return b""

    def _shrank(self, offset: int) -> None:
        if self._prev is not None and offset < self._prev.end:
            self._prev.end = offset  # emptied under the reader: its bytes from there are gone
        self._clamp_prev()
        if self._fd >= 0:
            self._follow_held()
        elif self._size > 0:
            self._begin_again(0)
