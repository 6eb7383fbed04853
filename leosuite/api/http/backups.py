"""``/api/server_backup_list|create|delete|restore|status`` (POST, JSON) and ``GET
/api/server_backup_download?server=NAME&id=ID``: a server's backups; the rules are
:mod:`leosuite.api.backup_ops`'s.

A download is the archive as it is on disk, read in blocks as it is sent (never whole
in memory), with its length, an attachment file name made of the server's and the
backup's names, and its SHA-256 as the ``ETag`` and in ``X-Backup-SHA256``. Its token
travels in the ``Authorization`` header only, as a link elsewhere cannot send one.
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from ...errors import InvalidInput
from ..backup_ops import BackupId, BackupOps, Note
from ..context import ApiContext
from ..file_ops import Opened as OpenedFile
from ..requests import Body, authenticate, decode_body, peer_ip
from ..server_ops import ServerOps
from .auth import json_response
from .files import MIN_DOWNLOAD_RATE
from .files import _FileStream as FileStream  # the files download's block reader

__all__ = [
    "BackupBody",
    "BackupCreateBody",
    "BackupServerBody",
    "DOWNLOAD_PATH",
    "backups_blueprint",
]

DOWNLOAD_PATH = "/api/server_backup_download"


class BackupServerBody(Body, kw_only=True, forbid_unknown_fields=True):
    server: str


class BackupCreateBody(BackupServerBody, kw_only=True, forbid_unknown_fields=True):
    #: A few words kept with the backup (at most 500 characters).
    note: Note = ""


class BackupBody(BackupServerBody, kw_only=True, forbid_unknown_fields=True):
    #: The backup's id (from server_backup_list).
    id: BackupId


def _query_id() -> tuple[str, int]:
    server = request.args.get("server")
    text = request.args.get("id")
    if server is None or text is None:
        raise InvalidInput("server and id are required (?server=NAME&id=ID)", field="id")
    if not text.isascii() or not text.isdigit() or len(text) > 16 or int(text) < 1:
        raise InvalidInput("id: a backup's id is a positive whole number", field="id")
    return server, int(text)


def backups_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("backups", __name__, url_prefix="/api")
    max_body = ctx.settings.http.max_body_bytes
    read_timeout = ctx.settings.http.read_timeout

    async def caller(token: str | None) -> BackupOps:
        return BackupOps(ServerOps(ctx, await authenticate(ctx.auth, token), peer_ip()))

    @bp.post("/server_backup_list")
    async def backup_list() -> Response:
        body = await decode_body(BackupServerBody, max_body)
        return json_response(await (await caller(body.token)).listing(body.server))

    @bp.post("/server_backup_status")
    async def backup_status() -> Response:
        body = await decode_body(BackupServerBody, max_body)
        return json_response((await caller(body.token)).status(body.server))

    @bp.post("/server_backup_create")
    async def backup_create() -> Response:
        body = await decode_body(BackupCreateBody, max_body)
        return json_response(await (await caller(body.token)).create(body.server, body.note))

    @bp.post("/server_backup_delete")
    async def backup_delete() -> Response:
        body = await decode_body(BackupBody, max_body)
        return json_response(await (await caller(body.token)).delete(body.server, body.id))

    @bp.post("/server_backup_restore")
    async def backup_restore() -> Response:
        body = await decode_body(BackupBody, max_body)
        return json_response(await (await caller(body.token)).restore(body.server, body.id))

    @bp.get("/server_backup_download")
    async def backup_download() -> Response:
        ops = await caller(None)  # the header's token only
        server, backup_id = _query_id()
        opened = await ops.open_download(server, backup_id)
        backup = opened.backup
        filename = f"{server}-{backup.file}"  # both names are of safe characters only
        stream = FileStream(OpenedFile(opened.fd, filename, opened.size, backup.created_at))
        response = Response(stream, status=200, content_type="application/octet-stream")
        response.headers["Content-Length"] = str(opened.size)
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        response.headers["ETag"] = f'"{backup.sha256}"'
        response.headers["X-Backup-SHA256"] = backup.sha256
        response.timeout = read_timeout + opened.size / MIN_DOWNLOAD_RATE
        return response

    return bp
