"""Joining a chat channel (type 4), and the password of a channel one opens.

Joining a channel that does not exist creates it; a non-empty ``password`` in that
join becomes the new channel's password (at most 256 characters, without NUL; stored
as an argon2id hash, as the admin API stores one), and everyone else must give it (or
one of the channel's invite codes) to join. Moderators (MOD or ADMIN) get past it, as
past every lock. The new channel's limits are checked before the password is hashed,
so a refused creation costs no hash; if another member opens the channel meanwhile,
the join is a join of that channel, and the password is checked against its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...community import chat_protocol as proto
from ...community.invites import find_invite
from ...community.models import normalize_channel
from ...errors import InvalidInput

if TYPE_CHECKING:
    from .chat import WsChat, _Client

__all__ = ["PASSWORD_MAX", "join"]

#: A channel password's length at most, in characters (as the admin API's).
PASSWORD_MAX = 256


def _new_password(password: str | None) -> str | None:
    """The password a join gives the channel it opens; None for none."""
    if not password:
        return None
    if len(password) > PASSWORD_MAX or "\x00" in password:
        raise InvalidInput(
            f"a channel password is at most {PASSWORD_MAX} characters, without NUL",
            field="password",
        )
    return password


async def join(chat: WsChat, client: _Client, frame: proto.Join) -> None:
    """Type 4: join ``frame.channel`` (opening it, with ``frame.password``, if new)."""
    member, core = client.member, chat.core
    name = normalize_channel(frame.channel)
    session = core.find(name)
    if session is not None and member.id in session.members:
        await client.conn.send(
            proto.encode(proto.JOIN, chat.ctx.now(), channel=session.name, user=member.name)
        )
        return
    new_hash: str | None = None
    if session is None:
        password = _new_password(frame.password)
        if password is not None:
            core.check_new_channel(member, name)
            new_hash = await chat.hasher.hash(password)
            session = core.find(name)  # another member may have opened it meanwhile
    password_ok = True
    if session is not None and session.password_hash is not None and not member.mod:
        password_ok = False
        # counted per address and channel, before the hash; an invite code is no password
        if frame.password is not None and find_invite(session, frame.password) is None:
            attempt = chat.service.password_guard.reserve(
                member.ip, session.name, name=member.name, session_id=session.id
            )
            try:
                password_ok = await chat.hasher.verify(session.password_hash, frame.password)
            finally:
                attempt.settle(password_ok)
    session, created = core.join(
        member,
        name,
        password_ok=password_ok,
        code=frame.password,
        password_hash=new_hash if session is None else None,
    )
    if created or not session.preserve_chat:
        return
    lines = [  # direct messages by identity: a nick taken over reads none of them
        e
        for e in core.history(session)
        if e.kind in ("message", "system") and e.addressed_to(member)
    ]
    for event in lines[-core.limits.history_replay :] if lines else []:
        if member.id not in chat.clients or core.limits.history_replay <= 0:
            break
        replay = proto.event_frame(event, history=True)
        if replay is not None:
            await client.conn.send(replay)
