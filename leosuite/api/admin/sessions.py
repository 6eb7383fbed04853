"""Admin REST API (seed 002): the chat core's sessions, live.

Shapes are those of :mod:`leosuite.community.views` (``admin_summary``,
``admin_detail``). ``:id`` is a session's id (its name, ``#`` optional and any letter
case, works too). An unknown session is 404. Each path is served with both spellings,
``/session/`` (the seed's, for changes) and ``/sessions/`` (the seed's for reading and
shutting down, and what Drawpile's admin tools send for everything).

* ``GET /sessions/`` → ``[summary, ...]`` by name (a top-level array).
* ``GET /sessions/:id/`` → the detail with ``users``, ``listing`` and ``listings``
  (always ``[]``: leosuite announces nothing to listing servers); for a chat channel
  also ``invitelist`` (:mod:`.invites`) and ``chat`` (:mod:`.session_chat`).
* ``DELETE /sessions/:id/`` → ``{"status": "ok"}``: the session is shut down, its
  members get the reason ("shut down by an administrator") on either chat protocol
  and are removed; a persistent session loses its stored row. ``?quiet=true`` (the
  origin's quiet termination, which keeps the members connected) does the same:
  leosuite has no quiet termination.
* ``DELETE /sessions/:id/listing/:n`` → 404 saying that leosuite lists sessions on
  no list server (the origin's "unlist").
* ``PUT /sessions/:id/`` with any of ``closed``, ``authOnly`` (no guests; never for a
  room), ``idleOverride`` (never closed for idleness), ``persistent`` (only while
  ``enablePersistence`` is on; never for a room), ``title`` (≤ 100), ``founder``
  (1-64, shown only), ``maxUserCount`` (1-100000, existing users stay), ``password``
  and ``opword`` (≤ 256 characters, stored as argon2id hashes; ``""`` removes it),
  ``preserveChat``, ``nsfm``; and/or ``message`` / ``alert``: a SYSTEM line to every
  member (level ``info`` / ``alert``). Other names (the origin's ``resetThreshold``,
  ``archive``, ...) are ignored and do not stop the known ones. Every known one is
  validated before anything changes; answers the detail after it, with ``ignored``:
  the names not taken, in the order sent (at most 100, each cut to 100 characters).
* ``PUT /sessions/`` with ``message`` and/or ``alert``: the same line in every session
  → ``{"status": "ok", "sessions": how many}``.

Members are :mod:`.session_users`. Changes are written to the audit log (topic
``Status``) with the admin's account and address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import trio
from msgspec import UNSET, UnsetType
from quart import Response

from ...auth.passwords import PasswordHasher
from ...auth.service import Principal
from ...community.admin_chat import AdminChats
from ...community.core import ChatCore
from ...community.models import Level, Session
from ...community.views import admin_detail, admin_summary, find_session
from ...errors import InvalidInput, NotFound, TooLarge
from ..requests import decode_body, decode_bytes, peer_ip, read_body
from ..ws import sessions as ws_sessions
from . import session_chat
from .lenient import raw_object, shown_ignored

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["check_message", "register"]

PASSWORD_MAX = 256
FOUNDER_MAX = 64
SHUTDOWN_REASON = "shut down by an administrator"


class SessionPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    closed: bool | UnsetType = UNSET
    authOnly: bool | UnsetType = UNSET
    idleOverride: bool | UnsetType = UNSET
    persistent: bool | UnsetType = UNSET
    title: str | UnsetType = UNSET
    founder: str | UnsetType = UNSET
    maxUserCount: ws_sessions.MaxUserCount | UnsetType = UNSET
    password: str | UnsetType = UNSET
    opword: str | UnsetType = UNSET
    preserveChat: bool | UnsetType = UNSET
    nsfm: bool | UnsetType = UNSET
    message: str | UnsetType = UNSET
    alert: str | UnsetType = UNSET


class SessionsMessage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message: str | UnsetType = UNSET
    alert: str | UnsetType = UNSET


#: The names ``PUT /sessions/:id`` takes; it ignores any other.
PATCH_NAMES = frozenset(field.encode_name for field in msgspec.structs.fields(SessionPatch))


def parse_patch(data: bytes) -> tuple[SessionPatch, list[str]]:
    """A ``PUT /sessions/:id`` body -> (its typed known names, the names ignored);
    InvalidInput for a body that is not a JSON object or a bad value of a known name."""
    raw = raw_object(data)
    ignored = [name for name in raw if name not in PATCH_NAMES]
    known = msgspec.json.encode({k: v for k, v in raw.items() if k in PATCH_NAMES})
    shown = shown_ignored(ignored)
    return decode_bytes(known, SessionPatch), shown


def _given(value: Any) -> Any:
    return None if value is UNSET else value


def check_message(core: ChatCore, text: str, field: str) -> str:
    """A line an administrator says: not blank, at most ``message_max_bytes``."""
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


def _says(core: ChatCore, patch: SessionPatch | SessionsMessage) -> list[tuple[Level, str]]:
    says: list[tuple[Level, str]] = []
    if isinstance(patch.message, str):
        says.append(("info", check_message(core, patch.message, "message")))
    if isinstance(patch.alert, str):
        says.append(("alert", check_message(core, patch.alert, "alert")))
    return says


def _extra_changes(patch: SessionPatch, session: Session) -> dict[str, Any]:
    """The changes leosuite's WebSocket ``session.set`` does not have, validated."""
    changes: dict[str, Any] = {}
    if isinstance(patch.founder, str):
        founder = patch.founder
        if not 1 <= len(founder) <= FOUNDER_MAX or not founder.isprintable():
            raise InvalidInput(
                f"founder: 1-{FOUNDER_MAX} characters, no control characters", field="founder"
            )
        changes["founder"] = founder
    if isinstance(patch.authOnly, bool):
        if patch.authOnly and session.room is not None:
            raise InvalidInput(
                "authOnly: a room admits only the users its owner invited, never chat users",
                field="authOnly",
            )
        changes["authOnly"] = patch.authOnly
    if isinstance(patch.idleOverride, bool):
        changes["idleOverride"] = patch.idleOverride
    return changes


