"""The chat core: one model behind both chat protocols and the admin API.

A *session* (seed 002's word) is a channel of the WebSocket chat (seed 003) and a
room of the HTTP rooms (seed 004): same name, same session. Protocol adapters
(``api/ws/chat.py``, ``api/http/rooms.py``) turn wire messages into calls here and
:class:`ChatEvent`s from here into wire messages.

This module does no I/O and never blocks: delivering an event to a member is a
non-blocking ``deliver(event) -> bool`` the adapter provides (a bounded queue); a
member whose queue is full is disconnected and the others are told it left. Audit
records go to a non-blocking ``on_audit`` sink. Times come from an injected clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

from ..auth.limits import Limiter
from ..auth.login_limits import address_key
from ..errors import Conflict, NotFound, PermissionDenied, RateLimited, TooLarge
from .invites import check_entry, use_invite
from .models import (
    AuditRecord,
    ChatEvent,
    ChatLimits,
    Level,
    Member,
    Session,
    check_new_name,
    identity,
    normalize_channel,
)
from .nicks import look_alike, name_keys
from .peers import NO_PEERS, Peers, Presence

__all__ = ["ChatCore"]


class ChatCore:
    def __init__(
        self,
        limits: ChatLimits,
        now: Callable[[], float],
        *,
        on_audit: Callable[[AuditRecord], None] = lambda _record: None,
    ) -> None:
        self.limits = limits
        self._now = now
        self._on_audit = on_audit
        self._guest_moves = Limiter(now, window=60.0, limit=1)  # audited joins and leaves
        self.sessions: dict[str, Session] = {}  # by id
        self._by_name: dict[str, Session] = {}  # casefolded name -> session
        self.members: dict[int, Member] = {}
        self._chat_nicks: dict[str, Member] = {}  # each of its name_keys -> chat member
        self._chat: dict[int, Member] = {}  # connected chat members by id, in order
        self._creations = self._creation_limiter()
        #: The other nodes of a cluster (none by default); :meth:`relayed` takes theirs.
        self.peers: Peers = NO_PEERS
        #: Told when a chat user connected to another node logs in or out.
        self.on_presence: list[Presence] = []

    def _creation_limiter(self) -> Limiter:
        """New chat channels per address a minute (``channel_creations_per_minute``)."""
        limit = self.limits.channel_creations_per_minute
        return Limiter(self._now, window=60.0, limit=limit)

    # -- plumbing ---------------------------------------------------------------------

    def update_limits(self, limits: ChatLimits) -> None:
        self.limits = limits
        if self._creations.limit != limits.channel_creations_per_minute:
            self._creations = self._creation_limiter()
        for session in self.sessions.values():
            self._trim(session)

    def _audit(self, topic: str, message: str, member: Member | None, session: Session | None,
               level: str = "info") -> None:  # fmt: skip
        self._on_audit(
            AuditRecord(
                topic=topic,
                message=message,
                session=session.id if session else "",
                user_id=member.account_id if member else None,
                ip=member.ip if member else "",
                name=member.name if member else "",
                level=level,
            )
        )

    def _audit_move(self, topic: str, message: str, member: Member, session: Session) -> None:
        """Audit a join or leave; a guest's only once per address a minute (with how many
        were passed over), so guests connecting in a loop cannot flood the log."""
        if member.kind == "chat" and not member.auth:
            skipped = self._guest_moves.first(f"{topic} {member.ip}")
            if skipped is None:
                return
            if skipped:
                message += f" ({skipped} more by guests from this address since)"
        self._audit(topic, message, member, session)

    def _fan_out(
        self, session: Session, event: ChatEvent, *, only: Iterable[Member] | None = None
    ) -> None:
        slow: list[Member] = []
        for member in list(only if only is not None else session.members.values()):
            if not member.deliver(event):
                slow.append(member)
        for member in slow:
            self.disconnect(member, "too slow: its messages were not being read")

    def _store(self, session: Session, event: ChatEvent) -> None:
        event.id = session.next_id
        session.next_id += 1
        session.last_activity = event.time
        if session.preserve_chat or session.room is not None:
            session.history.append(event)
            session.history_bytes += event.size
            self._trim(session)
        for watch in list(session.watchers):
            watch(event)
        for wake in list(session.on_message):
            wake()

    def _trim(self, session: Session) -> None:
        while session.history and session.history_bytes > self.limits.session_size_limit:
            session.history_bytes -= session.history.popleft().size

    # -- members ----------------------------------------------------------------------

    def connect(self, member: Member) -> None:
        """Register a member; no two connected chat users have look-alike nicks."""
        if member.kind == "chat":
            if self.nick_taken(member.name):
                raise Conflict(f"the nick {member.name!r} is taken", field="nick")
            if not member.auth and not self.limits.allow_guests:
                raise PermissionDenied("guests are not allowed here; log in with a token")
            for key in name_keys(member.name):
                self._chat_nicks[key] = member
            self._chat[member.id] = member
            self.peers.connected(member)
        self.members[member.id] = member

    def nick_taken(self, nick: str) -> bool:
        """Whether a connected chat member's nick looks like ``nick``."""
        return any(key in self._chat_nicks for key in name_keys(nick)) or self.peers.nick_taken(
            nick
        )

    def become_account(self, member: Member, account_id: int) -> None:
        """A guest registered its nick: it is that account now, with the rights it had."""
        before = identity(member)
        member.account_id = account_id
        for session in self.sessions.values():  # muted where it left, too
            for group in (session.ops, session.muted, session.trusted):
                if before in group:
                    group.discard(before)
                    group.add(identity(member))

    def chat_members(self) -> list[Member]:
        return list(self._chat.values())

    def disconnect(self, member: Member, reason: str) -> None:
        """Leave every session and forget the member; ``member.disconnect`` is told."""
        if self.members.pop(member.id, None) is None:
            return
        member.gone = True
        if self._chat.pop(member.id, None) is not None:
            for key in name_keys(member.name):
                if self._chat_nicks.get(key) is member:
                    del self._chat_nicks[key]
        for session in list(member.sessions.values()):
            self.leave(member, session, reason=reason)
        if member.kind == "chat":
            self.peers.disconnected(member)
        if member.kind == "chat" and not member.auth:  # its identity ends with it
            for session in self.sessions.values():
                session.muted.discard(identity(member))
        member.disconnect(reason)

    # -- sessions ---------------------------------------------------------------------

    def find(self, name: str) -> Session | None:
        return self._by_name.get(normalize_channel(name).casefold())

    def get(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise NotFound(f"no session {session_id!r}", field="session")
        return session

    def create(self, name: str, founder: Member | None, *, founder_name: str = "",
               room: bool = False, restored: bool = False) -> Session:  # fmt: skip
        """A new session; chat channels count against ``session_count_limit``, rooms
        (``room``) against the rooms' own limit, which their table checks. A stored
        session coming back (``restored``) keeps a name from before the name rule."""
        name = normalize_channel(name)
        address = self._may_create(name, founder, room=room, restored=restored)
        if address:
            self._creations.note(address)
        session = Session(
            name,
            founder.name if founder else founder_name,
            self._now(),
            max_users=self.limits.default_max_users,
        )
        session.founder_address = address
        self.sessions[session.id] = session
        self._by_name[name.casefold()] = session
        self._audit("Status", f"session {name} created", founder, session)
        return session

    def _may_create(self, name: str, founder: Member | None, *, room: bool = False,
                    restored: bool = False) -> str:  # fmt: skip
        """Refuse what :meth:`create` refuses, recording nothing; the founder's address
        key for a chat channel that counts against the per-address limits, else ""."""
        if not restored:
            check_new_name(name)
        if name.casefold() in self._by_name:
            raise Conflict(f"a session named {name!r} exists already", field="channel")
        limit = self.limits.session_count_limit
        if not room and sum(1 for s in self.sessions.values() if s.room is None) >= limit:
            raise Conflict("the server's session limit is reached; try again later")
        if founder is not None and not founder.auth and not self.limits.allow_guest_hosts:
            raise PermissionDenied("only logged-in users may open a new channel here")
        if room or founder is None or not founder.ip or founder.mod:
            return ""
        return self._check_address(founder)

    def check_new_channel(self, member: Member, name: str) -> None:
        """Refuse what :meth:`join` refuses when ``member`` would open channel ``name``,
        recording nothing (an adapter checks before slow work for the new channel)."""
        if len(member.sessions) >= self.limits.channels_per_member:
            raise Conflict(f"at most {self.limits.channels_per_member} channels per user")
        self._may_create(normalize_channel(name), member)

    def _check_address(self, founder: Member) -> str:
        """Refuse a new chat channel from an address that has ``channels_per_address``
        open, or opened ``channel_creations_per_minute`` in the last minute; its key."""
        address = address_key(founder.ip)
        cap = self.limits.channels_per_address
        if sum(1 for s in self.sessions.values() if s.founder_address == address) >= cap:
            raise Conflict(f"at most {cap} open channels from one address; join an existing one")
        if self._creations.count(address) >= self._creations.limit:
            raise RateLimited(
                f"at most {self._creations.limit} new channels a minute from one address; "
                "try again in a minute"
            )
        return address

    def join(self, member: Member, name: str, *, password_ok: bool = True,
             code: str | None = None,
             password_hash: str | None = None) -> tuple[Session, bool]:  # fmt: skip
        """Join (creating the session if there is none); returns (session, created).

        ``password_ok`` is the adapter's verdict on the session password (it holds the
        hasher); a password-protected session refuses ``False``. ``code`` may be one of
        the session's invite codes (:func:`.invites.check_entry` has the rules). A
        session created here gets ``password_hash`` as its password (None: none)."""
        if member.gone:  # nothing would take it out of the channel again
            raise Conflict("you are no longer connected")
        session = self.find(name)
        created = session is None
        if session is not None and member.id in session.members:
            return session, False
        # Before creating: a refused join must not leave an empty session behind.
        if len(member.sessions) >= self.limits.channels_per_member:
            raise Conflict(f"at most {self.limits.channels_per_member} channels per user")
        if session is None:
            session = self.create(name, member)
            session.password_hash = password_hash
        if session.room is not None and member.kind != "room":
            # a room is end-to-end encrypted: only its own users, over the rooms API
            raise PermissionDenied(f"{session.name} is an encrypted room: join it over /rooms")
        if any(look_alike(member.name, n) for n in session.banned):
            self._audit("RuleBreak", "banned user tried to join", member, session, "warning")
            raise PermissionDenied(f"you are banned from {session.name}")
        invite = None
        if not created:
            invite = check_entry(session, member, password_ok=password_ok, code=code)
            if len(session.members) >= session.max_user_count and not member.mod:
                raise Conflict(f"{session.name} is full ({session.max_user_count} users)")
        session.members[member.id] = member
        member.sessions[session.id] = session
        if created or not session.ops:
            session.ops.add(identity(member))
        if invite is not None:
            use_invite(session, member, invite, self._now())
            self._audit("Invite", f"joined {session.name} with an invite code", member, session)
        session.last_activity = self._now()
        event = ChatEvent("join", session, member.name, self._now())
        self._fan_out(session, event)
        self.peers.sent(session, event)
        self._audit_move("Join", f"joined {session.name}", member, session)
        return session, created

    def leave(self, member: Member, session: Session, *, reason: str = "left") -> None:
        if session.members.pop(member.id, None) is None:
            raise Conflict(f"not in {session.name}", field="channel")
        member.sessions.pop(session.id, None)
        if member.kind == "chat" and not member.auth:  # a guest is this one connection
            session.ops.discard(identity(member))  # a mute stays until it disconnects
            session.trusted.discard(identity(member))
        event = ChatEvent("leave", session, member.name, self._now(), reason=reason)
        self._fan_out(session, event, only=[member, *session.members.values()])
        self.peers.sent(session, event)
        self._audit_move("Leave", f"left {session.name}: {reason}", member, session)
        if not session.members and session.room is None and not session.persistent:
            self._forget(session)

    def _forget(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        if self._by_name.get(session.name.casefold()) is session:
            del self._by_name[session.name.casefold()]

    def close(self, session: Session, reason: str) -> None:
        """Shut a session down: members are told and removed, the session is gone."""
        event = ChatEvent("closed", session, "SYSTEM", self._now(), reason=reason, text=reason)
        self._fan_out(session, event)
        for member in list(session.members.values()):
            session.members.pop(member.id, None)
            member.sessions.pop(session.id, None)
            self.peers.sent(session, ChatEvent("leave", session, member.name, event.time,
                                               reason=reason))  # fmt: skip
        self._forget(session)
        for wake in list(session.on_message):
            wake()
        self._audit("Status", f"session {session.name} closed: {reason}", None, session)

    # -- messages ---------------------------------------------------------------------

    def _require_member(self, member: Member, session: Session) -> None:
        if member.id not in session.members:
            self._audit("RuleBreak", f"message to {session.name} without joining", member, session,
                        "warning")  # fmt: skip
            raise Conflict(f"join {session.name} before sending to it", field="channel")
        if session.is_muted(member):
            raise PermissionDenied(f"you are muted in {session.name}")

    def _check_size(self, member: Member, session: Session | None, text: str) -> None:
        if len(text.encode("utf-8", "surrogatepass")) > self.limits.message_max_bytes:
            self._audit("BadData", "message over the size limit", member, session, "warning")
            raise TooLarge(f"a message is at most {self.limits.message_max_bytes} bytes")

    def say(self, member: Member, session: Session, text: str = "", *,
            payload: str | None = None, to: str | None = None) -> ChatEvent:  # fmt: skip
        """A message to the session (``to`` None) or to one member of it. Chat lines are
        ``text``; room messages are opaque ``payload``s the server never decrypts."""
        self._require_member(member, session)
        self._check_size(member, session, text or payload or "")
        targets: list[Member] | None = None
        to_id = ""
        if to is not None:
            target = session.member_named(to)
            if target is None:
                raise NotFound(f"no user {to!r} in {session.name}", field="to")
            targets = [member, target] if target is not member else [member]
            to_id = identity(target)
        event = ChatEvent(
            "message", session, member.name, self._now(), text=text, payload=payload,
            origin=member.kind, to=to, sender_id=identity(member), to_id=to_id,
        )  # fmt: skip
        self._store(session, event)
        self._fan_out(session, event, only=targets)
        if to is None:
            self.peers.sent(session, event)
        return event

    def relayed(self, session: Session, event: ChatEvent) -> None:
        """A join, leave or message of a member on another node: stored (a message)
        and delivered to this node's members, never sent back to the peers."""
        if event.kind == "message":
            self._store(session, event)
        self._fan_out(session, event)

    def system(self, session: Session, text: str, level: Level = "info", *,
               to: Member | None = None) -> ChatEvent:  # fmt: skip
        """A message from SYSTEM (joins, kicks, warnings, the admin's messages)."""
        event = ChatEvent(
            "system", session, "SYSTEM", self._now(), text=text, level=level,
            to=to.name if to else None, to_id=identity(to) if to else "",
        )  # fmt: skip
        self._store(session, event)
        self._fan_out(session, event, only=[to] if to else None)
        return event

    def history(
        self, session: Session, *, after: int = 0, limit: int | None = None
    ) -> list[ChatEvent]:
        items = [e for e in session.history if e.id > after]
        return items[-limit:] if limit else items

    def purge_history(self, session: Session, before: float) -> int:
        """Drop stored events older than ``before`` (a room's retention); returns how many."""
        dropped = 0
        while session.history and session.history[0].time < before:
            session.history_bytes -= session.history.popleft().size
            dropped += 1
        return dropped

    # -- moderation -------------------------------------------------------------------

    def is_op(self, member: Member, session: Session) -> bool:
        """Moderators everywhere, and the session's operators by identity (never by
        name: a guest named like an operator is not one)."""
        return member.mod or session.is_op(member)

    def _moderator(self, actor: Member | None, session: Session) -> None:
        if actor is not None and not self.is_op(actor, session):
            raise PermissionDenied(f"only operators of {session.name} may do that")

    def _target(self, session: Session, name: str) -> Member:
        target = session.member_named(name)
        if target is None:
            raise NotFound(f"no user {name!r} in {session.name}", field="user")
        return target

    def kick(self, actor: Member | None, session: Session, name: str, reason: str = "", *,
             target: Member | None = None) -> None:  # fmt: skip
        """``target`` names the member exactly when a chat nick and a room user share
        ``name`` (the rooms adapter passes its own member)."""
        self._moderator(actor, session)
        target = target if target is not None else self._target(session, name)
        by = actor.name if actor else "an administrator"
        self._audit("Kick", f"kicked from {session.name} by {by}: {reason}", target, session)
        self.leave(target, session, reason=f"kicked by {by}" + (f": {reason}" if reason else ""))

    def ban(self, actor: Member | None, session: Session, name: str, reason: str = "", *,
            target: Member | None = None) -> None:  # fmt: skip
        self._moderator(actor, session)
        session.banned.add(name)
        target = target if target is not None else session.member_named(name)
        if target is not None and target.id not in session.members:
            target = None
        by = actor.name if actor else "an administrator"
        self._audit("Ban", f"{name} banned from {session.name} by {by}: {reason}", target, session)
        if target is not None:
            self.leave(
                target, session, reason=f"banned by {by}" + (f": {reason}" if reason else "")
            )

    def unban(self, actor: Member | None, session: Session, name: str) -> None:
        self._moderator(actor, session)
        session.banned = {n for n in session.banned if not look_alike(n, name)}
        self._audit("Unban", f"{name} unbanned from {session.name}", actor, session)

    def set_flag(self, actor: Member | None, session: Session, name: str,
                 flag: Literal["op", "deop", "mute", "unmute"], *,
                 target: Member | None = None) -> None:  # fmt: skip
        self._moderator(actor, session)
        target = target if target is not None else self._target(session, name)
        group = session.ops if flag in ("op", "deop") else session.muted
        if flag in ("op", "mute"):
            group.add(identity(target))
        else:
            group.discard(identity(target))
        by = actor.name if actor else "an administrator"
        self._audit(
            flag.capitalize(), f"{flag} {target.name} in {session.name} by {by}", target, session
        )
        self._fan_out(session, ChatEvent(flag, session, target.name, self._now(), reason=by))

    # -- housekeeping -----------------------------------------------------------------

    def idle_sessions(self) -> list[Session]:
        """Sessions idle longer than ``idle_time_limit`` (0 disables)."""
        limit = self.limits.idle_time_limit
        if limit <= 0:
            return []
        cutoff = self._now() - limit
        return [s for s in self.sessions.values()
                if s.last_activity < cutoff and not s.idle_override]  # fmt: skip
