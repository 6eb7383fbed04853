"""Admin REST API (seed 002): the members of the chat core's sessions, live.

``:userId`` is a member's id as ``users`` shows it (``id``, and ``uid``: one number,
unique in the whole server); one that is not a number, or no member, is 404, and so is
an unknown session. Both spellings are served, ``/session/`` (the seed's) and
``/sessions/`` (what Drawpile's admin tools send).

* ``GET /session/:id/:userId/`` → the member's entry as ``users`` shows it.
* ``DELETE /session/:id/:userId/`` → ``{"status": "ok"}``: the member is kicked from
  that session (it is told "kicked by an administrator") and stays connected.
* ``PUT /session/:id/:userId/`` with ``op`` and ``trusted`` (true/false), and/or
  ``message`` / ``alert`` (a SYSTEM line, level ``info`` / ``alert``, to that member
  only) → the member's entry after it. A trusted member gets past the session's
  ``closed``, ``authOnly`` and password when it joins again (by identity: its account,
  or this one guest connection); rooms take no trust.
* ``GET /users/`` → one entry per session membership of every connected member
  (chat connections and room users): ``{"session", "id", "uid", "name", "ip", "auth",
  "op", "trusted", "muted", "mod", "tls", "online", "state"}``; a member in no session appears
  once with ``session: ""``. ``state`` is ``"session"``, or ``"login"`` for a member
  connected but in no session.
* ``DELETE /users/:uid/`` → ``{"status": "ok"}``: the member is disconnected from the
  server (every session; a chat connection is closed, a room user's next poll is told
  it was removed).

Changes are written to the audit log (topic ``Status``) with the admin's account and
address; the core adds its own ``Kick``/``Op``/``Deop`` entries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from msgspec import UNSET, UnsetType
from quart import Response
from werkzeug.routing import BaseConverter

from ...auth.service import Principal
from ...community.core import ChatCore
from ...community.models import Level, Member, Session, identity
from ...community.views import admin_user, find_session
from ...errors import InvalidInput, NotFound
from ..requests import decode_body, peer_ip

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["UserPatch", "register"]

KICK_REASON = "kicked by an administrator"


class MemberSegment(BaseConverter):
    """A ``:userId`` path segment: anything but the names of a session's own
    sub-paths, so ``/sessions/:id/chat`` and ``/sessions/:id/invites`` are never a
    member's (a wrong method there is 405 with their own ``Allow``)."""

    regex = r"(?!(?:chat|invites|listing)(?![^/]))[^/]+"


class UserPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    op: bool | UnsetType = UNSET
    trusted: bool | UnsetType = UNSET
    message: str | UnsetType = UNSET
    alert: str | UnsetType = UNSET


def _number(user_id: str) -> int | None:
    return int(user_id) if user_id.isascii() and user_id.isdigit() and len(user_id) <= 18 else None


def _member(session: Session, user_id: str) -> Member:
    number = _number(user_id)
    member = session.members.get(number) if number is not None else None
    if member is None:
        raise NotFound(f"no user {user_id[:40]!r} in session {session.id}", field="user")
    return member


def _entry(member: Member, session: Session | None) -> dict[str, Any]:
    if session is not None:
        return {"session": session.id, **admin_user(session, member), "state": "session"}
    return {
        "session": "",
        "id": member.id,
        "uid": member.id,
        "name": member.name,
        "ip": member.ip,
        "auth": member.auth,
        "op": False,
        "muted": False,
        "mod": member.mod,
        "tls": False,
        "online": True,
        "trusted": False,
        "state": "login",
    }


def _users(core: ChatCore) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for member in sorted(core.members.values(), key=lambda m: m.id):
        joined = sorted(member.sessions.values(), key=lambda s: (s.name.casefold(), s.id))
        memberships: list[Session | None] = list(joined) or [None]
        entries.extend(_entry(member, session) for session in memberships)
    return entries


def register(routes: AdminRoutes) -> None:
    from .app import admin_json
    from .sessions import check_message

    ctx = routes.ctx
    max_body = ctx.settings.http.max_body_bytes

    def core() -> ChatCore:
        chat_core: ChatCore = ctx.chat.core
        return chat_core

    async def audit(principal: Principal, session: Session | None, text: str) -> None:
        await ctx.audit.record_done(
            "Status", text, actor=principal.actor(peer_ip()), session=session.id if session else ""
        )

    async def user_show(principal: Principal, sid: str, user_id: str) -> Response:
        session = find_session(core(), sid)
        return admin_json(admin_user(session, _member(session, user_id)))

    async def user_kick(principal: Principal, sid: str, user_id: str) -> Response:
        chat = core()
        session = find_session(chat, sid)
        member = _member(session, user_id)
        chat.kick(None, session, member.name, target=member)
        await audit(principal, session, f"kicked {member.name} from session {session.name}")
        return admin_json({"status": "ok"})

    async def user_put(principal: Principal, sid: str, user_id: str) -> Response:
        chat = core()
        session = find_session(chat, sid)
        member = _member(session, user_id)
        patch = await decode_body(UserPatch, max_body)
        says: list[tuple[Level, str]] = []
        if isinstance(patch.message, str):
            says.append(("info", check_message(chat, patch.message, "message")))
        if isinstance(patch.alert, str):
            says.append(("alert", check_message(chat, patch.alert, "alert")))
        if isinstance(patch.trusted, bool) and session.room is not None:
            raise InvalidInput(
                "trusted: a room admits only the users its owner invited; it takes no trust",
                field="trusted",
            )
        if session.members.get(member.id) is not member:  # left while the body was read
            raise NotFound(f"no user {user_id[:40]!r} in session {session.id}", field="user")
        if isinstance(patch.op, bool) and patch.op != session.is_op(member):
            chat.set_flag(None, session, member.name, "op" if patch.op else "deop", target=member)
            what = "opped" if patch.op else "deopped"
            await audit(principal, session, f"{what} {member.name} in session {session.name}")
        who = identity(member)
        if isinstance(patch.trusted, bool) and patch.trusted != (who in session.trusted):
            if patch.trusted:
                session.trusted.add(who)
            else:
                session.trusted.discard(who)
            what = "trusted" if patch.trusted else "untrusted"
            await audit(principal, session, f"{what} {member.name} in session {session.name}")
        for level, text in says:
            chat.system(session, text, level, to=member)
            await audit(principal, session, f"{level} to {member.name} in {session.name}")
        return admin_json(admin_user(session, member))

    async def users_list(principal: Principal) -> Response:
        return admin_json(_users(core()))

    async def user_disconnect(principal: Principal, uid: str) -> Response:
        chat = core()
        number = _number(uid)
        member = chat.members.get(number) if number is not None else None
        if member is None:
            raise NotFound(f"no user {uid[:40]!r}", field="user")
        chat.disconnect(member, KICK_REASON)
        await audit(principal, None, f"disconnected {member.name} (user {member.id})")
        return admin_json({"status": "ok"})

    routes.app.url_map.converters["member"] = MemberSegment
    for prefix in ("/session", "/sessions"):
        routes.add(f"{prefix}/<sid>/<member:user_id>", user_show, ["GET"])
        routes.add(f"{prefix}/<sid>/<member:user_id>", user_kick, ["DELETE"])
        routes.add(f"{prefix}/<sid>/<member:user_id>", user_put, ["PUT"])
    routes.add("/users", users_list, ["GET"])
    routes.add("/users/<uid>", user_disconnect, ["DELETE"])
