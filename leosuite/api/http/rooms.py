"""``POST /rooms``: the encrypted rooms of seed 004 over HTTP.

Every request is ``{"action", "payload"}``; ``payload`` is an object or, as the
origin's own client sends it, a JSON-encoded string of one (both are accepted). Answers:

==============  =======================================================================
createRoom      ``{roomName, owner, pass[, token]}`` -> ``{"status": "ok", "name"}``
joinRoom        ``{roomName, user, userpass}`` -> ``{"status": "ok", "last", "session",
                "syskey"}``
pollMsg         ``{..., mylast[, wait]}`` -> ``{"status": "updated", "messages": [[id,
                msgtext, timestamp, fromuser, touser], ...]}`` or ``{"status":
                "unchanged", "last"}`` or, once after a kick/ban/close, ``{"status":
                "errmessage", "text"}``
sendMsg         ``{..., msg}`` -> ``{"status": "ok", "msgid"}``
sendDirectMsg   ``{..., msg, to}`` -> ``{"status": "ok", "msgid"}``
inviteUser      ``{..., invite, pass}`` -> ``{"status": "ok"}``
kickUser/banUser  ``{..., kick}`` (owner only) -> ``{"status": "ok"}``
leaveRoom/closeRoom (owner only) -> ``{"status": "ok"}``
==============  =======================================================================

Every action but createRoom and joinRoom carries ``roomName``, ``user`` and
``sesskey``; a missing, wrong or someone else's key is 403. Field names are the
origin client's (bentasker/LocalChat ``client/LocalChatClient.py``: ``invite`` and
``pass`` for inviteUser, ``kick`` for kickUser/banUser).

Errors are HTTP 400, 403 or 500 (the seed's codes; a conflict or an unknown user is
400), or 429 (too many rooms created or wrong passwords sent from one address, or
wrong passwords for one room), with ``{"status": "error", "error_type", "text"}``.
With ``community.rooms_require_account``, createRoom needs an account's access token
(``Authorization: Bearer`` or the payload's ``token``). The origin's server answers
errors with an empty body and its client never reads one (``urllib2.urlopen`` raises
on any non-2xx status and ``sendRequest`` returns ``"BROKENLINK"``); a client that
does parse the body and tests ``status`` sees something that is not ``ok``, and
``text`` reads like the ``errmessage`` text.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import trio
from quart import Blueprint, Response
from werkzeug.exceptions import HTTPException

from ...auth.passwords import PasswordHasher
from ...community.crypto import is_plausible_payload
from ...community.rooms import Room, Rooms, RoomUser
from ...errors import AuthError, DiskFull, InvalidInput, LeosuiteError, RateLimited, is_internal
from ..context import ApiContext
from ..requests import authenticate, decode_bytes, peer_ip, read_body
from .auth import json_response
from .errors import HTTP_ERROR_TYPES, BadInputRecorder

__all__ = ["rooms_blueprint"]

log = logging.getLogger("leosuite.api")

T = TypeVar("T", bound=msgspec.Struct)


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    action: str
    payload: msgspec.Raw


class RoomPayload(msgspec.Struct, kw_only=True):
    roomName: str


class CreateRoom(RoomPayload, kw_only=True):
    owner: str
    password: str = msgspec.field(name="pass")
    #: An account's access token (needed with ``community.rooms_require_account``).
    token: str | None = None


class JoinRoom(RoomPayload, kw_only=True):
    user: str
    userpass: str


class Authed(RoomPayload, kw_only=True):
    user: str = ""
    sesskey: str = ""


class PollMsg(Authed, kw_only=True):
    mylast: int | str
    wait: float = 0.0


class SendMsg(Authed, kw_only=True):
    msg: str


class SendDirectMsg(SendMsg, kw_only=True):
    to: str


class InviteUser(Authed, kw_only=True):
    invite: str
    password: str = msgspec.field(name="pass")


class KickUser(Authed, kw_only=True):
    kick: str


def decode_payload(raw: msgspec.Raw, kind: type[T]) -> T:
    """An object, or a JSON string holding one (the origin client's way)."""
    data = bytes(raw)
    if data.lstrip()[:1] == b'"':
        try:
            text = msgspec.json.decode(data, type=str)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"payload is not valid JSON: {exc}", field="payload") from None
        data = text.encode("utf-8", "surrogatepass")
    return decode_bytes(data, kind)


