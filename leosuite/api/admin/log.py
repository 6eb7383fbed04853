"""Admin REST API (seed 002): the server log, which is the one audit log.

``GET /log/`` answers up to 100 entries, newest first::

    [{"timestamp": "2026-11-23T10:15:02.345Z", "level": "Info", "topic": "auth",
      "session": "", "user": "1;127.0.0.1;admin", "message": "login"}, ...]

``timestamp`` is ISO 8601 in UTC, cut (not rounded) to the millisecond; ``level`` is
``Error``, ``Warn``, ``Info`` or ``Debug``; ``user`` is the ``id;ip;name`` triple
(``""`` when the entry concerns nobody). Query parameters, each optional (empty is
the same as absent):

- ``page``: 0, 1, 2, ... (page 0 holds the newest 100 entries);
- ``session``: only that session's entries: its id or its name (``#`` optional),
  in any letter case; a name finds the entries of every session opened under it,
  open or closed, and also entries whose session field is that very text (a
  server's name);
- ``user``: only entries whose ``id;ip;name`` triple contains this text;
- ``contains``: only entries whose message contains this text;
- ``after``: only entries strictly later than this time: ISO 8601 (``2026-11-23``,
  ``2026-11-23T10:15:02.345Z``, ``...+02:00``; without an offset it is UTC) or unix
  seconds (``1795426502.345``). A client that follows the log asks again with the
  newest ``timestamp`` it has; entries in that same millisecond come back once more,
  so it skips the ones it has already shown.

``user`` and ``contains`` ignore the letter case of ASCII letters and take every
character literally (``%`` and ``_`` too). A filter longer than the longest text the
log keeps (4000 characters) matches nothing. Anything else in ``page`` or ``after``
is 400. Retention (:func:`leosuite.audit.purge_audit`) is
run by the daemon's housekeeping, with ``[housekeeping] audit_keep_days`` and
``audit_keep_entries``. The filters are :mod:`leosuite.api.log_ops`, shared with the
WebSocket ``get_logs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Response, request

from ...auth.service import Principal
from ...errors import InvalidInput
from ...store.audit_search import search
from ..log_ops import (
    LEVEL_NAMES,
    MAX_FILTER_CHARS,
    entry_view,
    format_timestamp,
    log_query,
    parse_after,
)

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = [
    "LEVEL_NAMES",
    "MAX_FILTER_CHARS",
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
#: The text filters of the query string.
FILTERS = ("session", "user", "contains")


def parse_page(text: str | None) -> int:
    if not text:
        return 0
    if not text.isascii() or not text.isdigit() or len(text) > 8 or int(text) > MAX_PAGE:
        raise InvalidInput(
            f"page: must be a whole number from 0 to {MAX_PAGE} (got {text[:40]!r})", field="page"
        )
    return int(text)


def register(routes: AdminRoutes) -> None:
    from .app import admin_json  # admin imports this module first

    ctx = routes.ctx

    async def read_log(principal: Principal) -> Response:
        page = parse_page(request.args.get("page"))
        after = parse_after(request.args.get("after"))
        session, user, contains = (request.args.get(k) or "" for k in FILTERS)
        query = log_query(ctx.chat.core, session=session, user=user, contains=contains, after=after)
        if query is None:
            return admin_json([])
        entries = await ctx.db.call(
            lambda conn: search(conn, query, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
        )
        return admin_json([entry_view(e) for e in entries])

    routes.add("/log", read_log, ["GET"])
