"""Invite codes, trusted members and the session flags ``auth_only`` and
``idle_override`` in the chat core (no I/O)."""

from __future__ import annotations

import pytest

from leosuite.community.core import ChatCore
from leosuite.community.invites import MAX_INVITES, create_invite, find_invite
from leosuite.community.models import AuditRecord, ChatLimits, Member, Session, identity
from leosuite.errors import Conflict, PermissionDenied


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make() -> tuple[ChatCore, list[AuditRecord], Clock]:
    records: list[AuditRecord] = []
    clock = Clock()
    return ChatCore(ChatLimits(), clock, on_audit=records.append), records, clock


def locked_session(core: ChatCore) -> Session:
    """A session its founder made closed, guests-only-not, and password-protected."""
    founder = Member("founder", account_id=1)
    core.connect(founder)
    session, _ = core.join(founder, "locked")
    session.closed = True
    session.auth_only = True
    session.password_hash = "a hash nobody matches"
    return session


def guest(core: ChatCore, name: str) -> Member:
    member = Member(name)
    core.connect(member)
    return member


def test_a_code_opens_closed_auth_only_and_password() -> None:
    core, records, clock = make()
    session = locked_session(core)
    outsider = guest(core, "outsider")
    for refused in (None, "wrong"):
        with pytest.raises(PermissionDenied, match="closed"):
            core.join(outsider, "locked", password_ok=False, code=refused)
    invite = create_invite(session, "admin", clock(), 2, trust=False, op=False)
    assert find_invite(session, invite.secret) is invite
    assert find_invite(session, "") is None
    assert find_invite(session, None) is None
    joined, created = core.join(outsider, "locked", password_ok=False, code=invite.secret)
    assert (joined, created) == (session, False)
    assert list(invite.uses) == [identity(outsider)]
    assert invite.uses[identity(outsider)].name == "outsider"
    assert [r.topic for r in records].count("Invite") == 1
    assert not session.is_op(outsider)
    assert identity(outsider) not in session.trusted


def test_uses_are_counted_per_identity_and_run_out() -> None:
    core, _records, clock = make()
    session = locked_session(core)
    invite = create_invite(session, "admin", clock(), 1, trust=False, op=False)
    account = Member("acct", account_id=7)
    core.connect(account)
    core.join(account, "locked", password_ok=False, code=invite.secret)
    core.leave(account, session)
    core.join(account, "locked", password_ok=False, code=invite.secret)  # the same account
    assert len(invite.uses) == 1
    second = guest(core, "second")
    with pytest.raises(PermissionDenied, match="used up"):
        core.join(second, "locked", password_ok=False, code=invite.secret)
    assert second.id not in session.members
    # Without the code, the session's own rules apply.
    session.closed = session.auth_only = False
    core.join(second, "locked", password_ok=True)
    assert second.id in session.members


def test_roles_and_trust() -> None:
    core, _records, clock = make()
    session = locked_session(core)
    op_code = create_invite(session, "admin", clock(), 5, trust=False, op=True)
    trust_code = create_invite(session, "admin", clock(), 5, trust=True, op=False)
    opped, trusted = Member("opped", account_id=2), Member("trusted", account_id=3)
    core.connect(opped)
    core.connect(trusted)
    core.join(opped, "locked", password_ok=False, code=op_code.secret)
    core.join(trusted, "locked", password_ok=False, code=trust_code.secret)
    assert session.is_op(opped)
    assert not session.is_op(trusted)
    assert identity(trusted) in session.trusted
    # Trusted: back in without a code, closed and password-protected as the session is.
    core.leave(trusted, session)
    del session.invites[trust_code.secret]
    core.join(trusted, "locked", password_ok=False)
    assert trusted.id in session.members


def test_a_guests_trust_ends_with_its_connection() -> None:
    core, _records, _clock = make()
    session = locked_session(core)
    member = guest(core, "visitor")
    session.trusted.add(identity(member))
    core.join(member, "locked", password_ok=False)
    core.leave(member, session)
    assert identity(member) not in session.trusted
    with pytest.raises(PermissionDenied):
        core.join(member, "locked", password_ok=False)


def test_auth_only_refuses_guests_not_accounts_or_moderators() -> None:
    core, _records, _clock = make()
    session = locked_session(core)
    session.closed = False
    session.password_hash = None
    with pytest.raises(PermissionDenied, match="logged-in"):
        core.join(guest(core, "anon"), "locked")
    account = Member("someone", account_id=9)
    moderator = Member("moddy", mod=True)
    for member in (account, moderator):
        core.connect(member)
        core.join(member, "locked")
    assert {account.id, moderator.id} <= set(session.members)


def test_at_most_fifty_codes() -> None:
    core, _records, clock = make()
    session = locked_session(core)
    secrets = {create_invite(session, "a", clock(), 1, trust=False, op=False).secret}
    for _ in range(MAX_INVITES - 1):
        secrets.add(create_invite(session, "a", clock(), 1, trust=False, op=False).secret)
    assert len(secrets) == MAX_INVITES
    assert all(len(secret) == 16 for secret in secrets)
    with pytest.raises(Conflict, match="at most 50"):
        create_invite(session, "a", clock(), 1, trust=False, op=False)


def test_idle_override_is_never_idle() -> None:
    core, _records, clock = make()
    core.update_limits(ChatLimits(idle_time_limit=60))
    member = guest(core, "idler")
    kept, _ = core.join(member, "kept")
    dropped, _ = core.join(member, "dropped")
    kept.idle_override = True
    clock.t += 120
    assert core.idle_sessions() == [dropped]


def test_watchers_see_every_stored_line_even_unkept() -> None:
    core, _records, _clock = make()
    member = guest(core, "talker")
    session, _ = core.join(member, "quiet")
    session.preserve_chat = False
    seen: list[str] = []
    session.watchers.append(lambda event: seen.append(f"{event.kind}:{event.text}"))
    core.say(member, session, "hello")
    core.system(session, "notice")
    assert seen == ["message:hello", "system:notice"]
    assert not session.history
