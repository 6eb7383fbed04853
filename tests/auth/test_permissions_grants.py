"""Rights on one server granted to another account, as the pure permission functions see
them: every account flag x every grant x every right."""

from __future__ import annotations

import itertools

import pytest

from leosuite.auth.permissions import (
    RIGHTS,
    may_manage_server,
    may_see_account_locks,
    may_see_server,
    may_use_server,
    may_use_server_files,
    server_rights,
)
from leosuite.auth.service import Principal
from leosuite.store.servers import ServerRecord

ME, OWNER = 7, 8
FLAGS = [frozenset(f) for n in range(3) for f in itertools.combinations(["HOST", "MOD"], n)]
GRANTS = [frozenset(), *(frozenset({r}) for r in RIGHTS), frozenset(RIGHTS)]


def record(owner_id: int | None) -> ServerRecord:
    return ServerRecord(
        id=1, name="s", type="demo-game", settings={}, owner_id=owner_id,
        next_read_index=0, created_at=0.0,
    )  # fmt: skip


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "+".join(sorted(f)) or "none")
@pytest.mark.parametrize("granted", GRANTS, ids=lambda g: "+".join(sorted(g)) or "nothing")
def test_a_grantee_has_exactly_its_grant(flags: frozenset[str], granted: frozenset[str]) -> None:
    me = Principal(account_id=ME, username="me", flags=flags)
    server = record(OWNER)
    assert server_rights(me, server, granted) == granted
    assert may_see_server(me, server, granted) is bool(granted)
    for right in RIGHTS:
        assert may_use_server(me, server, right, granted) is (right in granted)
    assert may_use_server_files(me, server, granted) is ("files" in granted)
    assert may_manage_server(me, server) is False


@pytest.mark.parametrize("granted", GRANTS, ids=lambda g: "+".join(sorted(g)) or "nothing")
def test_the_owner_and_an_admin_have_every_right(granted: frozenset[str]) -> None:
    owner = Principal(account_id=OWNER, username="owner", flags=frozenset())
    admin = Principal(account_id=ME, username="admin", flags=frozenset({"ADMIN"}))
    for who in (owner, admin):
        assert server_rights(who, record(OWNER), granted) == frozenset(RIGHTS)
        assert may_manage_server(who, record(OWNER))
    # A server whose owner was deleted: an ADMIN manages it, nobody else.
    nobody = Principal(account_id=OWNER, username="owner", flags=frozenset())
    assert not may_manage_server(nobody, record(None))
    assert may_manage_server(admin, record(None))


def test_unknown_right_names_grant_nothing() -> None:
    me = Principal(account_id=ME, username="me", flags=frozenset({"HOST"}))
    odd = frozenset({"admin", "destroy", "share", ""})
    assert server_rights(me, record(OWNER), odd) == frozenset()
    assert not may_see_server(me, record(OWNER), odd)


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: "+".join(sorted(f)) or "none")
def test_only_an_admin_sees_whether_grantees_are_locked(flags: frozenset[str]) -> None:
    assert not may_see_account_locks(Principal(account_id=OWNER, username="o", flags=flags))
    admin = Principal(account_id=ME, username="admin", flags=flags | {"ADMIN"})
    assert may_see_account_locks(admin)
