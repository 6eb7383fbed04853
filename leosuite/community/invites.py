"""Invite codes and trusted members: who enters a chat session past its locks.

A session has ``closed``, ``auth_only`` (no guests) and an optional password. A member
gets past all three when it is a moderator (an account with MOD or ADMIN), when the
session trusts it (``Session.trusted``, by :func:`~.models.identity`), or when it joins
with one of the session's invite codes in place of the password. A code admits up to
``max_uses`` different identities (an account, a room user, or one guest connection);
the same identity joining again with it uses nothing more. A code may make whoever
uses it an operator (``op``) or trusted (``trust``). Bans and the user limit still
apply to everyone but moderators.

Codes and trust live in memory with the session: a persistent session comes back
after a restart without them. Rooms (seed 004) have their own invitations and take
no codes. This module does no I/O.
"""

from __future__ import annotations

import secrets
from typing import Any, NamedTuple

from ..clock import iso_utc
from ..errors import Conflict, PermissionDenied
from .models import Member, Session, identity

__all__ = [
    "MAX_INVITES",
    "MAX_USES",
    "Invite",
    "InviteUse",
    "check_entry",
    "create_invite",
    "find_invite",
    "use_invite",
]

#: Codes per session, and identities per code (the origin's limits).
MAX_INVITES = 50
MAX_USES = 50


class InviteUse(NamedTuple):
    name: str
    at: float


class Invite:
    __slots__ = ("at", "creator", "max_uses", "op", "secret", "trust", "uses")

    def __init__(
        self, secret: str, creator: str, at: float, max_uses: int, *, trust: bool, op: bool
    ) -> None:
        self.secret = secret
        self.creator = creator
        self.at = at
        self.max_uses = max_uses
        self.trust = trust
        self.op = op
        self.uses: dict[str, InviteUse] = {}  # by identity

    def admits(self, member: Member) -> bool:
        return identity(member) in self.uses or len(self.uses) < self.max_uses

    def to_json(self) -> dict[str, Any]:
        """The origin's shape: ``uses`` oldest first."""
        uses = sorted(self.uses.values(), key=lambda use: use.at)
        return {
            "secret": self.secret,
            "creator": self.creator,
            "at": iso_utc(self.at),
            "maxUses": self.max_uses,
            "uses": [{"name": use.name, "at": iso_utc(use.at)} for use in uses],
            "op": self.op,
            "trust": self.trust,
        }


def create_invite(
    session: Session, creator: str, at: float, max_uses: int, *, trust: bool, op: bool
) -> Invite:
    """A new code of 16 URL-safe characters (96 random bits); Conflict at the limit."""
    if len(session.invites) >= MAX_INVITES:
        raise Conflict(f"a session has at most {MAX_INVITES} invite codes; revoke one first")
    secret = secrets.token_urlsafe(12)
    while secret in session.invites:
        secret = secrets.token_urlsafe(12)
    invite = Invite(secret, creator, at, max_uses, trust=trust, op=op)
    session.invites[secret] = invite
    return invite


def find_invite(session: Session, code: str | None) -> Invite | None:
    """The invite ``code`` is, if any (anything else is a password to check)."""
    return session.invites.get(code) if code else None


def check_entry(
    session: Session, member: Member, *, password_ok: bool, code: str | None
) -> Invite | None:
    """Refuse ``member`` entry to an existing ``session`` (PermissionDenied), or return
    the invite it enters with (None: no code was used)."""
    if member.mod:
        return None
    invite = find_invite(session, code)
    if invite is not None and not invite.admits(member):
        raise PermissionDenied(f"the invite code for {session.name} has been used up")
    if invite is not None or identity(member) in session.trusted:
        return invite
    if session.closed:
        raise PermissionDenied(f"{session.name} is closed to new users")
    if session.auth_only and not member.auth:
        raise PermissionDenied(f"{session.name} admits only logged-in users")
    if session.password_hash is not None and not password_ok:
        raise PermissionDenied(f"{session.name} needs a password")
    return None


def use_invite(session: Session, member: Member, invite: Invite, at: float) -> None:
    """Count ``member``'s use of ``invite`` (once per identity) and give its roles."""
    who = identity(member)
    if who not in invite.uses:
        invite.uses[who] = InviteUse(member.name, at)
    if invite.op:
        session.ops.add(who)
    if invite.trust:
        session.trusted.add(who)
