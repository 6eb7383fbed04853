"""An administrator's seat in a session's chat (the admin API's ``/sessions/:id/chat``).

While an administrator is connected to a session's chat, every line said there to the
whole session is recorded for it (the session's own history may keep nothing, when
``preserveChat`` is off): a member's line as ``{"i": member id, "n": name, "m": text}``,
a SYSTEM line as ``{"i": 0, "n": "SYSTEM", "m": text}``, and what the administrators say
(through the chat or as a session message or alert) as ``{"m": text}``. Direct messages
between members are never recorded. At most :data:`MAX_LINES` lines are kept; older ones
are dropped and ``offset`` counts them, so a reader asks for "everything from offset N".

A connection ends when an administrator disconnects, when the session ends, or after
``timeout`` seconds without a read or a line from the administrators (30 s to 15 min,
5 min unless asked). Rooms (seed 004) are end-to-end encrypted: their messages cannot be
read, so they have no admin chat. Times come from an injected clock; no I/O here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import Conflict, NotFound
from .core import ChatCore
from .models import ChatEvent, Level, Session

__all__ = ["DEFAULT_TIMEOUT", "MAX_LINES", "MAX_TIMEOUT", "MIN_TIMEOUT", "AdminChat", "AdminChats"]

MAX_LINES = 1024
MIN_TIMEOUT = 30.0
MAX_TIMEOUT = 900.0
DEFAULT_TIMEOUT = 300.0


class AdminChat:
    def __init__(self, session: Session, timeout: float, now: float) -> None:
        self.session = session
        self.timeout = timeout
        self.expires = now + timeout
        self.lines: deque[dict[str, Any]] = deque()
        self.dropped = 0  # the offset of the oldest line kept
        self.speaking = False  # a SYSTEM line stored now is the administrators' own

    def touch(self, now: float) -> None:
        self.expires = now + self.timeout

    def _add(self, line: dict[str, Any]) -> None:
        if len(self.lines) >= MAX_LINES:
            self.lines.popleft()
            self.dropped += 1
        self.lines.append(line)

    def record(self, event: ChatEvent) -> None:
        """The session's watcher: keep a line said to the whole session."""
        if event.to is not None:
            return
        if event.kind == "system":
            self._add(
                {"m": event.text} if self.speaking else {"i": 0, "n": "SYSTEM", "m": event.text}
            )
        elif event.kind == "message" and event.payload is None:
            sender = self.session.member_named(event.user)
            self._add({"i": sender.id if sender else 0, "n": event.user, "m": event.text})

    def read(self, offset: int) -> tuple[int, list[dict[str, Any]]]:
        """``(offset of the first line returned, the lines from there)``: an offset
        older than the kept lines reads from the oldest, one past the end reads none."""
        start = min(max(0, offset - self.dropped), len(self.lines))
        return self.dropped + start, list(self.lines)[start:]

    def describe(self, now: float) -> dict[str, Any]:
        """The session detail's ``chat``: times in milliseconds, as the origin's."""
        return {
            "offset": self.dropped,
            "count": len(self.lines),
            "timeout": round(self.timeout * 1000),
            "remaining": max(0, round((self.expires - now) * 1000)),
        }


class AdminChats:
    """The connected admin chats, by session id."""

    def __init__(self, core: ChatCore, clock: Callable[[], float]) -> None:
        self.core = core
        self._clock = clock
        self._chats: dict[str, AdminChat] = {}

    def get(self, session: Session) -> AdminChat | None:
        """The live chat of ``session``; one that timed out is ended here."""
        chat = self._chats.get(session.id)
        if chat is not None and (chat.expires <= self._clock() or chat.session is not session):
            self._end(chat)
            chat = None
        return chat

    def connected(self, session: Session) -> AdminChat:
        """The live chat of ``session`` (its timer restarted), or NotFound."""
        chat = self.get(session)
        if chat is None:
            raise NotFound(f"the chat of {session.name} is not connected", field="chat")
        chat.touch(self._clock())
        return chat

    def connect(self, session: Session, timeout: float) -> AdminChat:
        if session.room is not None:
            raise Conflict(
                f"{session.name} is an end-to-end encrypted room: its chat cannot be read"
            )
        chat = self.get(session)
        if chat is not None:
            chat.touch(self._clock())
            raise Conflict(f"the chat of {session.name} is connected already", field="chat")
        chat = AdminChat(session, timeout, self._clock())
        session.watchers.append(chat.record)
        self._chats[session.id] = chat
        return chat

    def disconnect(self, chat: AdminChat) -> None:
        self._end(chat)

    def _end(self, chat: AdminChat) -> None:
        if self._chats.get(chat.session.id) is chat:
            del self._chats[chat.session.id]
        if chat.record in chat.session.watchers:
            chat.session.watchers.remove(chat.record)

    def describe(self, session: Session) -> dict[str, Any] | None:
        chat = self.get(session)
        return None if chat is None else chat.describe(self._clock())

    @contextmanager
    def speaking(self, session: Session) -> Iterator[None]:
        """SYSTEM lines stored in ``session`` meanwhile are the administrators' own."""
        chat = self.get(session)
        if chat is not None:
            chat.speaking = True
        try:
            yield
        finally:
            if chat is not None:
                chat.speaking = False

    def say(self, session: Session, text: str, level: Level) -> None:
        """A SYSTEM line from the administrators to every member of ``session``."""
        with self.speaking(session):
            self.core.system(session, text, level)

    def housekeeping(self) -> None:
        """End the chats that timed out or whose session ended."""
        for chat in list(self._chats.values()):
            if self.core.sessions.get(chat.session.id) is not chat.session:
                self._end(chat)
            else:
                self.get(chat.session)
