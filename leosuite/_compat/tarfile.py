"""tarfile internals: a member header class that refuses, before ``tarfile`` reads them,
an extended header (PAX records, GNU long names) over a size and any GNU sparse member.

``tarfile`` reads an extended header whole and a GNU sparse map without a bound; the one
place that dispatches on a header's type, the private ``TarInfo._proc_member``, and the
three private ``_proc_gnusparse_*`` readers are overridden. Written and checked against
CPython 3.11.7, 3.12.1 and 3.13.0 (same names and call sites in all three); where
``_proc_member`` is missing the plain ``TarInfo`` is used, as the header checks after
reading still refuse such members.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from typing import Any

__all__ = ["guarded_tarinfo"]

_EXTENDED = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
_proc_member: Callable[[tarfile.TarInfo, tarfile.TarFile], tarfile.TarInfo] | None = vars(
    tarfile.TarInfo
).get("_proc_member")


def guarded_tarinfo(
    refuse: Callable[[str], BaseException], *, extended_max: int
) -> type[tarfile.TarInfo]:
    """A ``TarInfo`` class for ``tarfile.open(tarinfo=...)`` that raises ``refuse(why)``
    for an extended header of more than ``extended_max`` bytes and for a GNU sparse
    member, before either is read; ``tarfile.TarInfo`` where the private method it
    overrides is missing."""
    if _proc_member is None:
        return tarfile.TarInfo
    proc_member = _proc_member

    def refuse_sparse(*_: Any) -> None:
        raise refuse("the archive holds a sparse member (GNU format): not supported")

    class GuardedTarInfo(tarfile.TarInfo):
        def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
            if self.type in _EXTENDED and self.size > extended_max:
                raise refuse(
                    f"the archive holds an extended header of {self.size} bytes "
                    f"(more than {extended_max})"
                )
            if self.type == tarfile.GNUTYPE_SPARSE:
                refuse_sparse()
            return proc_member(self, tarfile_)

        _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = refuse_sparse

    return GuardedTarInfo
