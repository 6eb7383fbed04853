"""Admin REST API (seed 002): the chat core's sessions and users, live.

Shapes are those of :mod:`leosuite.community.views` (also used by the WebSocket
``session.*`` calls). ``:id`` is a session's id (its name, ``#`` optional and any
letter case, works too); ``:userId`` is a member's id as ``users`` shows it. An
unknown session or user is 404, so is a ``:userId`` that is not a number.

* ``GET /sessions/`` → ``[summary, ...]`` by name (a top-level array).
* ``GET /sessions/:id/`` → the detail with ``users`` and ``listing`` (always ``[]``:
  leosuite announces nothing to listing servers).
* ``DELETE /sessions/:id/`` → ``{"status": "ok"}``: the session is shut down, its
  members get the reason ("shut down by an administrator") on either chat protocol
  and are removed; a persistent session loses its stored row.
* ``PUT /session/:id/`` with any of ``closed``, ``persistent`` (only while
  ``enablePersistence`` is on; never for a room), ``title`` (≤ 100), ``maxUserCount``
  (1-100000, existing users stay), ``password`` and ``opword`` (≤ 256 characters,
  stored as argon2id hashes; ``""`` removes it), ``preserveChat``, ``nsfm``; and/or
  ``message`` / ``alert``: a SYSTEM line to every member (level ``info`` / ``alert``).
  Everything is validated before anything changes; answers the detail after it.
* ``DELETE /session/:id/:userId/`` → ``{"status": "ok"}``: the member is kicked
  (it is told "kicked by an administrator").
* ``PUT /session/:id/:userId/`` with ``op`` (true/false) and/or ``message`` (a SYSTEM
  line to that member only) → the member's entry as ``users`` shows it.
* ``GET /users/`` → one entry per session membership of every connected member
  (chat connections and room users): ``{"session", "id", "name", "ip", "auth", "op",
  "muted", "mod", "tls"}``; a member in no session appears once with ``session: ""``.

Changes are written to the audit log (topic ``Status``) with the admin's account and
address; the core adds its own ``Kick``/``Op``/``Deop`` entries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from msgspec import UNSET, UnsetType
from quart import Response

from ...auth.passwords import PasswordHasher
from ...auth.service import Principal
from ...community.core import ChatCore
from ...community.models import Level, Member, Session
from ...community.views import find_session, session_detail, session_summary
from ...errors import InvalidInput, NotFound, TooLarge
from ..requests import decode_body, peer_ip
from ..ws import sessions as ws_sessions

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["register"]

PASSWORD_MAX = 256
SHUTDOWN_REASON = "shut down by an administrator"


class SessionPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    closed: bool | UnsetType = UNSET
    persistent: bool | UnsetType = UNSET
    title: str | UnsetType = UNSET
    maxUserCount: ws_sessions.MaxUserCount | UnsetType = UNSET
    password: str | UnsetType = UNSET
    opword: str | UnsetType = UNSET
    preserveChat: bool | UnsetType = UNSET
    nsfm: bool | UnsetType = UNSET
    message: str | UnsetType = UNSET
    alert: str | UnsetType = UNSET


class UserPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    op: bool | UnsetType = UNSET
    message: str | UnsetType = UNSET


def _given(value: Any) -> Any:
    return None if value is UNSET else value


def _message(core: ChatCore, text: str, field: str) -> str:
    if not text.strip():
        raise InvalidInput(f"{field}: the message is empty", field=field)
    limit = core.limits.message_max_bytes
    if len(text.encode("utf-8", "surrogatepass")) > limit:
        raise TooLarge(f"{field}: a message is at most {limit} bytes", field=field)
    return text


def _secret(value: str, field: str) -> str:
    if len(value) > PASSWORD_MAX:
        raise InvalidInput(f"{field}: at most {PASSWORD_MAX} characters", field=field)
    return value


def _member(session: Session, user_id: str) -> Member:
    member = None
    if user_id.isascii() and user_id.isdigit() and len(user_id) <= 18:
        member = session.members.get(int(user_id))
    if member is None:
        raise NotFound(f"no user {user_id[:40]!r} in session {session.id}", field="user")
    return member


def _user_entry(core: ChatCore, session: Session, member: Member) -> dict[str, Any]:
    users: list[dict[str, Any]] = session_detail(session, core.limits)["users"]
    return next(u for u in users if u["id"] == member.id)


def _detail(core: ChatCore, session: Session) -> dict[str, Any]:
    detail = session_detail(session, core.limits)
    detail["listing"] = []
    return detail


def _users(core: ChatCore) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for member in sorted(core.members.values(), key=lambda m: m.id):
        joined = sorted(member.sessions.values(), key=lambda s: (s.name.casefold(), s.id))
        memberships: list[Session | None] = list(joined) or [None]
        for session in memberships:
            entries.append(
                {
                    "session": session.id if session else "",
                    "id": member.id,
                    "name": member.name,
                    "ip": member.ip,
                    "auth": member.auth,
                    "op": session is not None and session.is_op(member),
                    "muted": session is not None and session.is_muted(member),
                    "mod": member.mod,
                    "tls": False,
                }
            )
    return entries


def register(routes: AdminRoutes) -> None:
    from .app import admin_json

    ctx = routes.ctx
    auth = ctx.settings.auth
    hasher = PasswordHasher(
        time_cost=auth.hash_time_cost,
        memory_kib=auth.hash_memory_kib,
        parallelism=auth.hash_parallelism,
        concurrency=1,
    )
    max_body = ctx.settings.http.max_body_bytes

    def core() -> ChatCore:
        chat_core: ChatCore = ctx.chat.core
        return chat_core

    async def audit(principal: Principal, session: Session, text: str) -> None:
        await ctx.audit.record_done(
            "Status", text, actor=principal.actor(peer_ip()), session=session.id
        )

    async def sessions_list(principal: Principal) -> Response:
        sessions = sorted(core().sessions.values(), key=lambda s: (s.name.casefold(), s.id))
        return admin_json([session_summary(s) for s in sessions])

    async def session_show(principal: Principal, sid: str) -> Response:
        chat = core()
        return admin_json(_detail(chat, find_session(chat, sid)))

    async def session_shutdown(principal: Principal, sid: str) -> Response:
        chat = core()
        session = find_session(chat, sid)
        chat.close(session, SHUTDOWN_REASON)
        await audit(principal, session, f"shut down session {session.name}")
        await ctx.chat.save_sessions()
        return admin_json({"status": "ok"})

    async def session_put(principal: Principal, sid: str) -> Response:
        chat = core()
        session = find_session(chat, sid)
        patch = await decode_body(SessionPatch, max_body)
        # Validate everything before changing anything.
        query = ws_sessions.SessionSet(
            session=session.id,
            title=_given(patch.title),
            closed=_given(patch.closed),
            persistent=_given(patch.persistent),
            nsfm=_given(patch.nsfm),
            maxUserCount=_given(patch.maxUserCount),
            preserveChat=_given(patch.preserveChat),
        )
        changes = ws_sessions.session_changes(query, session, chat)
        secrets = {
            name: _secret(value, name)
            for name, value in (("password", patch.password), ("opword", patch.opword))
            if isinstance(value, str)
        }
        says: list[tuple[Level, str]] = []
        if isinstance(patch.message, str):
            says.append(("info", _message(chat, patch.message, "message")))
        if isinstance(patch.alert, str):
            says.append(("alert", _message(chat, patch.alert, "alert")))
        hashes = {
            name: await hasher.hash(value) if value else None for name, value in secrets.items()
        }
        if session.id not in chat.sessions:  # shut down while we were hashing
            raise NotFound(f"no session {sid[:40]!r}", field="session")
        for name, value in changes.items():
            setattr(session, ws_sessions.SESSION_ATTRIBUTES[name], value)
        for name, hashed in hashes.items():
            setattr(session, f"{name}_hash", hashed)
        shown = {**changes, **{k: ("set" if v else "removed") for k, v in hashes.items()}}
        if shown:
            text = ", ".join(f"{k}={msgspec.json.encode(v).decode()}" for k, v in shown.items())
            await audit(principal, session, f"session {session.name} set {text}")
            await ctx.chat.save_sessions()
        for level, text in says:
            chat.system(session, text, level)
            await audit(principal, session, f"{level} to session {session.name}")
        return admin_json(_detail(chat, session))

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
        text = _message(chat, patch.message, "message") if isinstance(patch.message, str) else None
        if session.members.get(member.id) is not member:  # left while the body was read
            raise NotFound(f"no user {user_id[:40]!r} in session {session.id}", field="user")
        if isinstance(patch.op, bool) and patch.op != session.is_op(member):
            chat.set_flag(None, session, member.name, "op" if patch.op else "deop", target=member)
            what = "opped" if patch.op else "deopped"
            await audit(principal, session, f"{what} {member.name} in session {session.name}")
        if text is not None:
            chat.system(session, text, "info", to=member)
            await audit(principal, session, f"message to {member.name} in {session.name}")
        return admin_json(_user_entry(chat, session, member))

    async def users_list(principal: Principal) -> Response:
        return admin_json(_users(core()))

    routes.add("/sessions", sessions_list, ["GET"])
    routes.add("/sessions/<sid>", session_show, ["GET"])
    routes.add("/sessions/<sid>", session_shutdown, ["DELETE"])
    routes.add("/session/<sid>", session_put, ["PUT"])
    routes.add("/session/<sid>/<user_id>", user_kick, ["DELETE"])
    routes.add("/session/<sid>/<user_id>", user_put, ["PUT"])
    routes.add("/users", users_list, ["GET"])
