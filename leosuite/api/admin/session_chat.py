"""Admin REST API: an administrator reads and writes a session's chat (the origin's
``/sessions/:id/chat``, which Drawpile's web admin uses), on
:mod:`leosuite.community.admin_chat`.

Every answer but an error is ``{"offset": n, "messages": [line, ...]}``: the lines from
``offset`` on (``offset`` is that of the first line returned). A line is
``{"i", "n", "m"}`` from a member (``i`` its id, ``0`` for SYSTEM) or ``{"m"}`` from the
administrators. What an administrator says reaches every member as a SYSTEM alert.

* ``POST /sessions/:id/chat`` with ``message`` (required: the members are told someone
  is reading) and ``timeout`` (milliseconds, 30000-900000, default 300000): connect;
  409 when connected already, or for a room (its messages are encrypted).
* ``GET /sessions/:id/chat?offset=n``: the lines from ``n`` (default 0).
* ``PUT /sessions/:id/chat`` with ``message`` and ``offset``: say it, then read.
* ``DELETE /sessions/:id/chat?message=...&offset=n``: say ``message`` if not empty,
  read, disconnect.

GET, PUT and DELETE on a chat that is not connected (or timed out) are 404. Numbers
may be sent as JSON numbers or as digit strings; ``offset`` is 0-2147483647. Connect,
every line and disconnect are audited (topic ``Status``, without the text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec
from msgspec import Meta
from quart import Response, request

from ...auth.service import Principal
from ...community.admin_chat import DEFAULT_TIMEOUT, MAX_TIMEOUT, MIN_TIMEOUT, AdminChat, AdminChats
from ...community.core import ChatCore
from ...community.models import Session
from ...community.views import find_session
from ...errors import InvalidInput, NotFound
from ..requests import decode_body, peer_ip

if TYPE_CHECKING:
    from .app import AdminRoutes

__all__ = ["ChatConnect", "ChatLine", "register"]

OFFSET_MAX = 2**31 - 1
_DIGITS = Annotated[str, Meta(pattern="^[0-9]{1,10}$")]
Offset = Annotated[int, Meta(ge=0, le=OFFSET_MAX)] | _DIGITS
#: The lowest, highest and default timeout, in milliseconds.
TIMEOUTS_MS = (round(MIN_TIMEOUT * 1000), round(MAX_TIMEOUT * 1000), round(DEFAULT_TIMEOUT * 1000))
Timeout = Annotated[int, Meta(ge=TIMEOUTS_MS[0], le=TIMEOUTS_MS[1])] | _DIGITS


class ChatConnect(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message: str
    timeout: Timeout = TIMEOUTS_MS[2]


class ChatLine(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message: str
    offset: Offset = 0


def number(value: int | str | None, field: str, low: int, high: int, default: int) -> int:
    """A number sent as a JSON number or a digit string, within ``low``-``high``."""
    if value is None or value == "":
        return default
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not low <= int(text) <= high:
        raise InvalidInput(f"{field}: a whole number {low}-{high}", field=field)
    return int(text)


def register(routes: AdminRoutes, chats: AdminChats) -> None:
    from .app import admin_json
    from .sessions import check_message

    ctx = routes.ctx
    max_body = ctx.settings.http.max_body_bytes

    def core() -> ChatCore:
        chat_core: ChatCore = ctx.chat.core
        return chat_core

    async def audit(principal: Principal, session: Session, text: str) -> None:
        await ctx.audit.record_done(
            "Status", text, actor=principal.actor(peer_ip()), session=session.id
        )

    def alive(session: Session) -> Session:
        """``session``, unless it was shut down while the body was read."""
        if core().sessions.get(session.id) is not session:
            raise NotFound(f"no session {session.id!r}", field="session")
        return session

    def answer(chat: AdminChat, offset: int) -> Response:
        first, lines = chat.read(offset)
        return admin_json({"offset": first, "messages": lines})

    def query_offset() -> int:
        return number(request.args.get("offset"), "offset", 0, OFFSET_MAX, 0)

    async def say(principal: Principal, session: Session, text: str) -> None:
        chats.say(session, text, "alert")
        await audit(principal, session, f"admin chat line to session {session.name}")

    async def chat_connect(principal: Principal, sid: str) -> Response:
        session = find_session(core(), sid)
        body = await decode_body(ChatConnect, max_body)
        text = check_message(core(), body.message.strip(), "message")
        timeout = number(body.timeout, "timeout", *TIMEOUTS_MS)
        chat = chats.connect(alive(session), timeout / 1000)
        await audit(principal, session, f"connected to the chat of session {session.name}")
        await say(principal, session, text)
        return answer(chat, 0)

    async def chat_read(principal: Principal, sid: str) -> Response:
        offset = query_offset()
        return answer(chats.connected(find_session(core(), sid)), offset)

    async def chat_say(principal: Principal, sid: str) -> Response:
        session = find_session(core(), sid)
        chats.connected(session)
        body = await decode_body(ChatLine, max_body)
        text = check_message(core(), body.message.strip(), "message")
        offset = number(body.offset, "offset", 0, OFFSET_MAX, 0)
        chat = chats.connected(alive(session))
        await say(principal, session, text)
        return answer(chat, offset)

    async def chat_disconnect(principal: Principal, sid: str) -> Response:
        session = find_session(core(), sid)
        offset = query_offset()
        text = request.args.get("message", "").strip()
        if text:
            check_message(core(), text, "message")
        chat = chats.connected(session)
        if text:
            await say(principal, session, text)
        first, lines = chat.read(offset)
        chats.disconnect(chat)
        await audit(principal, session, f"disconnected from the chat of session {session.name}")
        return admin_json({"offset": first, "messages": lines})

    routes.add("/sessions/<sid>/chat", chat_connect, ["POST"])
    routes.add("/sessions/<sid>/chat", chat_read, ["GET"])
    routes.add("/sessions/<sid>/chat", chat_say, ["PUT"])
    routes.add("/sessions/<sid>/chat", chat_disconnect, ["DELETE"])
