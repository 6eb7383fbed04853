"""Session management over the WebSocket API: ``session.*`` (seed 002's sessions).

``session.list {}`` → ``[summary, ...]`` by name; ``session.show {session}`` → the
detail (summary + ``maxSize``, ``maxUserCount``, ``preserveChat``, ``users``); shapes
in :mod:`leosuite.community.views`. ``session`` is a session's id or its name (``#``
optional, any letter case). Every account may list and show (user addresses are
blanked unless it is ADMIN or MOD); these need ADMIN or MOD, else PERMISSION_DENIED:

* ``session.close {session, reason?}`` → ``{"session": id}``: members are told and
  removed, the session is gone (a persistent one loses its stored row too);
* ``session.say {session, message, alert?}`` → ``{"session", "id"}``: a SYSTEM message
  to every member (level ``alert`` with ``alert: true``, else ``info``);
* ``session.set {session, title?, closed?, persistent?, nsfm?, maxUserCount?,
  preserveChat?}`` → the detail after the change. ``persistent: true`` needs
  ``enable_persistence`` and is refused for a room (rooms are never stored). Turning
  ``persistent`` off leaves an empty session to the idle close.

Each change is written to the audit log (topic ``Status``) with the account, and
persistence changes are saved at once.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from ...auth.permissions import is_moderator
from ...auth.service import Principal
from ...community.core import ChatCore
from ...community.models import Level, Session
from ...community.views import find_session, session_detail, session_summary
from ...errors import InvalidInput, PermissionDenied, TooLarge
from .api import WsApi
from .conn import WsConnection
from .protocol import decode_content

__all__ = [
    "SESSION_ATTRIBUTES",
    "MaxUserCount",
    "SessionSet",
    "install_session_calls",
    "session_changes",
]

TITLE_MAX = 100
MAX_USERS_MAX = 100_000
#: A session's ``maxUserCount`` as a client sends it.
MaxUserCount = Annotated[int, msgspec.Meta(ge=1, le=MAX_USERS_MAX)]


class _Empty(msgspec.Struct, forbid_unknown_fields=True):
    pass


class _Ref(msgspec.Struct, forbid_unknown_fields=True):
    session: str


class _Close(msgspec.Struct, forbid_unknown_fields=True):
    session: str
    reason: str = ""


class _Say(msgspec.Struct, forbid_unknown_fields=True):
    session: str
    message: str
    alert: bool = False


class SessionSet(msgspec.Struct, forbid_unknown_fields=True):
    session: str
    title: str | None = None
    closed: bool | None = None
    persistent: bool | None = None
    nsfm: bool | None = None
    maxUserCount: MaxUserCount | None = None
    preserveChat: bool | None = None


def _printable(text: str, field: str, limit: int) -> str:
    if len(text) > limit:
        raise InvalidInput(f"{field} is at most {limit} characters", field=field)
    if any(not c.isprintable() for c in text):
        raise InvalidInput(f"{field} has no control characters", field=field)
    return text


def session_changes(query: SessionSet, session: Session, core: ChatCore) -> dict[str, Any]:
    """The validated changes (wire name -> value), nothing applied yet."""
    changes: dict[str, Any] = {}
    if query.title is not None:
        changes["title"] = _printable(query.title, "title", TITLE_MAX)
    if query.maxUserCount is not None:
        if not 1 <= query.maxUserCount <= MAX_USERS_MAX:
            raise InvalidInput(
                f"maxUserCount is 1-{MAX_USERS_MAX} (it does not affect users already in)",
                field="maxUserCount",
            )
        changes["maxUserCount"] = query.maxUserCount
    if query.persistent:
        if not core.limits.enable_persistence:
            raise InvalidInput(
                "persistent sessions are disabled on this server (enable_persistence)",
                field="persistent",
            )
        if session.room is not None:
            raise InvalidInput(
                "rooms are never persisted (their keys live only in memory)", field="persistent"
            )
    for name in ("closed", "persistent", "nsfm", "preserveChat"):
        value = getattr(query, name)
        if value is not None:
            changes[name] = value
    return changes


SESSION_ATTRIBUTES = {
    "title": "title",
    "closed": "closed",
    "persistent": "persistent",
    "nsfm": "nsfm",
    "maxUserCount": "max_user_count",
    "preserveChat": "preserve_chat",
}


def install_session_calls(api: WsApi) -> None:
    ctx = api.ctx

    def core() -> ChatCore:
        chat_core: ChatCore = ctx.chat.core
        return chat_core

    def principal_of(conn: WsConnection) -> Principal:
        assert conn.principal is not None
        return conn.principal

    def moderator(conn: WsConnection, what: str) -> Principal:
        principal = principal_of(conn)
        if not is_moderator(principal):
            raise PermissionDenied(f"{what} needs an ADMIN or MOD account")
        return principal

    async def audit(conn: WsConnection, principal: Principal, session: Session, text: str) -> None:
        await ctx.audit.record_done(
            "Status", text, actor=principal.actor(conn.ip), session=session.id
        )

    async def session_list(conn: WsConnection, content: Any) -> Any:
        decode_content(content, _Empty)
        sessions = sorted(core().sessions.values(), key=lambda s: (s.name.casefold(), s.id))
        return [session_summary(s) for s in sessions]

    async def session_show(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Ref)
        chat = core()
        session = find_session(chat, query.session)
        return session_detail(session, chat.limits, show_ips=is_moderator(principal_of(conn)))

    async def session_close(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Close)
        principal = moderator(conn, "closing a session")
        reason = _printable(query.reason, "reason", 200) or "closed by an administrator"
        chat = core()
        session = find_session(chat, query.session)
        chat.close(session, reason)
        await audit(conn, principal, session, f"closed session {session.name}: {reason}")
        await ctx.chat.save_sessions()
        return {"session": session.id}

    async def session_say(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, _Say)
        principal = moderator(conn, "messaging a session")
        chat = core()
        session = find_session(chat, query.session)
        if not query.message.strip():
            raise InvalidInput("the message is empty", field="message")
        limit = chat.limits.message_max_bytes
        if len(query.message.encode("utf-8", "surrogatepass")) > limit:
            raise TooLarge(f"a message is at most {limit} bytes", field="message")
        level: Level = "alert" if query.alert else "info"
        event = chat.system(session, query.message, level)
        await audit(conn, principal, session, f"{level} to session {session.name}")
        return {"session": session.id, "id": event.id}

    async def session_set(conn: WsConnection, content: Any) -> Any:
        query = decode_content(content, SessionSet)
        principal = moderator(conn, "changing a session")
        chat = core()
        session = find_session(chat, query.session)
        changes = session_changes(query, session, chat)
        for name, value in changes.items():
            setattr(session, SESSION_ATTRIBUTES[name], value)
        if changes:
            text = ", ".join(f"{k}={msgspec.json.encode(v).decode()}" for k, v in changes.items())
            await audit(conn, principal, session, f"session {session.name} set {text}")
            await ctx.chat.save_sessions()
        return session_detail(session, chat.limits, show_ips=True)

    api.add("session.list", session_list)
    api.add("session.show", session_show)
    api.add("session.close", session_close)
    api.add("session.say", session_say)
    api.add("session.set", session_set)
