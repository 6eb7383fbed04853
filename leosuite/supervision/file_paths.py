"""The paths a client names in a server's directory, the entries it is shown, and the
translation of the file system's errors into leosuite's.

A path is relative to the server's directory: components joined by ``/`` (empty and
``.`` components are skipped, so ``""`` and ``.`` name the directory itself), never
``..``, never absolute, no NUL byte, at most :data:`MAX_PATH_BYTES` bytes of UTF-8 in
all and :data:`MAX_NAME_BYTES` a component.
"""

from __future__ import annotations

import base64
import errno
import os
import stat
from typing import Any

from ..errors import (
    Conflict,
    DiskFull,
    InternalError,
    InvalidInput,
    LeosuiteError,
    NotFound,
    PermissionDenied,
)

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "Parts",
    "entry_of",
    "link_refused",
    "parse_path",
    "shown",
    "translate",
]

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255

#: A parsed path: its components, the server's directory itself being ``()``.
Parts = tuple[str, ...]

_SHOWN_MAX = 200


def parse_path(text: str, *, field: str = "path") -> Parts:
    """The components of ``text``; InvalidInput naming ``field`` when it is not a
    relative path below the server's directory."""
    if "\0" in text:
        raise InvalidInput(f"{field}: contains a NUL byte", field=field)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"{field}: is not valid UTF-8", field=field) from None
    if size > MAX_PATH_BYTES:
        raise InvalidInput(f"{field}: is longer than {MAX_PATH_BYTES} bytes", field=field)
    if text.startswith("/"):
        raise InvalidInput(
            f"{field}: must be relative to the server's directory (no leading /)", field=field
        )
    parts = tuple(part for part in text.split("/") if part not in ("", "."))
    if ".." in parts:
        raise InvalidInput(f"{field}: '..' is not allowed", field=field)
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in parts):
        raise InvalidInput(f"{field}: a name is longer than {MAX_NAME_BYTES} bytes", field=field)
    return parts


def shown(parts: Parts) -> str:
    """``parts`` as a client wrote them, shortened for a message."""
    text = "/".join(parts) or "."
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 1] + "…"


def link_refused(parts: Parts, field: str = "path") -> InvalidInput:
    return InvalidInput(
        f"{field}: {shown(parts)} is a symbolic link (links are never followed)", field=field
    )


def translate(exc: OSError, parts: Parts, field: str = "path") -> LeosuiteError:
    """The error a client is given for ``exc`` met at ``parts``."""
    where = shown(parts)
    code = exc.errno
    if code == errno.ENOENT:
        return NotFound(f"no such file or directory: {where}", field=field)
    if code == errno.EEXIST:
        return Conflict(f"{where} exists already", field=field)
    if code == errno.EISDIR:
        return Conflict(f"{where} is a directory", field=field)
    if code == errno.ENOTEMPTY:
        return Conflict(f"{where} is a directory that is not empty", field=field)
    if code == errno.ENOTDIR:
        return InvalidInput(f"{field}: {where} is not a directory", field=field)
    if code == errno.ELOOP:
        return link_refused(parts, field)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDenied(f"the daemon may not do this to {where} (permission denied)")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull("a file in the server's directory could not be written")
    if code == errno.ENAMETOOLONG:
        return InvalidInput(f"{field}: {where} is too long", field=field)
    if code == errno.EINVAL:
        return InvalidInput(f"{field}: {where} cannot be moved into itself", field=field)
    if code == errno.EXDEV:
        return Conflict(f"{where} is on another file system", field=field)
    return InternalError(f"{where}: {exc.strerror or exc}")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


def _readable(name: str) -> tuple[str, str | None]:
    """A directory entry's name as JSON can carry it, and its bytes in base64 when they
    are not UTF-8 (then the name shows U+FFFD in their place)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(name)
        return raw.decode("utf-8", "replace"), base64.b64encode(raw).decode("ascii")
    return name, None


def entry_of(name: str, st: os.stat_result, dir_fd: int | None = None) -> dict[str, Any]:
    """``{"name", "type", "size", "mtime", "mode"}`` (``"target"`` of a link, read from
    ``dir_fd``; ``"raw_name"`` of a name that is not UTF-8)."""
    display, raw = _readable(name)
    entry: dict[str, Any] = {
        "name": display,
        "type": _kind(st.st_mode),
        "size": st.st_size,
        "mtime": st.st_mtime,
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
    }
    if raw is not None:
        entry["raw_name"] = raw
    if stat.S_ISLNK(st.st_mode) and dir_fd is not None:
        try:
            entry["target"] = _readable(os.readlink(name, dir_fd=dir_fd))[0]
        except OSError:
            entry["target"] = None
    return entry
