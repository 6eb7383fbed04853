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
``audit_keep_entries``.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import re
from typing import TYPE_CHECKING, Any

from quart import Response, request

from ...auth.service import Principal
from ...community.models import normalize_channel
from ...community.views import find_session
from ...errors import InvalidInput, NotFound
from ...store.audit import MAX_MESSAGE_CHARS, AuditEntry
from ...store.audit_search import LogQuery, search

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
#: The text filters of the query string.
FILTERS = ("session", "user", "contains")
#: A ``session``, ``user`` or ``contains`` filter longer than this matches nothing.
MAX_FILTER_CHARS = MAX_MESSAGE_CHARS
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

    def session_filter(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(session fields, session names)`` that ``session=text`` stands for: the
        text itself, the id of an open session of that id or name, and the name."""
        fields = [text]
        with contextlib.suppress(NotFound):
            fields.append(find_session(ctx.chat.core, text).id)
        try:
            names: tuple[str, ...] = (normalize_channel(text),)
        except InvalidInput:  # not a name a session could have
            names = ()
        return tuple(fields), names

    async def read_log(principal: Principal) -> Response:
        page = parse_page(request.args.get("page"))
        after = parse_after(request.args.get("after"))
        session, user, contains = (request.args.get(k) or "" for k in FILTERS)
        if max(len(session), len(user), len(contains)) > MAX_FILTER_CHARS:
            return admin_json([])
        sessions, names = session_filter(session) if session else ((), ())
        query = LogQuery(
            sessions=sessions, session_names=names, user=user, contains=contains, after=after
        )
        entries = await ctx.db.call(
            lambda conn: search(conn, query, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
        )
        return admin_json([entry_view(e) for e in entries])

    routes.add("/log", read_log, ["GET"])
