"""Who may do what, as a table: every combination of account flags x every action."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable

import pytest

from leosuite.auth.permissions import (
    exempt_from_request_rate,
    is_moderator,
    may_create_another_server,
    may_create_server_type,
    may_create_servers,
    may_manage_kept_files,
    may_operate_server_type,
    may_read_audit_log,
    may_see_audit_events,
    may_see_every_count,
    may_see_server,
    may_use_admin_api,
    may_use_server_files,
    permissions_of,
    runs_unattended,
)
from leosuite.auth.service import Principal
from leosuite.store.accounts import DRAWPILE_FLAGS, FLAGS
from leosuite.store.servers import ServerRecord

ME = 7


def server(owner_id: int | None) -> ServerRecord:
    return ServerRecord(
        id=1,
        name="s",
        type="command",
        settings={},
        owner_id=owner_id,
        next_read_index=0,
        created_at=0.0,
    )


ACTIONS: dict[str, Callable[[Principal], bool]] = {
    "see own server": lambda p: may_see_server(p, server(ME)),
    "see another's server": lambda p: may_see_server(p, server(ME + 1)),
    "see a server without owner": lambda p: may_see_server(p, server(None)),
    "use own server's files": lambda p: may_use_server_files(p, server(ME)),
    "use another's server's files": lambda p: may_use_server_files(p, server(ME + 1)),
    "use files of a server without owner": lambda p: may_use_server_files(p, server(None)),
    "create servers": may_create_servers,
    "create a plain type": lambda p: may_create_server_type(p, admin_only=False),
    "create an admin-only type": lambda p: may_create_server_type(p, admin_only=True),
    "moderate": is_moderator,
    "use the admin API": may_use_admin_api,
    "list and purge kept files": may_manage_kept_files,
    "see audit events": may_see_audit_events,
    "read the audit log": may_read_audit_log,
    "see every count": may_see_every_count,
    "skip the request rate": exempt_from_request_rate,
    "operate a plain type": lambda p: may_operate_server_type(p, admin_only=False),
    "operate an admin-only type": lambda p: may_operate_server_type(p, admin_only=True),
    "own a 3rd server of at most 3": lambda p: may_create_another_server(p, owned=3, limit=3),
    "own a 3rd server of any number": lambda p: may_create_another_server(p, owned=3, limit=0),
    "own a 2nd server of at most 3": lambda p: may_create_another_server(p, owned=2, limit=3),
}
EVERYTHING = frozenset(ACTIONS)
#: What every account may do, whatever its flags.
ANYONE = {
    "see own server",
    "use own server's files",
    "operate a plain type",
    "own a 3rd server of any number",
    "own a 2nd server of at most 3",
}
HOST = ANYONE | {"create servers", "create a plain type"}
MOD = ANYONE | {"moderate"}

#: Flags -> (what the account may do, the permissions its login answer lists).
TABLE: dict[frozenset[str], tuple[set[str] | frozenset[str], list[str]]] = {
    frozenset(): (ANYONE, ["server.own"]),
    frozenset({"HOST"}): (HOST, ["server.own", "server.create", "session.create"]),
    frozenset({"MOD"}): (MOD, ["server.own", "moderate"]),
    frozenset({"HOST", "MOD"}): (
        HOST | MOD,
        ["server.own", "server.create", "session.create", "moderate"],
    ),
}
ADMIN_PERMISSIONS = [
    "admin",
    "server.create",
    "server.create.command",
    "session.create",
    "moderate",
]
for others in list(TABLE):
    TABLE[others | {"ADMIN"}] = (EVERYTHING, ADMIN_PERMISSIONS)

#: The flags that grant something; Drawpile's flags are kept on accounts and grant nothing.
GRANTING = FLAGS - DRAWPILE_FLAGS
COMBINATIONS = [
    frozenset(flags)
    for n in range(len(GRANTING) + 1)
    for flags in itertools.combinations(sorted(GRANTING), n)
]


def test_the_table_covers_every_combination() -> None:
    assert {"ADMIN", "HOST", "MOD"} == GRANTING
    assert set(TABLE) == set(COMBINATIONS)
    assert len(COMBINATIONS) == 8


@pytest.mark.parametrize("flags", COMBINATIONS, ids=lambda f: "+".join(sorted(f)) or "none")
@pytest.mark.parametrize("kept", [*sorted(DRAWPILE_FLAGS), "all"])
def test_drawpile_flags_grant_nothing(flags: frozenset[str], kept: str) -> None:
    extra = DRAWPILE_FLAGS if kept == "all" else frozenset({kept})
    plain = Principal(account_id=ME, username="someone", flags=flags)
    more = Principal(account_id=ME, username="someone", flags=flags | extra)
    for action, may in ACTIONS.items():
        assert may(more) is may(plain), action
    assert permissions_of(flags | extra) == permissions_of(flags)


@pytest.mark.parametrize("flags", COMBINATIONS, ids=lambda f: "+".join(sorted(f)) or "none")
@pytest.mark.parametrize("action", list(ACTIONS))
def test_may(flags: frozenset[str], action: str) -> None:
    principal = Principal(account_id=ME, username="someone", flags=flags)
    allowed, _ = TABLE[flags]
    assert ACTIONS[action](principal) is (action in allowed)


@pytest.mark.parametrize("flags", COMBINATIONS, ids=lambda f: "+".join(sorted(f)) or "none")
def test_permissions_listed_at_login(flags: frozenset[str]) -> None:
    assert permissions_of(flags) == TABLE[flags][1]


@pytest.mark.parametrize(
    ("answering", "runs"),
    [
        ([frozenset({"ADMIN"})], True),
        ([frozenset({"HOST"}), frozenset({"ADMIN", "MOD"})], True),
        ([frozenset({"HOST"})], False),
        ([None, frozenset()], False),
        ([None], False),
        ([], False),
    ],
)
def test_admin_only_servers_run_while_an_admin_answers(
    answering: list[frozenset[str] | None], runs: bool
) -> None:
    assert runs_unattended(admin_only=True, answering=answering) is runs
    assert runs_unattended(admin_only=False, answering=answering) is True


def test_no_session_is_rate_limited() -> None:
    assert exempt_from_request_rate(None) is False


def test_the_rules_do_no_io() -> None:
    """Importing them loads neither trio nor the store."""
    code = (
        "import sys, leosuite.auth.permissions; "
        "print(sorted(m for m in ('trio', 'sqlite3', 'leosuite.store') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
