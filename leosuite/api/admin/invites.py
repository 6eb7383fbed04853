"""Admin REST API: a chat session's invite codes (the origin's ``/sessions/:id/invites``),
on :mod:`leosuite.community.invites`.

An invite is ``{"secret", "creator", "at", "maxUses", "uses": [{"name", "at"}], "op",
"trust"}`` (times ISO 8601 UTC, ``uses`` oldest first). A user enters with the code as
the channel password (the chat's type 4 ``password``) past the session's ``closed``,
``authOnly`` and password; ``op`` makes it an operator, ``trust`` trusted.

* ``POST /sessions/:id/invites`` with ``maxUses`` (1-50; a number or a digit string),
  ``trust`` and ``op`` (false unless given) → the new invite; 409 past 50 codes, or for
  a room (rooms have their own invitations).
* ``GET /sessions/:id/invites`` → ``{"invites": [invite, ...]}`` oldest first.
* ``GET /sessions/:id/invites/:secret`` → that invite; ``DELETE`` → ``{"status": "ok"}``
  (the code admits nobody more; who used it stays). An unknown code is 404.

Creating and revoking are audited (topic ``Status``; the code itself is not written).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec
from msgspec import Meta
from quart import Response

from ...auth.service import Principal
from ...community.core import ChatCore
from ...community.invites import MAX_USES, Invite, create_invite
from ...community.models import Session
from ...community.views import find_session
from ...errors import Conflict, NotFound
from ..requests import decode_body, peer_ip
from .session_chat import number

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["InviteBody", "register"]

MaxUses = Annotated[int, Meta(ge=1, le=MAX_USES)] | Annotated[str, Meta(pattern="^[0-9]{1,2}$")]


class InviteBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    maxUses: MaxUses
    trust: bool = False
    op: bool = False


def register(routes: AdminRoutes) -> None:
    from .app import admin_json

    ctx = routes.ctx
    max_body = ctx.settings.http.max_body_bytes

    def core() -> ChatCore:
        chat_core: ChatCore = ctx.chat.core
        return chat_core

    async def audit(principal: Principal, session: Session, text: str) -> None:
        await ctx.audit.record_done(
            "Status", text, actor=principal.actor(peer_ip()), session=session.id
        )

    def invite_of(session: Session, secret: str) -> Invite:
        invite = session.invites.get(secret)
        if invite is None:
            raise NotFound(
                f"no invite code {secret[:40]!r} in session {session.id}", field="secret"
            )
        return invite

    async def invite_create(principal: Principal, sid: str) -> Response:
        session = find_session(core(), sid)
        body = await decode_body(InviteBody, max_body)
        uses = number(body.maxUses, "maxUses", 1, MAX_USES, 1)
        if session.room is not None:
            raise Conflict(f"{session.name} is a room: its owner invites its users")
        if core().sessions.get(session.id) is not session:  # shut down meanwhile
            raise NotFound(f"no session {sid[:40]!r}", field="session")
        invite = create_invite(
            session, principal.username, ctx.now(), uses, trust=body.trust, op=body.op
        )
        roles = "".join(f", {role}" for role in ("op", "trust") if getattr(body, role))
        await audit(
            principal,
            session,
            f"created an invite code for session {session.name} ({uses} uses{roles})",
        )
        return admin_json(invite.to_json())

    async def invites_list(principal: Principal, sid: str) -> Response:
        session = find_session(core(), sid)
        invites = sorted(session.invites.values(), key=lambda invite: invite.at)
        return admin_json({"invites": [invite.to_json() for invite in invites]})

    async def invite_show(principal: Principal, sid: str, secret: str) -> Response:
        session = find_session(core(), sid)
        return admin_json(invite_of(session, secret).to_json())

    async def invite_revoke(principal: Principal, sid: str, secret: str) -> Response:
        session = find_session(core(), sid)
        invite = invite_of(session, secret)
        del session.invites[invite.secret]
        await audit(
            principal,
            session,
            f"revoked an invite code of session {session.name} ({len(invite.uses)} used it)",
        )
        return admin_json({"status": "ok"})

    routes.add("/sessions/<sid>/invites", invite_create, ["POST"])
    routes.add("/sessions/<sid>/invites", invites_list, ["GET"])
    routes.add("/sessions/<sid>/invites/<secret>", invite_show, ["GET"])
    routes.add("/sessions/<sid>/invites/<secret>", invite_revoke, ["DELETE"])
