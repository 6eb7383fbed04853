"""Server-wide IP bans, enforced: the daemon's :class:`BanList`.

The rules (validation, the matcher) are :mod:`leosuite.auth.ban_rules`; this is the
service around them: loaded from the store at start, asked by every listener (HTTP
API and rooms, admin API, WebSocket handshake), and adding a ban closes the open
WebSocket API connections and chat members it covers at once and ends the access
tokens last used from an address it covers (wherever they are used next). Expiry is read from
the injected clock at each check, so an expired ban stops applying without a
restart; housekeeping calls :meth:`BanList.purge_expired` to delete it. Each change
this daemon stores calls ``on_changed`` (other nodes of the store are told), and
:meth:`BanList.reload` takes the changes another node stored. Adds,
removals and purges are audited; refused connections too, at most once a minute per
address (and :data:`REFUSAL_LOG_PER_MINUTE` entries a minute in all), so a banned
flooder cannot flood the log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Protocol

import trio

from ..audit import Actor, AuditLog
from ..clock import iso_utc
from ..errors import Conflict, NotFound, PermissionDenied
from ..store import accounts
from ..store import bans as table
from ..store.bans import BanRecord
from ..store.db import Database
from .ban_rules import (
    BANNED_MESSAGE,
    BanMatcher,
    covers,
    describe,
    parse_comment,
    parse_expires,
    parse_target,
)
from .limits import Limiter

if TYPE_CHECKING:
    from ..community.core import ChatCore
    from .service import AuthService

__all__ = ["MAX_BANS", "REFUSAL_LOG_PER_MINUTE", "BanList"]

#: At most this many bans exist at once (adding more is a Conflict).
MAX_BANS = 10_000
#: Refused connections written to the audit log per minute, over all addresses.
REFUSAL_LOG_PER_MINUTE = 30
_REFUSAL_WINDOW = 60.0
#: At most this long is spent ending tokens and auditing once a ban change is stored.
FINISH_SECONDS = 10.0


class _Connection(Protocol):
    @property
    def ip(self) -> str: ...

    def close_policy(self, reason: str) -> None: ...


class _Hub(Protocol):
    @property
    def connections(self) -> Collection[_Connection]: ...


def _still_logged_in(logged_in: Callable[[], bool] | None) -> None:
    """PermissionDenied if the caller's session ended while its call waited."""
    if logged_in is not None and not logged_in():
        raise PermissionDenied("your session has ended")


def _acting_admin(conn: sqlite3.Connection, actor: Actor | None, token_hash: str) -> None:
    """Inside the change's transaction: the acting account is still an unlocked ADMIN."""
    if actor is not None and actor.id is not None:
        accounts.require_admin(conn, actor.id, token_hash)


