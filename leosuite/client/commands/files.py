"""``leosuite server files NAME ...``: the files in a server's directory, over the HTTP
API (``/api/server_files_*``) with the saved token.

    leosuite server files NAME ls [PATH]
    leosuite server files NAME cat PATH            the file's bytes to stdout
    leosuite server files NAME put LOCAL REMOTE    upload (LOCAL - : stdin)
    leosuite server files NAME get REMOTE LOCAL    download (LOCAL - : stdout)
    leosuite server files NAME mv PATH TO
    leosuite server files NAME rm PATH [-r]
    leosuite server files NAME mkdir PATH [-p]

Paths are relative to the server's directory. ``put`` and ``get`` stream the file: it
is never held whole in memory; ``get`` writes LOCAL only once the whole file arrived.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from ...errors import AuthError, Conflict, InvalidInput, LeosuiteError, NotFound, TooLarge
from ..http import ApiError, HttpClient

__all__ = ["add_files_arguments", "run_files_command"]

_BY_STATUS: dict[int, type[LeosuiteError]] = {
    400: InvalidInput,
    403: AuthError,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
}
_CHUNK = 256 * 1024


def add_files_arguments(
    parser: argparse.ArgumentParser, common: Callable[[argparse.ArgumentParser], None]
) -> None:
    """``NAME ACTION ...`` on ``parser``; each action also takes the ``common`` options."""
    parser.add_argument("name", metavar="NAME", help="the server")
    actions = parser.add_subparsers(dest="files_action", metavar="ACTION", required=True)

    def action(name: str, text: str, *paths: str) -> argparse.ArgumentParser:
        # The common options given before ACTION stand unless given again after it.
        sub: argparse.ArgumentParser = actions.add_parser(
            name, help=text, argument_default=argparse.SUPPRESS
        )
        common(sub)
        for path in paths:
            sub.add_argument(path.lower(), metavar=path)
        return sub

    action("ls", "list a directory (default: the server's own)").add_argument(
        "path", nargs="?", default="", metavar="PATH"
    )
    action("cat", "print a file's bytes", "PATH")
    action("put", "upload LOCAL (- : stdin) as REMOTE (ending in /: into it)", "LOCAL", "REMOTE")
    action("get", "download REMOTE to LOCAL (- : stdout; a directory: into it)", "REMOTE", "LOCAL")
    action("mv", "move or rename PATH to TO (which must not exist)", "PATH", "TO")
    action("rm", "delete a file, a link or an empty directory", "PATH").add_argument(
        "-r", "--recursive", action="store_true", default=False, help="a directory and all in it"
    )
    action("mkdir", "make a directory", "PATH").add_argument(
        "-p", "--parents", action="store_true", default=False, help="the ones above it too"
    )


def _open(client: HttpClient, path: str, data: Any, headers: Mapping[str, str]) -> Any:
    """POST ``data`` to ``path``; the open answer (its body not read yet)."""
    req = urllib.request.Request(client.base_url + path, data=data, method="POST")  # noqa: S310
    for key, value in headers.items():
        req.add_header(key, value)
    if client.token:
        req.add_header("Authorization", f"Bearer {client.token}")
    try:
        return urllib.request.urlopen(req, timeout=client.timeout)  # noqa: S310
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        try:
            message = json.loads(payload)["error_message"]
        except (ValueError, KeyError, TypeError):
            message = payload.decode(errors="replace")[:200] or exc.reason
        raise _BY_STATUS.get(exc.code, ApiError)(f"{message} (HTTP {exc.code})") from None
    except urllib.error.URLError as exc:
        raise ApiError(
            f"cannot reach leosuite at {client.base_url}: {exc.reason}; "
            "is 'leosuite serve' running?"
        ) from None


def _copy(source: IO[bytes], target: IO[bytes]) -> None:
    while chunk := source.read(_CHUNK):
        target.write(chunk)


def _download(client: HttpClient, server: str, remote: str, local: str) -> int:
    """``remote`` to ``local`` (``-``: stdout); the bytes copied."""
    body = json.dumps({"server": server, "path": remote}).encode()
    headers = {"Content-Type": "application/json"}
    with _open(client, "/api/server_files_download", body, headers) as answer:
        if local == "-":
            _copy(answer, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return int(answer.headers.get("Content-Length") or 0)
        target = Path(local)
        if target.is_dir():
            target = target / Path(remote).name
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                _copy(answer, out)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        return target.stat().st_size


def _upload(client: HttpClient, server: str, local: str, remote: str) -> Any:
    if remote.endswith("/") or remote in ("", "."):
        remote = remote + (Path(local).name if local != "-" else "")
    query = urllib.parse.urlencode({"server": server, "path": remote})
    headers = {"Content-Type": "application/octet-stream"}
    if local == "-":
        source: IO[bytes] = sys.stdin.buffer  # sent chunked: its length is not known
    else:
        source = open(local, "rb")  # noqa: SIM115 - closed below
        headers["Content-Length"] = str(os.fstat(source.fileno()).st_size)
    try:
        with _open(client, f"/api/server_files_upload?{query}", source, headers) as answer:
            return json.loads(answer.read())
    finally:
        if source is not sys.stdin.buffer:
            source.close()


def _mode_letter(kind: str) -> str:
    return {"directory": "d", "file": "-", "link": "l"}.get(kind, "?")


def _line(entry: Mapping[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry["mtime"]))
    name = entry["name"] + ("/" if entry["type"] == "directory" else "")
    if entry["type"] == "link":
        name += f" -> {entry.get('target')}"
    return f"{_mode_letter(entry['type'])} {entry['mode']} {entry['size']:>12}  {when}  {name}"


def run_files_command(args: argparse.Namespace, client: HttpClient) -> int:
    """One file action on server ``args.name``; the exit status."""
    action, server = args.files_action, args.name
    out: Any
    if action == "ls":
        out = client.post("/api/server_files_list", {"server": server, "path": args.path})
        lines = [_line(entry) for entry in out["entries"]]
        if out["truncated"]:
            lines.append(f"(only the first {len(lines)} entries)")
        text = "\n".join(lines) or "(empty)"
    elif action == "cat":
        _download(client, server, args.path, "-")
        return 0
    elif action == "get":
        size = _download(client, server, args.remote, args.local)
        if args.local == "-":
            return 0
        out = {"path": args.remote, "local": args.local, "size": size}
        text = f"{args.remote} -> {args.local}"
    elif action == "put":
        out = _upload(client, server, args.local, args.remote)
        text = f"{args.local} -> {out['path']} ({out['size']} bytes)"
    elif action == "mv":
        body = {"server": server, "path": args.path, "to": args.to}
        out = client.post("/api/server_files_rename", body)
        text = f"{args.path} -> {out['path']}"
    elif action == "rm":
        body = {"server": server, "path": args.path, "recursive": args.recursive}
        client.post("/api/server_files_delete", body)
        out, text = {"path": args.path, "deleted": True}, f"deleted {args.path}"
    else:
        body = {"server": server, "path": args.path, "parents": args.parents}
        out = client.post("/api/server_files_mkdir", body)
        text = f"made {out['path']}/"
    print(json.dumps(out, indent=2) if args.json else text)
    return 0
