"""What one node's chat relay holds of the chat users connected to the other nodes,
and how what those nodes say of them reaches this node's chat core (the rules are in
:mod:`.chat_relay`'s text)."""

from __future__ import annotations

from collections.abc import Callable

from ..community.core import ChatCore
from ..community.models import ChatEvent, Session, normalize_channel, validate_nick
from ..community.nicks import look_alike, name_keys
from . import chat_wire as wire
from .chat_wire import Reassembly

__all__ = ["MAX_NODES", "RemoteNode", "RemoteUser", "Roster", "relayed_session"]

#: Nodes, and users of all of them together, held at most (more is a hostile peer:
#: anyone who may connect to the database may NOTIFY, under any node name).
MAX_NODES = 256
MAX_USERS = 100_000


def relayed_session(session: Session) -> bool:
    """Whether a session's traffic crosses nodes: a chat channel anyone may join."""
    return (
        session.room is None
        and session.password_hash is None
        and not session.invites
        and not session.auth_only
        and not session.closed
    )


def banned(session: Session, user: RemoteUser) -> bool:
    """Whether a name banned from ``session`` looks like ``user``'s nick or shown name."""
    return any(look_alike(user.nick, n) or look_alike(user.shown, n) for n in session.banned)


class RemoteUser:
    """A chat user of another node: its ``nick`` there and the name ``shown`` here
    (the nick, or ``nick@node`` when the nick looks like one shown here already)."""

    __slots__ = ("channels", "nick", "shown")

    def __init__(self, nick: str, shown: str) -> None:
        self.nick = nick
        self.shown = shown
        #: The relayed channels it is in: casefolded name -> name.
        self.channels: dict[str, str] = {}


class RemoteNode:
    """Another node as its relay messages tell it: its epoch and last sequence number,
    its users (by casefolded nick), and the split message it is sending."""

    __slots__ = ("epoch", "heard", "name", "parts", "seq", "users")

    def __init__(self, name: str) -> None:
        self.name = name
        self.epoch = ""
        self.seq = 0
        #: When it was last heard from (trio's clock).
        self.heard = 0.0
        self.users: dict[str, RemoteUser] = {}
        self.parts = Reassembly()


class Roster:
    """The other nodes' chat users, by node; what is new or gone is told to the core."""

    def __init__(self, core: ChatCore, now: Callable[[], float]) -> None:
        self.core = core
        self.now = now
        self.nodes: dict[str, RemoteNode] = {}
        self._shown: dict[str, RemoteUser] = {}  # each name_key of a shown name -> user
        self._users = 0  # held of every node

    def nick_taken(self, nick: str) -> bool:
        return any(key in self._shown for key in name_keys(nick))

    def names(self, session: Session) -> list[str]:
        if not relayed_session(session):
            return []
        key = session.name.casefold()
        return [
            u.shown
            for n in self.nodes.values()
            for u in n.users.values()
            if key in u.channels and not banned(session, u)
        ]

    def connected_names(self) -> list[str]:
        return [u.shown for n in self.nodes.values() for u in n.users.values()]

    def node(self, name: str) -> RemoteNode:
        node = self.nodes.get(name)
        if node is None:
            if len(self.nodes) >= MAX_NODES:
                raise wire.WireError("too many nodes")
            node = self.nodes[name] = RemoteNode(name)
        return node

    def user(self, node: RemoteNode, nick: str) -> RemoteUser:
        """The user ``nick`` of ``node``, told to the local users when new."""
        user = node.users.get(nick.casefold())
        if user is not None:
            return user
        validate_nick(nick)
        if self._users >= MAX_USERS:
            raise wire.WireError("too many users on the other nodes")
        shown = nick
        if self.core.nick_taken(nick):
            shown = f"{nick}@{node.name}"
            if self.core.nick_taken(shown):
                raise wire.WireError(f"{nick!r} looks like a user shown here already")
        user = node.users[nick.casefold()] = RemoteUser(nick, shown)
        self._users += 1
        for key in name_keys(shown):
            self._shown[key] = user
        for tell in list(self.core.on_presence):
            tell("login", shown)
        return user

    def drop_user(self, node: RemoteNode, nick: str, reason: str) -> None:
        user = node.users.get(nick.casefold())
        if user is None:
            return
        for channel in list(user.channels.values()):
            self.leave(node, nick, channel, reason)
        del node.users[nick.casefold()]
        self._users -= 1
        for key in name_keys(user.shown):
            if self._shown.get(key) is user:
                del self._shown[key]
        for tell in list(self.core.on_presence):
            tell("logout", user.shown)

    def forget(self, name: str, reason: str, *, keep: bool = False) -> None:
        node = self.nodes.get(name)
        if node is None:
            return
        for user in list(node.users.values()):
            self.drop_user(node, user.nick, reason)
        if not keep:
            del self.nodes[name]

    def local(self, channel: str, user: RemoteUser) -> Session | None:
        """The local session of ``channel`` if ``user``'s traffic is delivered into it."""
        session = self.core.find(channel)
        if session is None or not relayed_session(session):
            return None
        return None if banned(session, user) else session

    def join(self, node: RemoteNode, nick: str, channel: str) -> RemoteUser:
        user = self.user(node, nick)
        channel = normalize_channel(channel)
        if channel.casefold() in user.channels:
            return user
        if len(user.channels) >= self.core.limits.channels_per_member:
            raise wire.WireError(f"{nick!r} is in too many channels")
        user.channels[channel.casefold()] = channel
        session = self.local(channel, user)
        if session is not None:
            self.core.relayed(session, ChatEvent("join", session, user.shown, self.now()))
        return user

    def leave(self, node: RemoteNode, nick: str, channel: str, reason: str) -> None:
        user = node.users.get(nick.casefold())
        channel = normalize_channel(channel)
        if user is None or user.channels.pop(channel.casefold(), None) is None:
            return
        session = self.local(channel, user)
        if session is not None:
            event = ChatEvent("leave", session, user.shown, self.now(), reason=reason)
            self.core.relayed(session, event)

    def say(self, node: RemoteNode, message: wire.Say) -> None:
        """A message of ``node``'s user to a channel, delivered here."""
        if len(message.text.encode("utf-8", "surrogatepass")) > self.core.limits.message_max_bytes:
            raise wire.WireError("a message over this node's message_max_bytes")
        user = self.join(node, message.nick, message.channel)
        session = self.local(message.channel, user)
        if session is None:
            return
        self.core.relayed(
            session,
            ChatEvent(
                "message", session, user.shown, self.now(), text=message.text, origin="chat",
                sender_id=f"node:{node.name}:{user.nick.casefold()}",
            ),
        )  # fmt: skip

    def replace(self, node: RemoteNode, members: dict[str, list[str]]) -> None:
        """A node's whole roster: who is gone leaves, who is new joins."""
        wanted = {nick.casefold(): (nick, channels) for nick, channels in members.items()}
        for key, user in list(node.users.items()):
            if key not in wanted:
                self.drop_user(node, user.nick, "quit")
        for nick, channels in wanted.values():
            user = self.user(node, nick)
            keep = {normalize_channel(c).casefold() for c in channels}
            for key, channel in list(user.channels.items()):
                if key not in keep:
                    self.leave(node, nick, channel, "left")
            for channel in channels:
                self.join(node, nick, channel)
