"""Accounts, the log and session names as Drawpile's web admin meets them: its flags kept
and shown (granting nothing), an edit's empty password as "unchanged", ADMIN neither
lost nor gained by an edit that does not name it; the log's ``user``, ``contains`` and
``session`` (by id or name) filters; and new session names without the characters
that break the origin chat client's lookups."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
import trio

from leosuite.auth.permissions import permissions_of
from leosuite.community.models import Member
from leosuite.errors import InvalidInput
from leosuite.store import audit
from leosuite.store.accounts import DRAWPILE_FLAGS
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.chat import chat
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, login
from tests.helpers.http import assert_admin_error
from tests.helpers.rooms import RoomClient

AUTH = ("admin", ADMIN_PASSWORD)
XHR = {"X-Requested-With": "XMLHttpRequest"}
#: The create form's defaults.
NEW_FLAGS = "HOST,WEBHOST,WEB,WEBSESSION"


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def password_works(daemon: RunningDaemon, username: str, password: str) -> bool:
    """Whether the admin listener takes ``username``'s password (403: a right password
    of an account that is no ADMIN; 401: a wrong one)."""
    async with daemon.admin() as admin:
        status = (
            await admin.get("/status", headers={**basic(username, password), **XHR})
        ).status_code
    assert status in (200, 401, 403), status
    return status != 401


async def account(client: httpx.AsyncClient, number: int) -> dict[str, Any]:
    found: dict[str, Any] = (await client.get(f"/accounts/{number}")).json()
    return found


# -- accounts ------------------------------------------------------------------------


async def test_drawpile_flags_are_kept_shown_and_grant_nothing(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.admin(auth=AUTH) as admin:
            made = await admin.post(
                "/accounts/",
                json={"username": "painter", "password": "painter-pass", "locked": False,
                      "flags": NEW_FLAGS},
                headers=XHR,
            )  # fmt: skip
            assert made.status_code == 201, made.text
            every = ",".join(["MOD", *sorted(DRAWPILE_FLAGS)])
            ghost = await admin.post(
                "/accounts/", json={"username": "ghost", "password": "ghost-pass", "flags": every}
            )
            assert ghost.status_code == 201, ghost.text
            listed = {a["username"]: a["flags"] for a in (await admin.get("/accounts/?v=2")).json()}
            unknown = await admin.post(
                "/accounts/", json={"username": "x1", "password": "x" * 8, "flags": "WEB,ROOT"}
            )
        async with daemon.http() as http:
            assert await login(http, "painter", "painter-pass")
    assert listed["painter"] == "HOST,WEB,WEBHOST,WEBSESSION"
    assert listed["ghost"] == "BANEXEMPT,GHOST,MOD,PERSIST,WEB,WEBHOST,WEBSESSION"
    assert "ROOT" in assert_admin_error(unknown, 400)
    # The Drawpile flags add no permission to what HOST or MOD give.
    for base in (set(), {"HOST"}, {"MOD"}):
        assert permissions_of(frozenset(base | DRAWPILE_FLAGS)) == permissions_of(frozenset(base))
    assert not await password_works(daemon, "painter", "wrong-password")
    assert await password_works(daemon, "painter", "painter-pass")
    async with daemon.admin() as admin:
        refused = await admin.get("/accounts/", headers={**basic("ghost", "ghost-pass"), **XHR})
    assert_admin_error(refused, 403)


async def test_the_edit_modal_keeps_password_and_admin(daemon: RunningDaemon) -> None:
    painter = await add_account(daemon, "painter", "HOST")
    with trio.fail_after(30):
        async with daemon.admin(auth=AUTH) as admin:
            # Exactly what the modal sends: every field, "" for an unchanged password,
            # the flags of its boxes (it has none for ADMIN).
            edited = await admin.put(
                f"/accounts/{painter}",
                json={"username": "painter", "password": "", "locked": False,
                      "flags": "MOD,GHOST,HOST,WEBHOST"},
                headers=XHR,
            )  # fmt: skip
            assert edited.status_code == 200, edited.text
            assert edited.json()["flags"] == "GHOST,HOST,MOD,WEBHOST"
            me = await admin.put(
                "/accounts/1",
                json={"username": "admin", "password": "", "locked": False, "flags": "MOD"},
                headers=XHR,
            )
            assert me.status_code == 200, me.text
            assert me.json()["flags"] == "ADMIN,MOD"
            cleared = await admin.put(
                "/accounts/1", json={"username": "admin", "password": "", "flags": ""}
            )
            assert cleared.json()["flags"] == "ADMIN"
            # A new password through the modal still works, and is checked.
            short = await admin.put(f"/accounts/{painter}", json={"password": "short"})
            assert "password" in assert_admin_error(short, 400)
            changed = await admin.put(f"/accounts/{painter}", json={"password": "new-password-2"})
            assert changed.status_code == 200, changed.text
            empty_new = await admin.post(
                "/accounts/", json={"username": "nopass", "password": "", "flags": NEW_FLAGS}
            )
            assert "password" in assert_admin_error(empty_new, 400)
    assert await password_works(daemon, "admin", ADMIN_PASSWORD)
    assert await password_works(daemon, "painter", "new-password-2")
    assert not await password_works(daemon, "painter", PASSWORD)
    entries = await daemon.ctx.db.call(lambda conn: audit.page(conn, limit=20))
    edits = [e.message for e in entries if "'painter'" in e.message and "changed" in e.message]
    assert edits[0].endswith("changed: password changed")
    assert "password" not in edits[-1]  # the modal's "" changed no password


async def test_an_account_without_admin_never_gains_it_unasked(daemon: RunningDaemon) -> None:
    painter = await add_account(daemon, "painter", "HOST")
    with trio.fail_after(30):
        async with daemon.admin(auth=AUTH) as admin:
            for body in (
                {"flags": "MOD,HOST,WEB"},
                {"flags": ""},
                {"admin": False},
                {"username": "painter", "password": "", "locked": False, "flags": "PERSIST"},
                {"locked": True},
                {"locked": False},
            ):
                response = await admin.put(f"/accounts/{painter}/", json=body, headers=XHR)
                assert response.status_code == 200, (body, response.text)
                assert "ADMIN" not in response.json()["flags"].split(","), body
            # A bad field changes nothing, ADMIN included.
            mixed = await admin.put(
                f"/accounts/{painter}/", json={"flags": "ADMIN", "admin": False}
            )
            assert assert_admin_error(mixed, 400).startswith("admin")
            assert (await account(admin, painter))["flags"] == "PERSIST"
            bad_type = await admin.put(f"/accounts/{painter}/", json={"admin": "yes"})
            assert assert_admin_error(bad_type, 400).startswith("admin")
            # Naming it grants it: ADMIN in flags, or "admin": true.
            granted = await admin.put(f"/accounts/{painter}/", json={"admin": True})
            assert granted.json()["flags"] == "ADMIN,PERSIST"
    assert await password_works(daemon, "painter", PASSWORD)


async def test_admin_is_taken_away_only_when_said(daemon: RunningDaemon) -> None:
    second = await add_account(daemon, "second", "ADMIN")
    with trio.fail_after(30):
        async with daemon.admin(auth=AUTH) as admin:
            kept = await admin.put(f"/accounts/{second}", json={"flags": "HOST"})
            assert kept.json()["flags"] == "ADMIN,HOST"
            demoted = await admin.put(f"/accounts/{second}", json={"admin": False})
            assert demoted.json()["flags"] == "HOST"
            # The last unlocked ADMIN stays, however it is asked.
            for body in ({"admin": False}, {"flags": "MOD", "admin": False}):
                last = await admin.put("/accounts/1", json=body)
                assert "last unlocked ADMIN" in assert_admin_error(last, 409)
            assert (await account(admin, 1))["flags"] == "ADMIN"
        # A demoted account is refused at once.
        async with daemon.admin() as anyone:
            refused = await anyone.get("/accounts/", headers={**basic("second", PASSWORD), **XHR})
    assert_admin_error(refused, 403)


# -- log -----------------------------------------------------------------------------


async def add_entries(daemon: RunningDaemon, rows: list[dict[str, Any]]) -> None:
    def insert(conn: Any) -> None:
        for row in rows:
            audit.append(conn, **{"timestamp": 1893492000.0, "level": "info", "topic": "Status",
                                  **row})  # fmt: skip

    await daemon.ctx.db.call(insert)


async def messages(client: httpx.AsyncClient, **params: str) -> list[str]:
    """The messages ``GET /api/log/`` answers; only the entries of this test (later than
    the daemon's own) unless ``after`` is given."""
    params = {"after": "2029-01-01T00:00:00Z", **params}
    response = await client.get("/api/log/", params=params, headers=XHR)
    assert response.status_code == 200, response.text
    return [e["message"] for e in response.json()]


async def test_user_and_contains_filters(daemon: RunningDaemon) -> None:
    await add_entries(
        daemon,
        [
            {"message": "Joined", "user_id": 7, "user_ip": "10.0.0.5", "user_name": "Alice"},
            {"message": "100% done", "user_ip": "10.0.0.6", "user_name": "bob"},
            {"message": "a_b", "user_name": "a_b"},
            {"message": "axb", "user_name": "axb"},
            {"message": "nul\x00here"},
        ],
    )
    with trio.fail_after(20):
        async with daemon.admin(auth=AUTH) as admin:
            assert await messages(admin, user="ALI") == ["Joined"]
            assert await messages(admin, user="10.0.0.") == ["100% done", "Joined"]
            assert await messages(admin, user="7;10") == ["Joined"]
            assert await messages(admin, contains="DONE") == ["100% done"]
            assert await messages(admin, contains="%") == ["100% done"]
            assert await messages(admin, contains="_") == ["a_b"]
            assert await messages(admin, user="_") == ["a_b"]
            assert await messages(admin, user="%") == []
            assert await messages(admin, contains="\x00") == ["nul\x00here"]
            assert await messages(admin, contains="'; DROP TABLE audit_log; --") == []
            assert await messages(admin, user="bob", contains="done") == ["100% done"]
            assert await messages(admin, user="bob", contains="joined") == []
            # The page's own query: empty filters are no filters.
            page = await messages(admin, page="0", session="", user="", contains="")
            assert page[:5] == ["nul\x00here", "axb", "a_b", "100% done", "Joined"]
            # Hostile values: too long to match anything, pages past the end or the limit.
            assert await messages(admin, contains="x" * 5000) == []
            assert await messages(admin, user="a" * 5000, session="s" * 5000) == []
            assert await messages(admin, page="10000000", contains="a") == []
            too_far = await admin.get("/log/", params={"page": "10000001"})
            assert assert_admin_error(too_far, 400).startswith("page")
            huge = await admin.get("/log/", params={"page": "9" * 400})
            assert assert_admin_error(huge, 400).startswith("page")


async def wait_for_entries(daemon: RunningDaemon, text: str, count: int = 1) -> None:
    """Until ``count`` audit entries of the chat core with ``text`` are in the store."""
    while True:
        entries = await daemon.ctx.db.call(lambda conn: audit.page(conn, limit=200))
        if sum(e.message == text for e in entries) >= count:
            return
        await trio.sleep(0.02)


async def test_session_filter_by_id_or_name(daemon: RunningDaemon) -> None:
    core = daemon.ctx.chat.core
    alice = Member("alice", ip="10.0.0.1")
    core.connect(alice)
    lobby, _ = core.join(alice, "#Lobby")
    gone, _ = core.join(alice, "gone")
    core.close(gone, "test over")
    again, _ = core.join(alice, "gone")  # a new session under the old name
    await add_entries(daemon, [{"message": "a server's", "session": "lobby"}])
    with trio.fail_after(20):
        await wait_for_entries(daemon, "session gone closed: test over")
        await wait_for_entries(daemon, "session gone created", count=2)
        async with daemon.admin(auth=AUTH) as admin:
            # the form of the documentation's example
            by_name = await admin.get(
                "/log/?page=0&session=lobby&after=2020-11-23T10:00:00Z", headers=XHR
            )
            assert by_name.status_code == 200, by_name.text
            sessions = {e["session"] for e in by_name.json()}
            assert sessions == {lobby.id, "lobby"}
            for key in ("#LOBBY", "Lobby", lobby.id, lobby.id.upper()):
                found = await admin.get("/log/", params={"session": key})
                assert {e["session"] for e in found.json()} >= {lobby.id}, key
            closed = await admin.get("/log/", params={"session": "gone"})
            assert {e["session"] for e in closed.json()} == {gone.id, again.id}
            by_id = await admin.get("/log/", params={"session": gone.id})
            assert {e["session"] for e in by_id.json()} == {gone.id}
            for nothing in ("nobody", "lob%", "lob_y", "#", "a b"):
                assert await messages(admin, session=nothing, after="0") == [], nothing


async def test_the_log_needs_an_admin(daemon: RunningDaemon) -> None:
    await add_account(daemon, "moderator", "MOD")
    with trio.fail_after(20):
        async with daemon.admin(auth=("moderator", PASSWORD)) as admin:
            refused = await admin.get("/log/", params={"user": "admin"}, headers=XHR)
    assert_admin_error(refused, 403)


# -- session names -------------------------------------------------------------------

BROKEN = ["a/b", "a.b", "a:b", "a#b", "a'b", 'a"b', "a<b>", "a[b]", "a=b", "a?b", "a%2F", "a\\b"]


async def test_new_names_that_break_the_chat_clients_lookups_are_refused(
    daemon: RunningDaemon,
) -> None:
    core = daemon.ctx.chat.core
    fine = ["café", "x_y-z", "Lobby2", "лобби", "9lives"]
    with trio.fail_after(30):
        async with chat(daemon, "alice") as alice:
            for name in BROKEN:
                await alice.send(4, channel=f"#{name}")
                assert "may not contain" in await alice.error(), name
            for name in fine:
                await alice.join(f"#{name}")
            opened = sorted(s.name for s in core.sessions.values())
        async with daemon.http() as http:
            for name in ("a/b", "a.b"):
                room = RoomClient(http, name, "bob")
                answer = await room.error("createRoom", 400, owner="bob", **{"pass": "bob-pass"})
                assert "may not contain" in answer["text"]
    assert opened == sorted(fine)
    assert core.sessions == {}


async def test_a_stored_session_keeps_its_older_name(daemon: RunningDaemon) -> None:
    core = daemon.ctx.chat.core
    with pytest.raises(InvalidInput):
        core.create("old.name", None, founder_name="admin")
    restored = core.create("old.name", None, founder_name="admin", restored=True)
    assert core.find("#old.name") is restored
