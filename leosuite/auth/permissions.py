"""Who may do what: pure functions over a :class:`~leosuite.auth.service.Principal` and
the resource asked about. Every API surface asks here; none tests flags itself.

The rules, by account flag:

* ``ADMIN`` does everything: every server, every server type, the admin API, the
  audit log (``get_logs`` and its live events), counts over the whole daemon,
  moderation; its WebSocket requests are not rate limited and it has no server quota.
* ``HOST`` may create servers (not of an admin-only type such as ``command``), up to
  ``servers.max_per_account`` of them.
* ``MOD`` moderates the community: closes, messages and changes sessions, sees
  members' addresses, is a moderator in every chat channel.
* Every account sees and operates the servers it created and those shared with it (see
  Sharing below); for anyone else such a server does not exist (the same 404 as an
  unknown name). A server of an admin-only
  type is started, restarted, reconfigured and typed into by an ADMIN only, every time,
  and it runs only while an ADMIN answers for it (its owner, or whoever last started it).
* The files in a server's directory are listed, read and changed by an ADMIN or the
  account that created the server, or an account granted ``files`` on it; changed, on a
  server of an admin-only type, by an ADMIN only (the rule of its settings and commands).

Sharing: the owner of a server (or an ADMIN) grants another account some of
:data:`RIGHTS` on it; an ADMIN and the owner have them all (:func:`server_rights`).

* ``console``: read its console (``server_log``, ``console.subscribe``) and its live
  figures (``stats`` pushes, the stats history, the cpu, memory and threads of its
  status).
* ``commands``: type into it (``server.cmd``); alone it shows nothing of the console,
  so a grantee types blind unless it also has ``console``. Typing its stop command
  stops it, so that line needs ``power`` as well.
* ``power``: start, stop, restart, kill, force kill and install it.
* ``files``: list, read and change the files in its directory.
* ``settings``: read and change its settings; changing those that start it with nobody
  asking (``autostart``, ``restart``, ``max_restarts``) needs ``power`` as well.

A grantee with any right sees the server: it is listed, its status (state, allowed
actions, the caller's ``rights``) is answered and its state events are pushed, since
every right needs the state to be used safely. An action outside its rights is
refused (403); for an account with no right the server does not exist (404). Only the
owner or an ADMIN lists and changes the grants and destroys the server
(:func:`may_manage_server`); a grantee never re-shares. The admin-only type rule holds
on top of every grant: a grantee that is not an ADMIN never starts, restarts,
reconfigures, types into or changes the files of such a server, whatever it was granted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..store.servers import ServerRecord
    from .service import Principal

__all__ = [
    "RIGHTS",
    "exempt_from_request_rate",
    "is_moderator",
    "may_create_another_server",
    "may_list_nodes",
    "may_create_server_type",
    "may_create_servers",
    "may_manage_kept_files",
    "may_operate_server_type",
    "may_read_audit_log",
    "may_see_account_locks",
    "may_see_audit_events",
    "may_see_every_count",
    "may_manage_server",
    "may_see_server",
    "may_see_server_owners",
    "may_use_server",
    "may_set_server_user",
    "may_use_server_files",
    "may_use_admin_api",
    "permissions_of",
    "runs_unattended",
    "server_rights",
]

# The account flags (``store.accounts.FLAGS``), named here so this module imports no I/O.
ADMIN = "ADMIN"
HOST = "HOST"
MOD = "MOD"


#: The rights on one server that its owner may grant another account, in display order.
RIGHTS = ("console", "commands", "power", "files", "settings")

_EVERY_RIGHT = frozenset(RIGHTS)
_NO_RIGHT: frozenset[str] = frozenset()


def may_manage_server(principal: Principal, record: ServerRecord) -> bool:
    """Destroy the server and list, grant, change and revoke rights on it: an ADMIN, or
    the account that created it."""
    return ADMIN in principal.flags or (
        record.owner_id is not None and record.owner_id == principal.account_id
    )


def server_rights(
    principal: Principal, record: ServerRecord, granted: frozenset[str] = _NO_RIGHT
) -> frozenset[str]:
    """The rights the caller has on the server: every one for an ADMIN or its creator,
    else those ``granted`` to its account (names outside :data:`RIGHTS` count for
    nothing)."""
    if may_manage_server(principal, record):
        return _EVERY_RIGHT
    return granted & _EVERY_RIGHT


def may_see_server(
    principal: Principal, record: ServerRecord, granted: frozenset[str] = _NO_RIGHT
) -> bool:
    """See the server (list it, read its status and state events): an ADMIN, the account
    that created it, or an account granted any right on it."""
    return bool(server_rights(principal, record, granted))


def may_use_server(
    principal: Principal, record: ServerRecord, right: str, granted: frozenset[str] = _NO_RIGHT
) -> bool:
    """Do what ``right`` (one of :data:`RIGHTS`) covers on the server."""
    return right in server_rights(principal, record, granted)


def may_use_server_files(
    principal: Principal, record: ServerRecord, granted: frozenset[str] = _NO_RIGHT
) -> bool:
    """List, read and change the files in the server's directory: an ADMIN, the account
    that created it, or an account granted ``files`` on it."""
    return may_use_server(principal, record, "files", granted)


def may_change_files_run_as_daemon(principal: Principal) -> bool:
    """Change the files of a server that runs as the daemon's own user: an ADMIN only,
    since what the server runs (a jar, a module on its path) runs with the daemon's
    rights, its store and every other server included. The same holds for an install
    with a user-controlled step (a variable's placeholder in a download's URL, checksum
    or ``to``, a write's ``to`` or content, a run's argv, a ``minecraft_jar``'s ``to``):
    on such a server only an ADMIN has it run, on demand or before a start."""
    return ADMIN in principal.flags


def may_create_servers(principal: Principal) -> bool:
    """Create servers at all (of some type): HOST or ADMIN."""
    return ADMIN in principal.flags or HOST in principal.flags


def may_set_server_user(principal: Principal) -> bool:
    """Choose the system user a server runs as (its ``user`` setting): ADMIN only."""
    return ADMIN in principal.flags


def may_pass_limit_ceilings(principal: Principal) -> bool:
    """Give a server resource limits above the ``limits.max_*`` ceilings: ADMIN only."""
    return ADMIN in principal.flags


def may_create_server_type(principal: Principal, *, admin_only: bool) -> bool:
    """Create a server of a type; an admin-only type needs ADMIN."""
    if ADMIN in principal.flags:
        return True
    return HOST in principal.flags and not admin_only


def may_create_another_server(principal: Principal, *, owned: int, limit: int) -> bool:
    """Create one more server while owning ``owned``: ADMIN always; anyone else while
    ``owned`` is below ``limit`` (``servers.max_per_account``; 0 means no limit)."""
    return ADMIN in principal.flags or limit == 0 or owned < limit


def may_operate_server_type(principal: Principal, *, admin_only: bool) -> bool:
    """Start, restart, change the settings of or type into a server of a type: an
    admin-only type needs ADMIN on every such action, not only at create."""
    return ADMIN in principal.flags or not admin_only


def runs_unattended(*, admin_only: bool, answering: Iterable[frozenset[str] | None]) -> bool:
    """Keep running (or autostart) with nobody asking: a server of an admin-only type only
    while one of the accounts that answer for it (its owner, whoever last started it;
    ``None`` for none or a deleted one) is an ADMIN."""
    return not admin_only or any(flags is not None and ADMIN in flags for flags in answering)


def is_moderator(principal: Principal) -> bool:
    """Moderate the community (sessions, chat channels, members' addresses): MOD or ADMIN."""
    return ADMIN in principal.flags or MOD in principal.flags


def may_manage_kept_files(principal: Principal) -> bool:
    """List and purge what destroyed servers left behind (whoever owned them): ADMIN."""
    return ADMIN in principal.flags


def may_list_nodes(principal: Principal) -> bool:
    """List the nodes sharing the store, their addresses and heartbeats: ADMIN."""
    return ADMIN in principal.flags


def may_see_server_owners(principal: Principal) -> bool:
    """See which account owns each server in the server list: ADMIN (who sees them all)."""
    return ADMIN in principal.flags


def may_see_account_locks(principal: Principal) -> bool:
    """See whether the accounts a server is shared with are locked: ADMIN (who manages
    accounts); an owner sees its grants without them."""
    return ADMIN in principal.flags


def may_use_admin_api(principal: Principal) -> bool:
    """Any request of the admin API: ADMIN."""
    return ADMIN in principal.flags


def may_see_audit_events(principal: Principal) -> bool:
    """Receive every audit log entry as a live event: ADMIN."""
    return ADMIN in principal.flags


def may_read_audit_log(principal: Principal) -> bool:
    """Read the audit log (WebSocket ``get_logs``): ADMIN, as for the admin API's ``/log/``."""
    return ADMIN in principal.flags


def may_see_every_count(principal: Principal) -> bool:
    """Counts over every server, session and account (``system_overview``): ADMIN;
    anyone else is counted only its own."""
    return ADMIN in principal.flags


def exempt_from_request_rate(principal: Principal | None) -> bool:
    """WebSocket requests beyond the per-connection rate: ADMIN sessions (bulk tools)."""
    return principal is not None and ADMIN in principal.flags


def permissions_of(flags: frozenset[str]) -> list[str]:
    """The permission names a login answer lists for an account with ``flags``."""
    if ADMIN in flags:
        return ["admin", "server.create", "server.create.command", "session.create", "moderate"]
    granted = ["server.own"]
    if HOST in flags:
        granted += ["server.create", "session.create"]
    if MOD in flags:
        granted.append("moderate")
    return granted
