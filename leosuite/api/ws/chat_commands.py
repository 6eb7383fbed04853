"""What a chat line starting with ``/`` does, and registration (type 1): the chat's
requests that change more than one member's view.

Moderation commands act on the channel the line was sent to, as its operator (the
chat core checks who that is, by identity). Registration makes the connected guest's
nick an account, when ``community.registration`` is on; the guest's rights go with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ...auth.accounts import check_password
from ...community import chat_protocol as proto
from ...errors import Conflict, InvalidInput, PermissionDenied
from ...store import accounts

if TYPE_CHECKING:
    from .chat import WsChat, _Client

__all__ = ["register", "run_command"]

_FLAGS: dict[str, Literal["op", "deop", "mute", "unmute"]] = {
    "op": "op",
    "deop": "deop",
    "mute": "mute",
    "unmute": "unmute",
}


async def run_command(
    chat: WsChat, client: _Client, channel: str, name: str, args: list[str]
) -> None:
    """``/name args`` typed in ``channel`` by ``client``'s member."""
    member, core = client.member, chat.core
    session = chat.channel(channel)
    if name == "help":
        await client.conn.send(chat.system_frame(channel, " | ".join(proto.COMMANDS.values())))
        return
    if name not in proto.COMMANDS:
        raise InvalidInput(f"unknown command /{name}; /help lists them")
    if not args:
        raise InvalidInput(f"usage: {proto.COMMANDS[name]}")
    target, reason = args[0], (args[1] if len(args) > 1 else "")
    if name == "kick":
        core.kick(member, session, target, reason)
    elif name == "ban":
        core.ban(member, session, target, reason)
        await client.conn.send(chat.system_frame(channel, f"{target} is banned"))
    elif name == "unban":
        core.unban(member, session, target)
        await client.conn.send(chat.system_frame(channel, f"{target} is no longer banned"))
    elif name in _FLAGS:
        core.set_flag(member, session, target, _FLAGS[name])


async def register(chat: WsChat, client: _Client, frame: proto.Register) -> None:
    """Type 1: the guest's nick becomes an account, and the connection that account's."""
    member, ctx = client.member, chat.ctx
    if not chat.service.settings.registration:
        raise PermissionDenied("registration is disabled on this server")
    if member.auth:
        raise Conflict("you are logged in with an account already")
    if frame.user is not None and frame.user.casefold() != member.name.casefold():
        raise InvalidInput(f"type 1 registers your own nick: 'user' must be {member.name}")
    name = accounts.validate_username(member.name)
    check_password(frame.password, ctx.settings.auth.min_password_length)
    password_hash = await chat.hasher.hash(frame.password)
    created = ctx.now()
    account = await ctx.db.call(
        lambda conn: accounts.create(
            conn, username=name, password_hash=password_hash, created_at=created
        )
    )
    chat.core.become_account(member, account.id)
    await ctx.audit.record("auth", "account registered over the chat", actor=client.actor())
    await client.conn.send(proto.encode(proto.REGISTER, ctx.now(), user=name))
