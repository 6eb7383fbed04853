"""``leosuite backup list|create|delete|restore|download``: a server's backups.

    leosuite backup list SERVER
    leosuite backup create SERVER [--note TEXT]
    leosuite backup delete SERVER ID
    leosuite backup restore SERVER ID          (the server stopped)
    leosuite backup download SERVER ID [-o FILE]

``create`` and ``restore`` go over the WebSocket API and draw a progress bar on stderr
from its ``backup.progress`` pushes; ``download`` streams the archive over HTTP to FILE
(default: the name the daemon gives it, in the current directory; ``-``: stdout) with a
bar of the bytes received, writes FILE only once the whole archive arrived and its
SHA-256 matched, and never holds it whole in memory. ``list`` and ``delete`` use HTTP.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from ...errors import InvalidInput
from ..connect import Daemon
from ..http import HttpClient

__all__ = ["add_backup_commands", "format_backup", "run_backup_command"]

_CHUNK = 256 * 1024
_BAR = 30


def add_backup_commands(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    backup = commands.add_parser("backup", help="the backups of a server")
    sub = backup.add_subparsers(dest="backup_command", metavar="ACTION", required=True)

    def add(name: str, text: str, *, with_id: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text)
        common(parser)
        parser.add_argument("server", metavar="SERVER")
        if with_id:
            parser.add_argument("id", metavar="ID", type=int, help="the backup's id (see list)")
        return parser

    add("list", "a server's backups, newest first, and the owner's quota", with_id=False)
    create = add("create", "make a backup now (owner or ADMIN)", with_id=False)
    create.add_argument("--note", default="", help="a few words kept with the backup")
    add("delete", "delete a backup (owner or ADMIN)")
    add("restore", "replace the stopped server's files with a backup (owner or ADMIN)")
    download = add("download", "download a backup's archive")
    download.add_argument("-o", "--output", metavar="FILE", help="where to (- : stdout)")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns


def format_backup(b: Mapping[str, Any]) -> str:
    when = datetime.datetime.fromtimestamp(b["created_at"], tz=datetime.UTC)
    note = f"  {b['note']}" if b.get("note") else ""
    return (
        f"{b['id']:>6}  {b['name']:<24} {_size(b['size']):>10}  {b['files']:>7} files  "
        f"{b['compression']:<4}  by {b['by']}  {when:%Y-%m-%d %H:%M}Z{note}"
    )


class _Bar:
    """A one-line progress bar on stderr (only when stderr is a terminal, or ``always``)."""

    def __init__(self, label: str, *, always: bool = False) -> None:
        self.label = label
        self.shown = always or sys.stderr.isatty()
        self.drawn = False

    def draw(self, phase: str, done: int, total: int) -> None:
        if not self.shown:
            return
        if total > 0:
            part = min(1.0, done / total)
            filled = round(part * _BAR)
            bar = "#" * filled + "-" * (_BAR - filled)
            text = f"{self.label} {phase:<9} [{bar}] {part * 100:5.1f}% {_size(done)}"
        else:
            text = f"{self.label} {phase:<9} {_size(done)}"
        sys.stderr.write("\r" + text + " " * 4)
        sys.stderr.flush()
        self.drawn = True

    def end(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _with_progress(daemon: Daemon, server: str, kind: str, content: dict[str, Any]) -> Any:
    """Call ``kind`` over the WebSocket API, drawing its ``backup.progress`` pushes."""
    from .ws_session import open_session, run_ws  # trio loads only when a command needs it

    bar = _Bar(f"{server}:")

    async def work() -> Any:
        import trio

        async with open_session(daemon.ws, daemon.token) as ws:

            async def show() -> None:
                async for pushed in ws.pushes:
                    body = pushed.content
                    mine = isinstance(body, Mapping) and body.get("server") == server
                    if pushed.type == "backup.progress" and mine:
                        bar.draw(
                            str(body.get("phase")),
                            int(body.get("done_bytes") or 0),
                            int(body.get("total_bytes") or 0),
                        )

            async with trio.open_nursery() as nursery:
                nursery.start_soon(show)
                try:
                    return await ws.call(kind, content)
                finally:
                    nursery.cancel_scope.cancel()

    try:
        return run_ws(work)
    finally:
        bar.end()


def _download(client: HttpClient, server: str, backup_id: int, output: str | None) -> str:
    """The archive to ``output``; where it went."""
    query = urllib.parse.urlencode({"server": server, "id": backup_id})
    req = urllib.request.Request(f"{client.base_url}/api/server_backup_download?{query}")  # noqa: S310
    if client.token:
        req.add_header("Authorization", f"Bearer {client.token}")
    try:
        answer = urllib.request.urlopen(req, timeout=client.timeout)  # noqa: S310
    except urllib.error.HTTPError as exc:
        raise _http_error(exc) from None
    except urllib.error.URLError as exc:
        raise InvalidInput(f"cannot reach leosuite at {client.base_url}: {exc.reason}") from None
    with answer:
        total = int(answer.headers.get("Content-Length") or 0)
        expected = (answer.headers.get("X-Backup-SHA256") or "").lower()
        given = answer.headers.get("Content-Disposition") or ""
        found = re.search(r'filename="([A-Za-z0-9._-]+)"', given)
        name = found.group(1) if found else f"{server}-backup-{backup_id}"
        if output == "-":
            _copy(answer, sys.stdout.buffer, total, expected, _Bar(f"{server}:"))
            sys.stdout.buffer.flush()
            return "stdout"
        target = Path(output) if output else Path(name)
        if target.is_dir():
            target = target / name
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                _copy(answer, out, total, expected, _Bar(f"{server}:"))
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return str(target)


def _http_error(exc: Any) -> Exception:
    from ...errors import AuthError, Conflict, NotFound
    from ..http import ApiError

    payload = exc.read()
    try:
        message = json.loads(payload)["error_message"]
    except (ValueError, KeyError, TypeError):
        message = payload.decode(errors="replace")[:200] or exc.reason
    kinds: dict[int, type[Exception]] = {
        400: InvalidInput,
        403: AuthError,
        404: NotFound,
        409: Conflict,
    }
    return kinds.get(exc.code, ApiError)(f"{message} (HTTP {exc.code})")


def _copy(source: IO[bytes], target: IO[bytes], total: int, expected: str, bar: _Bar) -> None:
    digest = hashlib.sha256()
    done = 0
    try:
        while chunk := source.read(_CHUNK):
            target.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            bar.draw("download", done, total)
    finally:
        bar.end()
    if total and done != total:
        raise InvalidInput(f"the download ended after {done} of {total} bytes")
    if expected and digest.hexdigest() != expected:
        raise InvalidInput("the download's SHA-256 is not the backup's: not saved")


def run_backup_command(args: argparse.Namespace, daemon: Daemon) -> int:
    out: Any
    action, server = args.backup_command, args.server
    client = daemon.http_client()
    if action == "list":
        out = client.post("/api/server_backup_list", {"server": server})
        quota = out["quota"]
        limit = f" of {_size(quota['limit'])}" if quota["limit"] else " (no quota)"
        lines = [format_backup(b) for b in out["backups"]] or ["(no backups)"]
        text = "\n".join([*lines, f"backups of the owner: {_size(quota['used'])}{limit}"])
    elif action == "create":
        out = _with_progress(daemon, server, "backup.create", {"server": server, "note": args.note})
        text = f"created backup {out['id']} of {server}: {format_backup(out).strip()}"
    elif action == "delete":
        out = client.post("/api/server_backup_delete", {"server": server, "id": args.id})
        text = f"deleted backup {args.id} ({out['name']}) of {server}"
    elif action == "restore":
        out = _with_progress(daemon, server, "backup.restore", {"server": server, "id": args.id})
        text = f"restored backup {args.id} ({out['backup']['name']}) into {server}"
    else:
        where = _download(client, server, args.id, args.output)
        out = {"server": server, "id": args.id, "saved": where}
        text = f"downloaded backup {args.id} of {server} to {where}"
    if action == "download" and args.output == "-":
        return 0
    print(json.dumps(out, indent=2) if args.json else text)
    return 0
