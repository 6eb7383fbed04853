"""The rules a member must pass before a restore writes anything: pure checks on the
headers of a whole archive, no file-system access."""

from __future__ import annotations

import tarfile
from collections import deque

from leosuite.backups.archive_types import MAX_NAME, UnsafeArchive, shown

__all__ = ["LINK_BYTES_MAX", "Kind", "Tree", "member_parts"]

#: The names and targets of all symbolic links of an archive, together, in bytes.
LINK_BYTES_MAX = 16 << 20
_LINK_HOPS = 40  # as the kernel's SYMLOOP_MAX

Kind = str  # "file", "dir" or "link"


def _refuse(name: str, why: str) -> UnsafeArchive:
    return UnsafeArchive(f"unsafe archive: member {shown(name)}: {why}")


def _length(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def member_parts(info: tarfile.TarInfo) -> tuple[tuple[str, ...], Kind]:
    """The member's path components and kind, or :class:`UnsafeArchive` naming it.

    Empty and ``.`` components are dropped (``./a`` is ``a``); an empty result is the
    destination itself, allowed only for a directory (and then skipped)."""
    name = info.name
    if _length(name) > MAX_NAME:
        raise _refuse(name, f"a name longer than {MAX_NAME} bytes")
    if name.startswith("/"):
        raise _refuse(name, "an absolute path")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise _refuse(name, "a '..' component")
    if "\0" in name:
        raise _refuse(name, "a NUL character in its name")
    kind: Kind
    if info.islnk():
        raise _refuse(name, "a hard link")
    if info.ischr() or info.isblk():
        raise _refuse(name, "a device")
    if info.isfifo():
        raise _refuse(name, "a FIFO")
    if info.isreg():
        kind = "file"
    elif info.isdir():
        kind = "dir"
    elif info.issym():
        kind = "link"
        target = info.linkname
        if not target:
            raise _refuse(name, "a symbolic link without a target")
        if target.startswith("/"):
            raise _refuse(name, f"a symbolic link to an absolute path {shown(target)}")
        if _length(target) > MAX_NAME or "\0" in target:
            raise _refuse(name, "a symbolic link with an over-long target")
    else:
        raise _refuse(name, f"an unsupported member type {info.type!r}")
    if not parts and kind != "dir":
        raise _refuse(name, "names the destination itself")
    return parts, kind


def _escapes(parts: tuple[str, ...], links: dict[str, str]) -> bool:
    """Whether the symbolic link at ``parts`` resolves outside the destination, following
    every other link of the archive as the kernel would once all are in place."""
    current = list(parts[:-1])
    pending = deque(links["/".join(parts)].split("/"))
    hops = 0
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not current:
                return True
            current.pop()
            continue
        current.append(part)
        target = links.get("/".join(current))
        if target is not None:
            hops += 1
            if hops > _LINK_HOPS or target.startswith("/"):
                return True
            current.pop()
            pending.extendleft(reversed(target.split("/")))
    return False


class Tree:
    """The shape of an archive, member by member: no name twice, nothing inside a file
    or a symbolic link, no file or link where a directory is; then (:meth:`verify_links`)
    no symbolic link that resolves outside, through the others included.

    Names are kept as their ``hash()`` (keyed per process), so memory stays small: two
    different names share one with a chance of about 1e-8 in a million-member archive,
    which at worst refuses a good archive as holding a name twice."""

    def __init__(self, *, max_members: int, max_bytes: int | None) -> None:
        self.max_members = max_members
        self.max_bytes = max_bytes
        self.members = 0
        self.files = 0
        self.content = 0
        self.links: dict[str, str] = {}
        self._link_bytes = 0
        self._names: set[int] = set()
        self._dirs: set[int] = set()
        self._parent: tuple[str, ...] | None = None

    def add(self, info: tarfile.TarInfo) -> tuple[tuple[str, ...], Kind]:
        parts, kind = member_parts(info)
        self.members += 1
        if self.members > self.max_members:
            raise UnsafeArchive(f"unsafe archive: more than {self.max_members} members")
        if kind == "file":
            self.files += 1
            self.content += info.size
            if self.max_bytes is not None and self.content > self.max_bytes:
                raise UnsafeArchive(
                    f"unsafe archive: more than {self.max_bytes} bytes once unpacked"
                    f" (at member {shown(info.name)})"
                )
        if not parts:
            return parts, kind
        self._check_parents(info.name, parts[:-1])
        key = hash("/".join(parts))
        if key in self._names:
            raise _refuse(info.name, "its name is in the archive twice")
        if kind != "dir" and key in self._dirs:
            raise _refuse(info.name, "a directory of the archive has the same name")
        self._names.add(key)
        if kind == "dir":
            self._dirs.add(key)
        elif kind == "link":
            self._link_bytes += _length(info.name) + _length(info.linkname)
            if self._link_bytes > LINK_BYTES_MAX:
                raise UnsafeArchive("unsafe archive: too many symbolic links")
            self.links["/".join(parts)] = info.linkname
        return parts, kind

    def _check_parents(self, name: str, parent: tuple[str, ...]) -> None:
        if parent == self._parent:
            return  # checked with the previous member; a file by its name is refused since
        for depth in range(1, len(parent) + 1):
            key = hash("/".join(parent[:depth]))
            if key in self._dirs:
                continue
            if key in self._names:
                raise _refuse(name, "it is inside a file or a symbolic link of the archive")
            self._dirs.add(key)
        self._parent = parent

    def verify_links(self) -> None:
        for name, target in self.links.items():
            if _escapes(tuple(name.split("/")), self.links):
                raise _refuse(
                    name, f"a symbolic link to {shown(target)}: outside the destination or a loop"
                )