def parse_mylast(value: int | str) -> int:
    if isinstance(value, str):  # the origin server took "5" as 5 (SQLite affinity)
        if not (value.isascii() and value.isdigit() and len(value) <= 18):
            raise InvalidInput("mylast must be a message id (a whole number)", field="mylast")
        value = int(value)
    if value < 0:
        raise InvalidInput("mylast must not be negative", field="mylast")
    return value


def error_response(status: int, error_type: str, text: str) -> Response:
    return json_response({"status": "error", "error_type": error_type, "text": text}, status)


def rooms_blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("rooms", __name__)
    chat = ctx.chat
    community = ctx.settings.community
    auth = ctx.settings.auth
    hasher = PasswordHasher(
        time_cost=auth.hash_time_cost,
        memory_kib=auth.hash_memory_kib,
        parallelism=auth.hash_parallelism,
        concurrency=auth.hash_concurrency,
    )
    rooms = Rooms(
        chat.core,
        hasher,
        chat.crypto.system_payload,
        ctx.now,
        retention=community.room_message_retention,
        idle_warning=community.room_idle_warning,
        min_password=auth.min_password_length,
        guard=chat.password_guard,
        creations_per_hour=community.room_creations_per_hour,
    )
    chat.housekeepers.append(rooms)
    bad_input = BadInputRecorder(ctx.audit)
    max_body = ctx.settings.http.max_body_bytes

    def session(body: Authed) -> tuple[Room, RoomUser]:
        return rooms.authenticate(body.roomName, body.user, body.sesskey)

    def checked_payload(msg: str) -> str:
        limit = rooms.core.limits.message_max_bytes
        if not is_plausible_payload(msg, limit):
            raise InvalidInput(f"msg must be base64 of at most {limit} bytes", field="msg")
        return msg

    async def create_room(raw: msgspec.Raw) -> dict[str, Any]:
        body = decode_payload(raw, CreateRoom)
        if community.rooms_require_account:
            try:
                await authenticate(ctx.auth, body.token)
            except AuthError as exc:
                raise AuthError(f"creating a room needs an account here: {exc.message}") from None
        room = await rooms.create(body.roomName, body.owner, body.password, ip=peer_ip())
        return {"status": "ok", "name": room.session.name}

    async def join_room(raw: msgspec.Raw) -> dict[str, Any]:
        body = decode_payload(raw, JoinRoom)
        room, ruser, last = await rooms.join(body.roomName, body.user, body.userpass, peer_ip())
        return {"status": "ok", "last": last, "session": ruser.sesskey, "syskey": room.syskey}

    async def poll_msg(raw: msgspec.Raw) -> dict[str, Any]:
        body = decode_payload(raw, PollMsg)
        mylast = parse_mylast(body.mylast)
        if body.wait < 0:
            raise InvalidInput("wait must not be negative", field="wait")
        try:
            room, ruser = session(body)
            newest = room.session.next_id - 1
            if mylast > newest:
                raise InvalidInput(
                    f"mylast is beyond the newest message ({newest})", field="mylast"
                )
            if body.wait > 0 and not rooms.visible(room, ruser, mylast):
                wait = min(body.wait, community.room_poll_max_wait)
                await rooms.wait_for_message(room, ruser, mylast, trio.current_time() + wait)
                room, ruser = session(body)
        except AuthError:
            text = rooms.farewell(body.roomName, body.user, body.sesskey)
            if text is None:
                raise
            return {"status": "errmessage", "text": text}
        events = rooms.visible(room, ruser, mylast)
        if not events:
            return {"status": "unchanged", "last": mylast}
        return {"status": "updated", "messages": await rooms.render(room, events)}

    async def send_msg(raw: msgspec.Raw) -> dict[str, Any]:
        body = decode_payload(raw, SendMsg)
        room, ruser = session(body)
        event = await rooms.send(room, ruser, checked_payload(body.msg), None)
        return {"status": "ok", "msgid": event.id}

    async def send_direct_msg(raw: msgspec.Raw) -> dict[str, Any]:
        body = decode_payload(raw, SendDirectMsg)
        room, ruser = session(body)
        event = await rooms.send(room, ruser, checked_payload(body.msg), body.to)
        return {"status": "ok", "msgid": event.id}

    async def invite_user(raw: msgspec.Raw) -> dict[str, Any]:
        body = decode_payload(raw, InviteUser)
        room, ruser = session(body)
        await rooms.invite(room, ruser, body.invite, body.password)
        return {"status": "ok"}

    async def kick_user(raw: msgspec.Raw, *, ban: bool = False) -> dict[str, Any]:
        body = decode_payload(raw, KickUser)
        room, ruser = session(body)
        await rooms.kick(room, ruser, body.kick, ban=ban)
        return {"status": "ok"}

    async def ban_user(raw: msgspec.Raw) -> dict[str, Any]:
        return await kick_user(raw, ban=True)

    async def leave_room(raw: msgspec.Raw) -> dict[str, Any]:
        room, ruser = session(decode_payload(raw, Authed))
        await rooms.leave(room, ruser)
        return {"status": "ok"}

    async def close_room(raw: msgspec.Raw) -> dict[str, Any]:
        room, ruser = session(decode_payload(raw, Authed))
        if not room.is_owner(ruser):
            raise AuthError("only the room's owner may close it")
        rooms.close(room, "closed by its owner", closer=ruser)
        return {"status": "ok"}

    actions: dict[str, Callable[[msgspec.Raw], Awaitable[dict[str, Any]]]] = {
        "createRoom": create_room,
        "joinRoom": join_room,
        "pollMsg": poll_msg,
        "sendMsg": send_msg,
        "sendDirectMsg": send_direct_msg,
        "inviteUser": invite_user,
        "kickUser": kick_user,
        "banUser": ban_user,
        "leaveRoom": leave_room,
        "closeRoom": close_room,
    }

    @bp.post("/rooms")
    async def rooms_endpoint() -> Response:
        try:
            envelope = decode_bytes(await read_body(max_body), Envelope)
            handler = actions.get(envelope.action)
            if handler is None:
                raise InvalidInput(f"unknown action {envelope.action[:64]!r}", field="action")
            return json_response(await handler(envelope.payload))
        except LeosuiteError as exc:
            if is_internal(exc):
                return internal(exc)
            status = 403 if isinstance(exc, AuthError) else 400
            if isinstance(exc, RateLimited):
                status = 429
            if isinstance(exc, DiskFull):  # the seed's "server had an issue", with its message
                status = 500
            if status == 400:
                await bad_input.record(400, exc.message)
            return error_response(status, exc.error_type, exc.message)
        except HTTPException as exc:  # e.g. a chunked body over http.max_body_bytes (413)
            code = exc.code or 500
            if code >= 500:
                return internal(exc)
            await bad_input.record(code, exc.description or exc.name)
            text = "request body too large" if code == 413 else exc.description or exc.name
            return error_response(400, HTTP_ERROR_TYPES.get(code, "invalid"), text)
        except Exception as exc:
            return internal(exc)

    def internal(exc: BaseException) -> Response:
        correlation = secrets.token_hex(6)
        log.error("rooms: internal error %s", correlation, exc_info=exc)
        return error_response(500, "internal", f"internal error (correlation id {correlation})")

    return bp
