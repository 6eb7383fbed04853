"""One power action on many servers in one call: HTTP ``/api/server_power_bulk`` and
WebSocket ``server.power_bulk``, both ``{action, servers: [names]}`` or
``{action, all: true}``.

Each server is checked as the single call checks it (:meth:`ServerOps.power`'s rules):
one the caller may not see is reported "no server named ...", exactly like a name that
does not exist; ``all`` means every server the caller may do this action on (those it
sees without the ``power`` right, or may not start, are left out, not reported). A
name that is no server name refuses the whole request before anything is done, and a
repeated name is handled once. At most ``parallel`` actions run at once (at most
:data:`MAX_PARALLEL`); each outcome is handed to ``on_outcome`` as it is known. An
action that has begun is carried through even when the caller goes away (as a single
call's is), and everything done is audited in one store transaction, one entry per
server, when the call ends however it ends; so is each refusal on a server the caller
sees, and the names answered as unknown as one count. Once the caller's session ends
(its token or account revoked), the actions not begun are refused. A named server
another node runs is forwarded to that node as the single call is (at most
:data:`MAX_FORWARDED` at once; a caller that goes away stops the waiting for their
answers) and audited there; ``all`` means this node's servers.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

import msgspec
import trio

from ..errors import (
    AuthError,
    InvalidInput,
    LeosuiteError,
    NodeUnreachable,
    NotFound,
    PermissionDenied,
    is_internal,
)
from ..memory_trim import CollectorPause
from ..store.servers import NAME_PATTERN
from ..supervision.states import POWER_ACTIONS, PowerAction, State
from ..supervision.types import validate_server_name
from .fleet_view import foreign_record
from .server_ops import ServerOps

__all__ = [
    "DEFAULT_PARALLEL",
    "MAX_NAMES",
    "MAX_PARALLEL",
    "BulkName",
    "BulkRequest",
    "Outcome",
    "check_request",
    "run_power_bulk",
]

log = logging.getLogger("leosuite.api")

#: The most names one request may list (``all`` has no such bound).
MAX_NAMES = 10_000
#: Actions under way at once unless the request asks for fewer.
DEFAULT_PARALLEL = 1024
#: The most actions under way at once whatever the request asks.
MAX_PARALLEL = 1024
#: The most actions of one request forwarded to other nodes at once (each is a
#: connection to that node, which caps them per address).
MAX_FORWARDED = 8


#: One name of a request's ``servers``.
BulkName = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]


class BulkRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What both surfaces decode (the HTTP body adds ``token``)."""

    action: Literal["start", "stop", "restart", "kill", "force_kill"]
    servers: Annotated[list[BulkName], msgspec.Meta(max_length=MAX_NAMES)] | None = None
    all: bool = False
    parallel: Annotated[int, msgspec.Meta(ge=1)] | None = None


class Outcome(msgspec.Struct, frozen=True):
    """One server's answer: the state its action left it in, or the error that a single
    call on it would have raised."""

    server: str
    state: State | None = None
    error: LeosuiteError | None = None


def _targets(ops: ServerOps, request: BulkRequest) -> list[str] | None:
    """The names a request lists, checked and without repeats (None for ``all``)."""
    if request.all == (request.servers is not None):
        raise InvalidInput("give either servers (a list of names) or all: true", field="servers")
    if request.servers is None:
        return None
    if len(request.servers) > MAX_NAMES:
        raise InvalidInput(f"at most {MAX_NAMES} servers in one request", field="servers")
    for name in request.servers:
        try:
            validate_server_name(name)
        except InvalidInput:
            raise InvalidInput(
                f"{name[:80]!r} is not a server name; nothing was done", field="servers"
            ) from None
    return list(dict.fromkeys(request.servers))


def _check(ops: ServerOps, name: str, action: PowerAction) -> None:
    """The single power call's checks on ``name`` (404, then 403)."""
    record = ops.with_right(name, "power")
    if action in ("start", "restart"):
        ops.may_operate(record, action)
        ops.may_install(record, on_start=True)


def _operable(ops: ServerOps, action: PowerAction) -> list[str]:
    """``all``: every server the caller may do ``action`` on, by name."""
    names = []
    for name in ops.manager.names():
        try:
            _check(ops, name, action)
        except (NotFound, PermissionDenied):
            continue
        names.append(name)
    return names


def _parallel(request: BulkRequest) -> int:
    wanted = DEFAULT_PARALLEL if request.parallel is None else request.parallel
    if wanted < 1:
        raise InvalidInput("parallel must be at least 1", field="parallel")
    return min(wanted, MAX_PARALLEL)


def check_request(ops: ServerOps, request: BulkRequest) -> tuple[list[str] | None, int]:
    """Refuse a bad request before anything is done (InvalidInput naming the field)."""
    if request.action not in POWER_ACTIONS:  # the decoder's Literal already says so
        raise InvalidInput(f"unknown action {request.action!r}", field="action")
    return _targets(ops, request), _parallel(request)


