"""Admin REST API (seed 002): the server log, which is the one audit log.

``GET /log/`` answers up to 100 entries, newest first::

    [{"timestamp": "2026-11-23T10:15:02.345Z", "level": "Info", "topic": "auth",
      "session": "", "user": "1;127.0.0.1;admin", "message": "login"}, ...]

``timestamp`` is ISO 8601 in UTC, cut (not rounded) to the millisecond; ``level`` is
``Error``, ``Warn``, ``Info`` or ``Debug``; ``user`` is the ``id;ip;name`` triple
(``""`` when the entry concerns nobody). Query parameters, each optional (empty is
the same as absent):

- ``page``: 0, 1, 2, ... (page 0 holds the newest 100 entries);
- ``session``: only that session's entries, in any letter case;
- ``after``: only entries strictly later than this time: ISO 8601 (``2026-11-23``,
  ``2026-11-23T10:15:02.345Z``, ``...+02:00``; without an offset it is UTC) or unix
  seconds (``1795426502.345``). A client that follows the log asks again with the
  newest ``timestamp`` it has; entries in that same millisecond come back once more,
  so it skips the ones it has already shown.

Anything else in ``page`` or ``after`` is 400. Retention (:func:`leosuite.audit.purge_audit`) is
run by the daemon's housekeeping, with ``[housekeeping] audit_keep_days`` and
``audit_keep_entries``.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import TYPE_CHECKING, Any

from quart import Response, request

from ...auth.service import Principal
from ...errors import InvalidInput
from ...store import audit as audit_table
from ...store.audit import AuditEntry

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = [
    "LEVEL_NAMES",
    "PAGE_SIZE",
    "entry_view",
    "format_timestamp",
    "parse_after",
    "parse_page",
    "register",
]

PAGE_SIZE = 100
#: The highest page number accepted (a larger offset would overflow SQLite's integers).
MAX_PAGE = 10_000_000
#: Stored level -> the seed's spelling.
LEVEL_NAMES = {"error": "Error", "warning": "Warn", "info": "Info", "debug": "Debug"}
_UNIX_SECONDS = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,9})?", re.ASCII)
#: datetime.fromisoformat is lenient (week dates, ...); ask for a date first.
_ISO_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def format_timestamp(timestamp: float) -> str:
    """Unix seconds -> ``2026-11-23T10:15:02.345Z`` (cut to the millisecond, so a
    client's ``after`` with this value never skips a later entry of that millisecond)."""
    millis = math.floor(timestamp * 1000)
    moment = datetime.datetime.fromtimestamp(millis // 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis % 1000:03d}Z"


def entry_view(entry: AuditEntry) -> dict[str, Any]:
    user = entry.user_triple
    return {
        "timestamp": format_timestamp(entry.timestamp),
        "level": LEVEL_NAMES.get(entry.level, entry.level.capitalize()),
        "topic": entry.topic,
        "session": entry.session,
        "user": "" if user == ";;" else user,
        "message": entry.message,
    }


def parse_page(text: str | None) -> int:
    if not text:
        return 0
    if not text.isascii() or not text.isdigit() or len(text) > 8 or int(text) > MAX_PAGE:
        raise InvalidInput(
            f"page: must be a whole number from 0 to {MAX_PAGE} (got {text[:40]!r})", field="page"
        )
    return int(text)


def parse_after(text: str | None) -> float | None:
    """``after`` as unix seconds: ISO 8601 (UTC unless it has an offset) or unix seconds."""
    if not text:
        return None
    if _UNIX_SECONDS.fullmatch(text):
        return float(text)
    if len(text) <= 64 and _ISO_START.match(text):
        try:
            moment = datetime.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
            return moment.timestamp()
        except (ValueError, OverflowError):
            pass
    raise InvalidInput(
        f"after: must be an ISO 8601 time (2026-11-23T10:15:02Z) or unix seconds "
        f"(got {text[:40]!r})",
        field="after",
    )


def register(routes: AdminRoutes) -> None:
    from .app import admin_json  # admin imports this module first

    ctx = routes.ctx

    async def read_log(principal: Principal) -> Response:
        page = parse_page(request.args.get("page"))
        after = parse_after(request.args.get("after"))
        session = request.args.get("session") or None
        entries = await ctx.db.call(
            lambda conn: audit_table.page(
                conn, offset=page * PAGE_SIZE, limit=PAGE_SIZE, session=session, after=after
            )
        )
        return admin_json([entry_view(e) for e in entries])

    routes.add("/log", read_log, ["GET"])
