"""Searching the audit log as every surface offers it (the admin API's ``/log/`` and
the WebSocket ``get_logs``): the filters' parsing and the entry's view.

A ``session`` filter stands for the text itself, the id of an open session of that id
or name, and the name (which finds the entries of every session once opened under
it). ``user``, ``contains`` and ``session`` filters longer than the longest text the
log keeps match nothing. Times (``after``, ``before``) are ISO 8601 (UTC unless they
have an offset) or unix seconds.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import re
from typing import Any

from ..community.core import ChatCore
from ..community.models import normalize_channel
from ..community.views import find_session
from ..errors import InvalidInput, NotFound
from ..store.audit import MAX_MESSAGE_CHARS, AuditEntry
from ..store.audit_search import LogQuery

__all__ = [
    "LEVEL_NAMES",
    "MAX_FILTER_CHARS",
    "entry_view",
    "format_timestamp",
    "log_query",
    "parse_after",
    "parse_time",
    "session_filter",
]

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


def parse_time(text: str | None, field: str) -> float | None:
    """A time filter as unix seconds: ISO 8601 (UTC unless it has an offset) or unix
    seconds; empty is None; anything else is InvalidInput naming ``field``."""
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
        f"{field}: must be an ISO 8601 time (2026-11-23T10:15:02Z) or unix seconds "
        f"(got {text[:40]!r})",
        field=field,
    )


def parse_after(text: str | None) -> float | None:
    """``after`` as unix seconds (:func:`parse_time`)."""
    return parse_time(text, "after")


def session_filter(core: ChatCore, text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(session fields, session names)`` that ``session=text`` stands for: the text
    itself, the id of an open session of that id or name, and the name."""
    fields = [text]
    with contextlib.suppress(NotFound):
        fields.append(find_session(core, text).id)
    try:
        names: tuple[str, ...] = (normalize_channel(text),)
    except InvalidInput:  # not a name a session could have
        names = ()
    return tuple(fields), names


def log_query(
    core: ChatCore,
    *,
    session: str = "",
    user: str = "",
    contains: str = "",
    after: float | None = None,
    before: float | None = None,
    levels: tuple[str, ...] = (),
    topic: str = "",
) -> LogQuery | None:
    """The query for these filters, or None when a text filter is too long to match."""
    if max(len(session), len(user), len(contains), len(topic)) > MAX_FILTER_CHARS:
        return None
    sessions, names = session_filter(core, session) if session else ((), ())
    return LogQuery(
        sessions=sessions,
        session_names=names,
        user=user,
        contains=contains,
        after=after,
        before=before,
        levels=levels,
        topic=topic,
    )