EXTRA_ATTRIBUTES = {"founder": "founder", "authOnly": "auth_only", "idleOverride": "idle_override"}


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
    chats = AdminChats(ctx.chat.core, trio.current_time)
    ctx.chat.housekeepers.append(chats)

    def core() -> ChatCore:
        chat_core: ChatCore = ctx.chat.core
        return chat_core

    async def audit(principal: Principal, session: Session | None, text: str) -> None:
        await ctx.audit.record_done(
            "Status", text, actor=principal.actor(peer_ip()), session=session.id if session else ""
        )

    def detail(session: Session) -> dict[str, Any]:
        shown = admin_detail(session, core().limits)
        if session.room is None:
            invites = sorted(session.invites.values(), key=lambda invite: invite.at)
            shown["invitelist"] = [invite.to_json() for invite in invites]
            shown["chat"] = chats.describe(session)
        return shown

    async def sessions_list(principal: Principal) -> Response:
        sessions = sorted(core().sessions.values(), key=lambda s: (s.name.casefold(), s.id))
        return admin_json([admin_summary(s) for s in sessions])

    async def sessions_message(principal: Principal) -> Response:
        chat = core()
        says = _says(chat, await decode_body(SessionsMessage, max_body))
        sessions = sorted(chat.sessions.values(), key=lambda s: (s.name.casefold(), s.id))
        for level, text in says:
            for session in sessions:
                if chat.sessions.get(session.id) is session:
                    chats.say(session, text, level)
            await audit(principal, None, f"{level} to every session ({len(sessions)})")
        return admin_json({"status": "ok", "sessions": len(sessions) if says else 0})

    async def session_show(principal: Principal, sid: str) -> Response:
        return admin_json(detail(find_session(core(), sid)))

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
        patch, ignored = parse_patch(await read_body(max_body))
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
        extra = _extra_changes(patch, session)
        secrets = {
            name: _secret(value, name)
            for name, value in (("password", patch.password), ("opword", patch.opword))
            if isinstance(value, str)
        }
        says = _says(chat, patch)
        hashes = {
            name: await hasher.hash(value) if value else None for name, value in secrets.items()
        }
        if chat.sessions.get(session.id) is not session:  # shut down while we were hashing
            raise NotFound(f"no session {sid[:40]!r}", field="session")
        for name, value in changes.items():
            setattr(session, ws_sessions.SESSION_ATTRIBUTES[name], value)
        for name, value in extra.items():
            setattr(session, EXTRA_ATTRIBUTES[name], value)
        for name, hashed in hashes.items():
            setattr(session, f"{name}_hash", hashed)
        shown = {
            **changes,
            **extra,
            **{k: ("set" if v else "removed") for k, v in hashes.items()},
        }
        if shown:
            text = ", ".join(f"{k}={msgspec.json.encode(v).decode()}" for k, v in shown.items())
            await audit(principal, session, f"session {session.name} set {text}")
            await ctx.chat.save_sessions()
        for level, text in says:
            chats.say(session, text, level)
            await audit(principal, session, f"{level} to session {session.name}")
        return admin_json({**detail(session), "ignored": ignored})

    async def listing_remove(principal: Principal, sid: str, listing: str) -> Response:
        session = find_session(core(), sid)
        raise NotFound(
            f"no listing {listing[:40]!r} of session {session.id}: leosuite lists sessions "
            "on no list server",
            field="listing",
        )

    for prefix in ("/sessions", "/session"):
        routes.add(f"{prefix}/<sid>", session_show, ["GET"])
        routes.add(f"{prefix}/<sid>", session_shutdown, ["DELETE"])
        routes.add(f"{prefix}/<sid>", session_put, ["PUT"])
    routes.add("/sessions/<sid>/listing/<listing>", listing_remove, ["DELETE"])
    routes.add("/sessions", sessions_list, ["GET"])
    routes.add("/sessions", sessions_message, ["PUT"])
    session_chat.register(routes, chats)