async def run_power_bulk(
    ops: ServerOps,
    request: BulkRequest,
    on_outcome: Callable[[Outcome], Awaitable[None]],
    *,
    checked: tuple[list[str] | None, int] | None = None,
) -> list[Outcome]:
    """Do the action on every target, ``parallel`` at once, handing each outcome to
    ``on_outcome`` as it is known; the outcomes in the order of the targets. Pass
    ``checked`` (from :func:`check_request`) when the request was checked already."""
    names, parallel = checked or check_request(ops, request)
    action: PowerAction = request.action
    if names is None:
        names = _operable(ops, action)
    outcomes: dict[str, Outcome] = {}
    done: list[tuple[str, str]] = []  # (server, audit message) of every action that ran
    counted: dict[str, int] = {}  # refusals audited as one count each: unknown names, ...
    ended: list[str] = []  # why the caller's session ended while the call ran
    queue = iter(names)

    def token_gone(token_hash: str, reason: str) -> None:
        if token_hash and token_hash == ops.principal.token_hash:
            ended.append(reason)

    def account_gone(account_id: int, reason: str) -> None:
        if account_id == ops.principal.account_id:
            ended.append(reason)

    forwards = trio.CapacityLimiter(MAX_FORWARDED)

    workers = min(parallel, len(names))
    pause_limit = _PauseLimit(workers)

    async def worker() -> None:
        try:
            for name in queue:
                outcome = await _act(ops, name, action, done, counted, ended, forwards)
                outcomes[name] = outcome
                await on_outcome(outcome)
        finally:
            pause_limit.worker_done()

    auth = ops.ctx.auth
    auth.on_token_revoked.append(token_gone)
    auth.on_revoked.append(account_gone)
    try:
        # A fleet's actions allocate fast: the cycle collector waits (a few seconds at most).
        with CollectorPause() as pause:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pause_limit.run, pause)
                for _ in range(workers):
                    nursery.start_soon(worker)
    finally:
        auth.on_token_revoked.remove(token_gone)
        auth.on_revoked.remove(account_gone)
        for what, count in counted.items():
            done.append(("", f"{action.replace('_', ' ')} refused on {count} {what}; bulk"))
        with trio.CancelScope(shield=True):
            await ops.ctx.audit.record_done_batch("server", done, actor=ops.principal.actor(ops.ip))
    return [outcomes[name] for name in names]


class _PauseLimit:
    """Ends the collector's pause after its limit, or drops out once every worker is done."""

    def __init__(self, workers: int) -> None:
        self._left = workers
        self._scope = trio.CancelScope()

    async def run(self, pause: CollectorPause) -> None:
        with self._scope:
            if self._left:
                await pause.end_after()

    def worker_done(self) -> None:
        self._left -= 1
        if not self._left:
            self._scope.cancel()


async def _act(
    ops: ServerOps,
    name: str,
    action: PowerAction,
    done: list[tuple[str, str]],
    counted: dict[str, int],
    ended: list[str],
    forwards: trio.CapacityLimiter,
) -> Outcome:
    if ended:  # refused as the next single call with the ended session would be
        what = f"server(s): the session ended ({ended[0]})"
        counted[what] = counted.get(what, 0) + 1
        return Outcome(name, error=AuthError(f"your session ended ({ended[0]}); not done"))
    try:
        if ops.manager.find_record(name) is None and foreign_record(ops, name) is not None:
            # Another node runs it: forwarded as the single call is (not shielded: that
            # node carries on what it began when this one stops waiting), audited there.
            async with forwards:
                answer = await ops.power(name, action)
            try:
                return Outcome(name, state=State(answer.get("status")))
            except ValueError:
                message = "the server's node gave an answer that is not the API's"
                raise NodeUnreachable(message) from None
        _check(ops, name, action)
        # Begun, the action is carried through and audited even if the caller goes away.
        with trio.CancelScope(shield=True):
            state = await ops.manager.power(name, action, by=ops.principal.account_id)
    except LeosuiteError as exc:
        if is_internal(exc):
            correlation = secrets.token_hex(6)
            log.exception("bulk %s of %s: internal error %s", action, name, correlation)
            exc = type(exc)(f"internal error (correlation id {correlation})")
        # A refusal is audited too: one entry per server the caller sees, a count of the rest.
        if isinstance(exc, NotFound):
            counted["unknown server name(s)"] = counted.get("unknown server name(s)", 0) + 1
        else:
            verb = action.replace("_", " ")
            done.append((name, f"{verb} refused ({exc.error_type}): {exc.message[:200]}; bulk"))
        return Outcome(name, error=exc)
    done.append((name, f"{action.replace('_', ' ')} (now {state.value}; bulk)"))
    return Outcome(name, state=state)
