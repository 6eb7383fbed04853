"""The content of the WebSocket ``get_logs`` call: paging, order and the filters of the
admin API's ``/log/`` (:mod:`leosuite.api.log_ops`), plus a level, a topic and a time
range.

``level`` keeps the entries of that level and every more severe one (``warning``:
warnings and errors); ``topic`` is one topic, in any letter case; ``after`` and
``before`` bound the time (exclusive), as ISO 8601 text or unix seconds (a number or a
numeric string).
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec

from ...community.core import ChatCore
from ...errors import InvalidInput
from ...store.audit import LEVELS
from ...store.audit_search import LogQuery
from ..log_ops import log_query, parse_time

__all__ = ["MAX_PAGE", "LogsQuery", "search_query"]

#: The highest ``get_logs`` page (a larger offset would overflow SQLite's integers).
MAX_PAGE = 10_000_000
#: Unix seconds beyond this (either way) are no time a log holds.
_MAX_SECONDS = 1e12


class LogsQuery(msgspec.Struct, forbid_unknown_fields=True):
    p: Annotated[int, msgspec.Meta(ge=0, le=MAX_PAGE)] = 1
    ps: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    sort: str = "desc"
    level: str = ""
    topic: str = ""
    user: str = ""
    contains: str = ""
    session: str = ""
    after: str | float | None = None
    before: str | float | None = None


def _time(value: str | float | None, field: str) -> float | None:
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or abs(value) > _MAX_SECONDS:
            raise InvalidInput(f"{field}: must be unix seconds or ISO 8601 text", field=field)
        return float(value)
    return parse_time(value, field)


def _levels(level: str) -> tuple[str, ...]:
    if not level:
        return ()
    if level not in LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(LEVELS)}", field="level")
    return LEVELS[LEVELS.index(level) :]


def search_query(core: ChatCore, query: LogsQuery) -> LogQuery | None:
    """The store's query for ``query``'s filters (InvalidInput naming a bad one), or
    None when a text filter is too long to match anything."""
    return log_query(
        core,
        session=query.session,
        user=query.user,
        contains=query.contains,
        after=_time(query.after, "after"),
        before=_time(query.before, "before"),
        levels=_levels(query.level),
        topic=query.topic,
    )
