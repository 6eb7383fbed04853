"""What a chat line starting with ``/`` does, and registration (type 1): the chat's
requests that change more than one member's view.

Moderation commands act on the channel the line was sent to, as its operator (the
chat core checks who that is, by identity). Registration makes the connected guest's
nick an account, when ``community.registration`` is on; the guest's rights go with it.
Such a connection holds no token: :func:`recheck_registered` ends it when another
process locks the account or changes its password.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ...auth.accounts import check_password
from ...community import chat_protocol as proto
from ...errors import Conflict, InvalidInput, PermissionDenied
from ...store import accounts

if TYPE_CHECKING:
    from .chat import WsChat, _Client

__all__ = ["recheck_registered", "register", "run_command"]

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
    client.password_hash = password_hash  # no token: the store watcher re-checks this
    await ctx.audit.record_done("auth", "account registered over the chat", actor=client.actor())
    await client.conn.send(proto.encode(proto.REGISTER, ctx.now(), user=name))


async def recheck_registered(chat: WsChat) -> None:
    """Accounts registered over the chat hold no token: when another process changed
    the store (``leosuite user lock``, ``user passwd``), end the connections of those
    now locked, gone, or with another password."""
    held = [c for c in chat.clients.values() if c.password_hash is not None]
    if not held:
        return
    ids = {c.member.account_id for c in held if c.member.account_id is not None}
    found = await chat.ctx.db.call(lambda conn: {i: accounts.get(conn, i) for i in ids})
    for client in held:
        account = found.get(client.member.account_id or 0)
        if account is None:
            reason = "account deleted"
        elif account.locked:
            reason = "account locked"
        elif account.password_hash != client.password_hash:
            reason = "password changed"
        else:
            continue
        if chat.clients.get(client.member.id) is client:
            chat._end_session(client, reason)
