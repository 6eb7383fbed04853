"""Sessions as the management surfaces show them: the shapes of seed 002.

``session_summary`` is an entry of ``GET /sessions/`` (and of the WebSocket
``session.list``); ``session_detail`` is ``GET /sessions/:id/`` (``session.show``):
the summary plus ``maxSize``, ``maxUserCount``, ``preserveChat`` and ``users``.
``startTime`` is ISO 8601 in UTC (``2026-11-23T15:57:32Z``); ``size`` is the history
size in bytes; ``tls`` is always false (leosuite's listeners are plain; put a TLS
proxy in front). ``ip`` is shown only when ``show_ips`` (moderators and admins).

The admin API shows more, the fields Drawpile's own admin tools read:
``admin_summary`` adds ``maxUserCount``, ``authOnly`` and ``idleOverride``;
``admin_detail`` also ``hasOpword``, ``listings`` (and the seed's ``listing``: both
always ``[]``), and users with ``uid`` (the same server-wide number as ``id``),
``online`` (always true: only connected members are listed) and ``trusted``.
"""

from __future__ import annotations

from typing import Any

from ..clock import iso_utc
from ..errors import InvalidInput, NotFound
from .core import ChatCore
from .models import ChatLimits, Member, Session, identity

__all__ = [
    "PROTOCOL",
    "admin_detail",
    "admin_summary",
    "admin_user",
    "find_session",
    "session_detail",
    "session_summary",
]

#: The ``protocol`` of every session: one chat core behind both protocols.
PROTOCOL = "leosuite-chat"


def session_summary(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "alias": session.alias,
        "protocol": PROTOCOL,
        "userCount": len(session.members),
        "founder": session.founder,
        "title": session.title,
        "hasPassword": session.password_hash is not None,
        "closed": session.closed,
        "persistent": session.persistent,
        "nsfm": session.nsfm,
        "startTime": iso_utc(session.start_time),
        "size": session.size,
    }


def _user(session: Session, member: Member, show_ips: bool) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "ip": member.ip if show_ips else "",
        "auth": member.auth,
        "op": session.is_op(member),
        "muted": session.is_muted(member),
        "mod": member.mod,
        "tls": False,
    }


def session_detail(
    session: Session, limits: ChatLimits, *, show_ips: bool = True
) -> dict[str, Any]:
    detail = session_summary(session)
    detail["maxSize"] = limits.session_size_limit
    detail["maxUserCount"] = session.max_user_count
    detail["preserveChat"] = session.preserve_chat
    detail["users"] = [
        _user(session, m, show_ips) for m in sorted(session.members.values(), key=lambda m: m.id)
    ]
    return detail


def admin_summary(session: Session) -> dict[str, Any]:
    return {
        **session_summary(session),
        "maxUserCount": session.max_user_count,
        "authOnly": session.auth_only,
        "idleOverride": session.idle_override,
    }


def admin_user(session: Session, member: Member) -> dict[str, Any]:
    return {
        **_user(session, member, True),
        "uid": member.id,
        "online": True,
        "trusted": identity(member) in session.trusted,
    }


def admin_detail(session: Session, limits: ChatLimits) -> dict[str, Any]:
    """The admin API's detail; the caller adds ``chat`` and ``invitelist`` (not rooms)."""
    detail = {**session_detail(session, limits), **admin_summary(session)}
    detail["hasOpword"] = session.opword_hash is not None
    detail["users"] = [
        admin_user(session, m) for m in sorted(session.members.values(), key=lambda m: m.id)
    ]
    detail["listing"] = []
    detail["listings"] = []
    return detail


def find_session(core: ChatCore, key: str) -> Session:
    """A session by id, else by name (``#`` stripped, any letter case); NotFound."""
    session = core.sessions.get(key)
    if session is None:
        try:
            session = core.find(key)
        except InvalidInput:  # an impossible name is simply no session
            session = None
    if session is None:
        raise NotFound(f"no session {key!r}", field="session")
    return session