class BanList:
    """The daemon's bans: the store, the in-memory matcher, enforcement, audit."""

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        now: Callable[[], float],
        *,
        ws_hub: _Hub | None = None,
        chat: ChatCore | None = None,
        auth: AuthService | None = None,
    ) -> None:
        self._db = db
        self._audit = audit
        self._now = now
        self._hub = ws_hub
        self._chat = chat
        self._auth = auth
        self._matcher = BanMatcher()
        self._lock = trio.Lock()
        #: Connections and requests refused for a ban since the daemon started.
        self.refusals = 0
        # refused connections audited: the first a minute per address, and in all
        self._refusals = Limiter(
            trio.current_time, window=_REFUSAL_WINDOW, limit=1, max_keys=MAX_BANS
        )
        self._refusals_logged = Limiter(
            trio.current_time, window=_REFUSAL_WINDOW, limit=REFUSAL_LOG_PER_MINUTE, max_keys=1
        )
        #: Called after this daemon stored a change of the bans.
        self.on_changed: list[Callable[[], None]] = []

    async def load(self) -> int:
        """Read every ban from the store (before the listeners start)."""
        for ban in await self._db.call(table.list_all):
            self._matcher.add(ban)
        return len(self._matcher)

    async def reload(self) -> int:
        """Read the bans again (another node changed them): a ban new to this daemon
        closes the WebSocket connections and chat members it covers, as :meth:`add`
        does; a removed one stops applying. How many bans are new."""
        async with self._lock:
            stored = await self._db.call(table.list_all)
            known = {ban.id for ban in self._matcher.bans()}
            matcher = BanMatcher()
            for ban in stored:
                matcher.add(ban)
            self._matcher = matcher
            new = [ban for ban in stored if ban.id not in known]
            now = self._now()
            for ban in new:
                if not ban.expired(now):
                    self._enforce(ban)
        return len(new)

    def _changed(self) -> None:
        for callback in list(self.on_changed):
            callback()

    def bans(self) -> list[BanRecord]:
        """Every ban in memory (expired ones too, until purged), by id."""
        return self._matcher.bans()

    def is_banned(self, ip: str, now: float | None = None) -> BanRecord | None:
        """The ban in force now covering ``ip`` (a peer address), or None."""
        if not self._matcher:
            return None
        return self._matcher.match(ip, self._now() if now is None else now)

    async def add(
        self,
        ip: object,
        subnet: object = None,
        expires: object = None,
        comment: object = "",
        *,
        actor: Actor | None = None,
        token_hash: str = "",
        logged_in: Callable[[], bool] | None = None,
        spare: _Connection | None = None,
    ) -> BanRecord:
        """Validate, store and enforce a ban: the open WebSocket API connections and
        chat members it covers are closed at once, the tokens last used from it end.
        InvalidInput names the field. An acting account (``actor.id``) must still be an
        unlocked ADMIN when the ban is stored, its session (``token_hash``) still stand
        and ``logged_in()`` (its connection) still be true: PermissionDenied otherwise.
        ``spare`` is a covered connection left open (the caller closes it after its
        answer)."""
        address, prefix = parse_target(ip, subnet)
        now = self._now()
        until = parse_expires(expires, now)
        comment = parse_comment(comment)
        async with self._lock:
            if len(self._matcher) >= MAX_BANS:
                raise Conflict(f"there are {MAX_BANS} bans already; remove some first")

            def insert(conn: sqlite3.Connection) -> BanRecord:
                _acting_admin(conn, actor, token_hash)
                return table.create(
                    conn, ip=address, subnet=prefix, expires=until, comment=comment, added=now
                )

            _still_logged_in(logged_in)
            # Once stored, a ban is in force, enforced and audited whatever cancels the caller.
            with trio.CancelScope(shield=True):
                ban = await self._db.call(insert)
                self._matcher.add(ban)
                self._changed()
                members, connections = self._enforce(ban, spare)
                tokens = 0
                with trio.move_on_after(FINISH_SECONDS):
                    if self._auth is not None:
                        tokens = await self._auth.end_tokens_used_from(
                            lambda address: covers(ban, address), BANNED_MESSAGE
                        )
                until_text = "never expires" if until is None else f"expires {iso_utc(until)}"
                with trio.move_on_after(FINISH_SECONDS):
                    await self._audit.record_done(
                        "Ban",
                        f"ban #{ban.id} of {describe(ban)} added ({until_text}): "
                        f"{comment or 'no comment'}; {connections} WebSocket connection(s) "
                        f"closed, {members} chat member(s) disconnected, {tokens} access "
                        "token(s) ended",
                        actor=actor,
                    )
        return ban

    def _enforce(self, ban: BanRecord, spare: _Connection | None = None) -> tuple[int, int]:
        members = connections = 0
        if self._chat is not None:
            for member in list(self._chat.members.values()):
                if member.kind == "chat" and covers(ban, member.ip):
                    self._chat.disconnect(member, BANNED_MESSAGE)
                    members += 1
        if self._hub is not None:
            for conn in list(self._hub.connections):
                if covers(ban, conn.ip):
                    if conn is not spare:
                        conn.close_policy(BANNED_MESSAGE)
                    connections += 1
        return members, connections

    async def remove(
        self,
        ban_id: int,
        *,
        actor: Actor | None = None,
        token_hash: str = "",
        logged_in: Callable[[], bool] | None = None,
    ) -> BanRecord:
        """Delete a ban (NotFound if there is none); it stops applying at once. The
        acting account is checked as by :meth:`add`."""

        def delete(conn: sqlite3.Connection) -> BanRecord:
            _acting_admin(conn, actor, token_hash)
            ban = table.delete(conn, ban_id)
            if ban is None:
                raise NotFound(f"no ban with id {ban_id}", field="id")
            return ban

        async with self._lock:
            _still_logged_in(logged_in)
            # Once deleted, a ban stops applying and is audited whatever cancels the caller.
            with trio.CancelScope(shield=True):
                ban = await self._db.call(delete)
                self._matcher.remove(ban.id)
                self._changed()
                with trio.move_on_after(FINISH_SECONDS):
                    await self._audit.record_done(
                        "Unban", f"ban #{ban.id} of {describe(ban)} removed", actor=actor
                    )
        return ban

    async def purge_expired(self) -> int:
        """Delete the bans that have expired (housekeeping); how many."""
        now = self._now()
        async with self._lock:
            gone = await self._db.call(lambda conn: table.purge_expired(conn, now))
            for ban in gone:
                self._matcher.remove(ban.id)
            if gone:
                self._changed()
        for ban in gone:
            await self._audit.record("Unban", f"ban #{ban.id} of {describe(ban)} expired")
        return len(gone)

    async def refused(self, ip: str, ban: BanRecord, where: str) -> None:
        """Audit a refused connection, rate-limited (see the module docstring)."""
        self.refusals += 1
        room = self._refusals_logged.count("") < REFUSAL_LOG_PER_MINUTE
        skipped = self._refusals.first(ip, may_open=room)
        if skipped is None:
            return
        self._refusals_logged.note("")
        more = f" ({skipped} more refusal(s) since the last entry)" if skipped else ""
        await self._audit.record(
            "Ban",
            f"{where}: connection refused, address banned by ban #{ban.id} ({describe(ban)}){more}",
            actor=Actor(ip=ip),
            level="warning",
        )
