"""``leosuite server logs NAME --file FILE [-f]``: a server's own log file, printed as
``logs`` prints the console (``server_logfile`` over HTTP; ``-f`` long-polls it).

``FILE`` is a declared file's path (``logs/latest.log``) or, when only one declared file
has it, its name alone (``latest.log``).
"""

from __future__ import annotations

import base64
import sys
from typing import Any

from ...errors import NotFound
from ..http import HttpClient

__all__ = ["print_logfile"]

#: How long one long poll of ``-f`` asks to wait (the daemon may cut it shorter).
_WAIT = 25.0


def _pick(files: list[dict[str, Any]], name: str, wanted: str) -> dict[str, Any]:
    exact = [f for f in files if f["file"] == wanted]
    named = [f for f in files if f["file"].rsplit("/", 1)[-1] == wanted]
    found = exact or named
    if len(found) != 1:
        known = ", ".join(f["file"] for f in files) or "none"
        why = "several declared log files are named" if found else "no declared log file"
        raise NotFound(f"{name}: {why} {wanted!r} (declared: {known})", field="file")
    return found[0]


def print_logfile(
    client: HttpClient, name: str, wanted: str, start: int | None, *, follow: bool
) -> None:
    """The log file from ``start`` (default: its last 64 KiB) to its end, or for ever."""
    listing = client.post("/api/server_logfile", {"server": name})
    entry = _pick(listing["files"], name, wanted)
    if "error" in entry:
        raise NotFound(f"{name}: {entry['file']}: {entry['error']}", field="file")
    index = max(0, entry["readIndex"] - 64 * 1024) if start is None else start
    body: dict[str, Any] = {"server": name, "file": entry["file"]}
    while True:
        answer = client.post(
            "/api/server_logfile", {**body, "readIndex": index, "wait": _WAIT if follow else None}
        )
        if answer["oldReadIndex"] > index:
            print(f"[{answer['oldReadIndex'] - index} bytes no longer readable]", file=sys.stderr)
        data = answer["data"]
        raw = base64.b64decode(data) if answer["encoding"] == "base64" else data.encode("utf-8")
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()
        index = answer["nextReadIndex"]
        if not follow and index >= answer["readIndex"]:
            return
