"""The WebSocket chat of seed 003 on ``ws://host:8976/chat/login/<nick>``.

A thin shell over :class:`~leosuite.community.core.ChatCore`: frames in, core calls,
core events out through each connection's bounded queue (frame formats in
:mod:`leosuite.community.chat_protocol`). Decisions where the seed is silent:

* **Login** (:mod:`.chat_login`). The nick is the URL-decoded rest of the path (1-32
  visible characters, no spaces, ``/ # : , ! @ ? *`` and the like, nothing that looks
  like ``SYSTEM``); no two connected nicks look alike. An account logs in with its
  access token in ``Sec-WebSocket-Protocol`` (``leosuite.token.<token>`` beside
  ``leosuite.chat``) or, for older clients, ``?token=``; the nick then takes the
  account's spelling, and a token of another account is refused. Without a token the
  user is a guest (only when ``community.allow_guests``), and a nick that looks like an
  account's name is reserved. A refused login gets one type -1 error, then close 1008.
  Accounts with the MOD or ADMIN flag are moderators everywhere. When the token ends
  (logout, expiry, lock, password change, also by the CLI on the store), or the
  account's tokens are revoked, the connection is closed (1008).
* **After login** everyone connected, the new user included, gets
  ``{"type": 2, "user", "time"}``; then the new user gets the welcome message (if
  ``community.welcome_message`` is set) as ``{"type": 0, "dest": "", "user": "SYSTEM",
  "message", "level": "info", "time"}``: a server-wide line, ``dest`` empty.
* **Logout** (type 3, or the connection ending for any reason, or being closed for
  not reading): the user leaves every channel (type 5 to each, with ``reason``), and
  everyone else connected gets ``{"type": 3, "user", "time"}``.
* **Join** (type 4, optional ``password``, or one of the channel's invite codes in its
  place: :mod:`leosuite.community.invites`) is echoed to every member, the joiner
  included; a join that opens a new channel with a ``password`` gives it that password
  (:mod:`.chat_join`); joining an existing channel that preserves chat then replays up to
  ``community.history_replay`` recent lines as type 0 frames with ``"history": true``.
  Joining a channel one is in already only echoes the type 4 to the joiner. Wrong
  channel passwords count with the rooms' (``ChatService.password_guard``): past its
  limits an address's attempts are refused with a type -1 error.
* **Messages** (type 0): ``dest`` is a channel; an optional ``to`` makes it a direct
  message to one member of that channel (both see it, with ``to``). Not joined, muted,
  empty, or over ``community.message_max_bytes``: a type -1 error.
* **Moderation commands**: a type 0 line starting with ``/`` acts on the channel in
  ``dest``: ``/kick nick [reason]``, ``/ban nick [reason]``, ``/unban nick``,
  ``/mute nick``, ``/unmute nick``, ``/op nick``, ``/deop nick``, ``/help``. Allowed
  to the channel's operators (its founder, the first joiner of a channel without
  operators, those opped: by identity, an account or this one guest connection, never
  by name) and to moderators. ``//text`` sends the line ``/text``.
* **Type 6** lists every connected nick, or with ``channel`` that channel's members
  (the answer then includes ``channel``).
* **Type 1** ``{"type": 1, "password", "user"?}`` makes the connected guest nick an
  account (``user``, if given, must be the nick) when ``community.registration`` is
  on; answered ``{"type": 1, "user", "time"}``, and the connection is that account's.
* **Bad frames** (not JSON, no ``type``, unknown ``type``, wrong fields) get a type -1
  error with ``message`` and ``request`` (the type, when readable); the connection
  stays open; up to 10 a minute per connection go to the audit log as ``BadData``.
  Frames over ``ws.request_rate`` are dropped; one -1 error per 10 s says so.
* **Rooms** (seed 004) are end-to-end encrypted sessions that admit no chat member:
  joining one is refused, and to every other frame a room is no channel at all.

Logins and logouts that happen at the same moment (a crowd reconnecting after a network
blip or a restart) are announced together: each member gets them in one write, and
anything else delivered to anyone first writes the announcements before it, so no
member hears of a user's doings before its login.

Every connection has one bounded queue (``community.chat_queue_size``) and one writer
(:class:`~leosuite.api.ws.conn.WsConnection`); a member whose queue is full is
disconnected (1008) and the others are told it left. Chat connections have their own
:class:`WsHub` (the ``ws.max_connections*`` caps apply to chat and API separately);
frames of one connection are handled one at a time, in order.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Literal, NamedTuple

import msgspec
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from ...audit import Actor
from ...auth.limits import Limiter
from ...auth.passwords import PasswordHasher
from ...community import chat_protocol as proto
from ...community.core import ChatCore
from ...community.models import ChatEvent, Member, Session, normalize_channel
from ...community.service import ChatService
from ...errors import AuthError, Conflict, InvalidInput, LeosuiteError, NotFound, is_internal
from ..context import ApiContext
from .chat_commands import recheck_registered, register, run_command
from .chat_join import join
from .chat_login import CHAT_PREFIX, ChatLogin, ChatLogins, subprotocol
from .conn import WsConnection, WsHub
from .fanout import corked, flush_cork
from .protocol import CLOSE_NORMAL, CLOSE_POLICY
from .refusals import RefusalNotes

__all__ = ["CHAT_PREFIX", "WsChat"]

log = logging.getLogger("leosuite.chat")

SLOW = "too slow: its messages were not being read"
#: How often a connection's activity renews its token (sliding expiry), at most.
_RENEW_EVERY = 30.0


def _safe_message(exc: Exception, what: str) -> str:
    """What a chat client is told of an error: its message, or for an internal error
    (a bug, an I/O or store failure) only a correlation id, logged once with the detail."""
    if isinstance(exc, LeosuiteError) and not is_internal(exc):  # a full disk says so
        return exc.message
    correlation = secrets.token_hex(6)
    log.error("%s: internal error %s", what, correlation, exc_info=exc)
    return f"internal error (correlation id {correlation})"


def _close_reason(text: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    return text.encode()[:120].decode(errors="ignore")


class _Client:
    __slots__ = (
        "audit_bucket",
        "closing",
        "conn",
        "member",
        "password_hash",
        "renew_at",
        "throttle_notices",
        "token",
        "token_hash",
    )

    def __init__(self, conn: WsConnection, member: Member, login: ChatLogin) -> None:
        self.conn = conn
        self.member = member
        self.closing = False
        #: The access token it logged in with (memory only), renewed by its activity.
        self.token = login.token
        self.token_hash = login.token_hash
        #: An account made over this connection (type 1) holds no token: the password
        #: hash it was made with, re-checked when the store changes.
        self.password_hash: str | None = None
        self.renew_at = trio.current_time() + _RENEW_EVERY
        # BadData records: 10 a minute; "slow down" notices: one per 10 s.
        self.audit_bucket = Limiter(trio.current_time, window=60.0, limit=10, max_keys=1)
        self.throttle_notices = Limiter(trio.current_time, window=10.0, limit=1, max_keys=1)

    def actor(self) -> Actor:
        return Actor(id=self.member.account_id, ip=self.member.ip, name=self.member.name)


class _Announcement(NamedTuple):
    frame: str
    #: The client whose login this is: it has its own, and nothing queued before it.
    login_of: _Client | None


class WsChat:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.service: ChatService = ctx.chat
        self.core: ChatCore = ctx.chat.core
        settings = ctx.settings
        self.hub = WsHub(
            msgspec.structs.replace(
                settings.ws, queue_size=settings.community.chat_queue_size, max_inflight=1
            ),
            ctx.audit,
        )
        # Registration (type 1) and channel passwords; one hash at a time.
        auth = settings.auth
        self.hasher = PasswordHasher(
            time_cost=auth.hash_time_cost,
            memory_kib=auth.hash_memory_kib,
            parallelism=auth.hash_parallelism,
            concurrency=1,
        )
        self.clients: dict[int, _Client] = {}  # by member id
        #: Logins and logouts not yet written, in order; see :meth:`_announce`.
        self._announcements: list[_Announcement] = []
        #: Clients whose queue was full for an announcement: disconnected by the announcer.
        self._slow: list[_Client] = []
        self._announcer_due = False
        self.logins = ChatLogins(ctx)
        self._refused = RefusalNotes(ctx.audit)  # one entry per address per burst
        ctx.auth.on_token_revoked.append(self._token_revoked)
        ctx.auth.on_revoked.append(self._account_revoked)
        ctx.auth.on_store_changed.append(lambda: recheck_registered(self))
        self.core.on_presence.append(self._presence)  # users of other nodes

    # -- connections ----------------------------------------------------------------

    async def serve(self, request: WebSocketRequest, ip: str) -> None:
        if await self._refused.refuse_over_cap(self.hub, request, ip, "chat connection"):
            return
        self.hub.reserve(ip)  # before the first await: concurrent handshakes see it
        try:
            await self._connection(request, ip)
        finally:
            self.hub.release(ip)

    async def _refuse(self, ws: WebSocketConnection, message: str) -> None:
        with trio.move_on_after(self.hub.settings.send_timeout):
            try:
                await ws.send_message(proto.error_frame(message, self.ctx.now()))
                await ws.aclose(CLOSE_POLICY, _close_reason(message))
            except ConnectionClosed:
                pass

    async def _connection(self, request: WebSocketRequest, ip: str) -> None:
        refused: str | None = None
        try:
            login = await self.logins.login(request, ip)
        except LeosuiteError as exc:
            refused, login = _safe_message(exc, "chat login"), ChatLogin("")
        ws = await request.accept(subprotocol=subprotocol(request))
        if refused is not None:
            await self._refuse(ws, refused)
            return
        conn = WsConnection(
            self.hub, ws, ip, silence_limit=lambda: self.service.server_settings.client_timeout
        )
        client: _Client | None = None

        def deliver(event: ChatEvent) -> bool:
            if self._announcements:
                self._write_announcements()
            if event.kind == "closed":
                return conn.push_nowait(proto.closed_frame(event, member.name))
            frame = proto.event_frame(event)
            return True if frame is None else conn.push_nowait(frame, shared=True)

        def disconnect(reason: str) -> None:
            if client is not None:
                self._gone(client, reason)

        member = Member(
            login.nick,
            ip=ip,
            account_id=login.account_id,
            mod=login.mod,
            deliver=deliver,
            disconnect=disconnect,
        )
        try:
            self.core.connect(member)
        except LeosuiteError as exc:
            await self._refuse(ws, _safe_message(exc, "chat login"))
            return
        client = _Client(conn, member, login)
        self.clients[member.id] = client
        self.hub.add(conn)
        try:
            # The new member's own login and the welcome go out at once (its first
            # frames, even if it is closed in this same moment); the others' copies wait
            # for the announcer.
            login_frame = proto.encode(proto.LOGIN, self.ctx.now(), user=member.name)
            welcome = self.core.limits.welcome_message
            if not conn.push_nowait(login_frame, shared=True) or (
                welcome and not conn.push_nowait(self.system_frame("", welcome))
            ):
                self._slow.append(client)
            self._announce(login_frame, login_of=client)
            await conn.serve(lambda message: self._handle(client, message))
        finally:
            self.hub.remove(conn)
            self.core.disconnect(member, "quit")
            self._gone(client, "quit")  # when the core had forgotten it already

    def _gone(self, client: _Client, reason: str) -> None:
        """The member is disconnected (any reason): close, tell everyone connected."""
        if self.clients.pop(client.member.id, None) is None:
            return
        if not client.closing:
            client.closing = True
            client.conn.close(CLOSE_POLICY, _close_reason(reason))
        self._announce(proto.encode(proto.LOGOUT, self.ctx.now(), user=client.member.name))

    def _presence(self, kind: Literal["login", "logout"], name: str) -> None:
        """A chat user of another node logged in or out: everyone here is told."""
        self._announce(proto.encode(proto.LOGIN if kind == "login" else proto.LOGOUT,
                                    self.ctx.now(), user=name))  # fmt: skip

    # -- announcements --------------------------------------------------------------

    def _announce(self, frame: str, *, login_of: _Client | None = None) -> None:
        """Queue a frame for everyone connected when it is written (but ``login_of``,
        whose login it is and who has it already): what is queued before the
        announcer's turn goes out in one write per member."""
        self._announcements.append(_Announcement(frame, login_of))
        self._wake_announcer()

    def _wake_announcer(self) -> None:
        if self._announcer_due:
            return
        try:
            trio.lowlevel.spawn_system_task(self._announcer, name="chat announcements")
        except RuntimeError:  # the daemon's run is ending: no later turn, write them now
            self._write_announcements()
            return
        self._announcer_due = True

    async def _announcer(self) -> None:
        """Write what is queued, then rest as long as that took before writing what
        came meanwhile: under a crowd's logins the announcer takes at most half the
        loop, and the larger the crowd, the more logins each write carries."""
        try:
            # The other tasks that run before this one's turn add theirs to the same write.
            await trio.lowlevel.cancel_shielded_checkpoint()
            while self._announcements or self._slow:
                began = time.perf_counter()
                try:  # an error here would end the daemon (a system task): log it instead
                    self._write_announcements()
                    slow, self._slow = self._slow, []
                    for client in slow:
                        self.core.disconnect(client.member, SLOW)
                except Exception:
                    log.exception("chat announcements")
                await trio.sleep(time.perf_counter() - began)
        finally:
            self._announcer_due = False

    def _write_announcements(self) -> None:
        """Write the queued announcements now (before anything else is delivered, so
        that each member gets everything in order); a member whose queue is full is
        disconnected by the announcer, as this may run inside a fan-out of the core."""
        entries, self._announcements = self._announcements, []
        if not entries:
            return
        # A member that logged in at this moment hears only of what came after its login.
        starts = {id(e.login_of): n + 1 for n, e in enumerate(entries) if e.login_of is not None}
        slow: list[_Client] = []
        with corked():
            for client in list(self.clients.values()):
                push = client.conn.push_nowait
                for frame, _ in entries[starts.get(id(client), 0) :]:
                    if not push(frame, shared=True):
                        slow.append(client)
                        break
        if slow:
            self._slow.extend(slow)
            self._wake_announcer()

    def _token_revoked(self, token_hash: str, reason: str) -> None:
        """A token ended (logout, expiry, destroyed): its connections close."""
        for client in list(self.clients.values()):
            if client.token_hash is not None and client.token_hash == token_hash:
                self._end_session(client, reason)

    def _account_revoked(self, account_id: int, reason: str) -> None:
        """Every token of an account ended (lock, password change): its connections close."""
        for client in list(self.clients.values()):
            if client.member.account_id == account_id:
                self._end_session(client, reason)

    def _end_session(self, client: _Client, reason: str) -> None:
        client.token = client.token_hash = client.password_hash = None
        self.core.disconnect(client.member, f"session ended: {reason}")

    async def _renew(self, client: _Client) -> bool:
        """Activity renews the token's sliding expiry, as an API call does; False (and
        the connection closing) when the token ended meanwhile."""
        if client.token is None or trio.current_time() < client.renew_at:
            return True
        client.renew_at = trio.current_time() + _RENEW_EVERY
        flush_cork()
        try:
            await self.ctx.auth.authenticate(client.token, ip=client.member.ip)
        except AuthError as exc:
            self._end_session(client, exc.message)
            return False
        return True

    def system_frame(self, dest: str, text: str) -> str:
        return proto.encode(
            proto.MESSAGE, self.ctx.now(), dest=dest, user="SYSTEM", message=text, level="info"
        )

    # -- frames ---------------------------------------------------------------------

    async def _handle(self, client: _Client, message: str | bytes) -> None:
        conn = client.conn
        request: int | None = None
        if self._announcements:  # a member's login is out before anything it does
            self._write_announcements()
        try:
            if not conn.rate.take():
                if client.throttle_notices.take():
                    await self._error(client, "too many messages: slow down (messages dropped)")
                return
            try:
                frame = proto.decode_frame(message)
            except proto.ChatProtocolError as exc:
                await self._bad_data(client, exc.message)
                await self._error(client, exc.message, exc.request)
                return
            request = proto.type_of(frame)
            if await self._renew(client):
                await self._dispatch(client, frame)
        except trio.Cancelled:
            raise
        except Exception as exc:
            await self._error(
                client, _safe_message(exc, f"chat message of {client.member.name}"), request
            )

    async def _error(self, client: _Client, message: str, request: int | None = None) -> None:
        await client.conn.send(proto.error_frame(message, self.ctx.now(), request))

    async def _bad_data(self, client: _Client, reason: str) -> None:
        if client.audit_bucket.take():
            flush_cork()
            await self.ctx.audit.record(
                "BadData", f"bad chat message: {reason}", actor=client.actor(), level="warning"
            )

    async def _dispatch(self, client: _Client, frame: proto.Request) -> None:
        member, conn, now = client.member, client.conn, self.ctx.now
        # Only a plain message is handled without waiting: before anything else (a
        # password to check, an answer), what the burst said so far goes out.
        if isinstance(frame, proto.Say):
            session = self.channel(frame.dest, "join {} before sending to it")
            command = proto.parse_command(frame.message)
            if command is not None:
                flush_cork()
                await run_command(self, client, session.name, *command)
                return
            text = frame.message[1:] if frame.message.startswith("//") else frame.message
            if not text:
                raise InvalidInput("an empty message", field="message")
            self.core.say(member, session, text, to=frame.to)
        elif isinstance(frame, proto.Join):
            flush_cork()
            await join(self, client, frame)
        elif isinstance(frame, proto.Leave):
            session = self.channel(frame.channel, "you are not in {}")
            if member.id not in session.members:
                raise Conflict(f"you are not in {session.name}", field="channel")
            self.core.leave(member, session)
        elif isinstance(frame, proto.ListUsers):
            if frame.channel is None:
                users = sorted([m.name for m in self.core.chat_members()]
                               + self.core.peers.connected_names())  # fmt: skip
                await conn.send(proto.encode(proto.USERS, now(), users=users))
            else:
                session = self.channel(frame.channel)
                users = sorted(session.names() + self.core.peers.names(session))
                await conn.send(proto.encode(proto.USERS, now(), users=users, channel=session.name))
        elif isinstance(frame, proto.Logout):
            client.closing = True
            conn.close(CLOSE_NORMAL, "logged out")
            self.core.disconnect(member, "logged out")
        elif isinstance(frame, proto.Register):
            flush_cork()
            await register(self, client, frame)
        # proto.LoginNotice: the seed's clients may send type 2; nothing to do.

    def channel(self, name: str, missing: str = "there is no channel {}") -> Session:
        """The session of a channel name; one that does not exist, or is a room (closed
        to the chat), is NotFound."""
        channel = normalize_channel(name)
        session = self.core.find(channel)
        if session is None or session.room is not None:
            raise NotFound(missing.format(channel), field="channel")
        return session
