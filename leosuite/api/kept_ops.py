"""What destroyed servers left behind (their kept directories and logs), as the HTTP
API (``/api/server_kept_list``, ``/api/server_kept_purge``) and the admin API
(``/kept``) offer it: listed and purged by an ADMIN only, each removal (and each
failure to remove) written to the audit log under the server's name, and the same for
the housekeeping that applies ``servers.kept_days``.

An entry on the wire: ``{"server", "kind" ("files" or "logs"), "path" (relative to the
data directory), "size" (bytes on disk), "since" (when it was set aside, ISO 8601
UTC)}``. A purge names the servers whose entries go, a minimum age in days, or both;
never neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
import trio

from ..audit import Actor
from ..clock import iso_utc
from ..errors import InvalidInput
from ..store.servers import NAME_RE
from ..supervision.kept_logs import KeptEntry, KeptPurge
from .context import ApiContext

__all__ = ["Days", "kept_json", "list_kept", "purge_expired_kept", "purge_kept"]

#: A minimum age in days a client sends (``older_than``/``olderThan``): up to 100 years.
Days = Annotated[float, msgspec.Meta(ge=0, le=36525)]


def kept_json(entry: KeptEntry) -> dict[str, Any]:
    return {
        "server": entry.server,
        "kind": entry.kind,
        "path": entry.path,
        "size": entry.size,
        "since": iso_utc(entry.since),
    }


def _server_names(servers: Sequence[str], field: str) -> frozenset[str]:
    """The names a purge asks for, each a server name (never a path)."""
    for name in servers:
        if NAME_RE.fullmatch(name) is None:
            raise InvalidInput(f"{field}: not a server name: {name[:80]!r}", field=field)
    return frozenset(servers)


async def list_kept(ctx: ApiContext) -> list[dict[str, Any]]:
    return [kept_json(entry) for entry in await ctx.servers.kept()]


async def purge_kept(
    ctx: ApiContext,
    actor: Actor,
    *,
    servers: Sequence[str] | None,
    older_than: float | None,
    fields: tuple[str, str] = ("servers", "older_than"),
) -> dict[str, Any]:
    """Remove the kept entries of ``servers`` at least ``older_than`` days old (``fields``
    name the two in refusals); answer ``{"purged": [entry], "failed": [{"path",
    "message"}]}``."""
    if servers is None and older_than is None:
        raise InvalidInput(
            f"{fields[0]} or {fields[1]}: give one or both ({fields[1]} in days, 0: any age)",
            field=fields[0],
        )
    names = None if servers is None else _server_names(servers, fields[0])
    with trio.CancelScope(shield=True):  # what was removed is audited, whoever hangs up
        result = await ctx.servers.remove_kept(ctx.now(), servers=names, older_than_days=older_than)
        await _audit(ctx, result, actor, "")
    return {
        "purged": [kept_json(entry) for entry in result.removed],
        "failed": [{"path": entry.path, "message": why} for entry, why in result.failed],
    }


async def purge_expired_kept(ctx: ApiContext, now: float | None = None) -> KeptPurge:
    """Housekeeping: remove what was kept longer than ``servers.kept_days`` before
    ``now`` (default: the daemon's clock), each removal audited."""
    days = ctx.settings.servers.kept_days
    with trio.CancelScope(shield=True):
        result = await ctx.servers.purge_kept(ctx.now() if now is None else now)
        await _audit(ctx, result, None, f" (kept longer than servers.kept_days, {days:g} days)")
    return result


async def _audit(ctx: ApiContext, result: KeptPurge, actor: Actor | None, why: str) -> None:
    for entry in result.removed:
        await ctx.audit.record_done(
            "server",
            f"purged kept {entry.kind} of {entry.server}: {entry.path}, {entry.size} bytes{why}",
            actor=actor,
            session=entry.server,
        )
    for entry, problem in result.failed:
        await ctx.audit.record_done(
            "server",
            f"could not purge kept {entry.kind} of {entry.server}: {entry.path}: {problem}",
            actor=actor,
            session=entry.server,
            level="warning",
        )
