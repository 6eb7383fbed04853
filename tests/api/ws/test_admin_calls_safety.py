"""``account.*`` and ``ban.*`` against a caller that goes away or changes meanwhile: a
change committed while its connection closes still ends the sessions it ends and is
audited; an ADMIN locked or demoted while its call runs cannot finish it (over the
admin API too); a ban of one's own address needs ``confirm_self`` and is answered
before the connection closes. Over real sockets."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from leosuite.store import accounts as account_table
from leosuite.store import audit as audit_table
from leosuite.store import kv
from tests.helpers.accounts import PASSWORD, add_account
from tests.helpers.admin_accounts import admin_client
from tests.helpers.daemon import RunningDaemon, make_settings, running_daemon
from tests.helpers.ws import RawClient, WsClient, client_socket_leak_tolerated, ws_client

PERMISSION_DENIED, SESSION_ABORTED, INVALID_ARGUMENT = 2, 7, 12
BANNED = "your address is banned"


async def audit_messages(daemon: RunningDaemon, topic: str) -> list[str]:
    entries: list[audit_table.AuditEntry] = await daemon.ctx.db.call(
        lambda conn: audit_table.page(conn, limit=1000, newest_first=False)
    )
    return [e.message for e in entries if e.topic == topic]


async def tokens_of(daemon: RunningDaemon, account_id: int) -> int:
    count: int = await daemon.ctx.db.call(
        lambda c: c.execute(
            "SELECT count(*) FROM tokens WHERE account_id = ?", (account_id,)
        ).fetchone()[0]
    )
    return count


class Gate:
    """A store transaction that holds the writer until released."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, conn: Any) -> None:
        kv.set(conn, self.name, "1")
        self.started.set()
        assert self.release.wait(30)


async def close_code(client: WsClient) -> int:
    """The code of the close that ends ``client``'s connection (nothing else may come)."""
    try:
        frame = await client.receive()
    except ConnectionClosed as exc:
        code: int = exc.reason.code
        return code
    raise AssertionError(f"a message came instead of the close: {frame}")


def queued(daemon: RunningDaemon, fn: object) -> bool:
    """Whether a store call of ``fn`` (or of a function so named) waits for the next batch."""
    jobs = daemon.ctx.db._queue
    return any(job.fn is fn or getattr(job.fn, "__qualname__", "") == fn for job in jobs)


async def wait_for(condition: Any) -> None:
    while not condition():
        await trio.sleep(0.01)


async def test_a_password_reset_cut_off_mid_transaction_still_ends_sessions(
    daemon: RunningDaemon,
) -> None:
    db = daemon.ctx.db
    with trio.fail_after(60):
        victim_id = await add_account(daemon, "victim")
        async with ws_client(daemon) as victim, trio.open_nursery() as nursery:
            await victim.login("victim", PASSWORD)
            first, second = Gate("first"), Gate("second")
            async with RawClient.open(daemon.endpoints.ws + "/") as raw:
                await raw.login()
                (conn,) = [c for c in daemon.ctx.ws_hub.connections if c.principal.account_id == 1]
                nursery.start_soon(db.call, first)
                await trio.to_thread.run_sync(first.started.wait)
                nursery.start_soon(db.call, second)
                await wait_for(lambda: queued(daemon, second))
                await raw.send("account.set", {"id": victim_id, "password": "brand-new-pass-1"})
                # the reset's transaction waits behind the second gate, in the next batch
                await wait_for(lambda: queued(daemon, "change_account.<locals>.apply"))
                first.release.set()
                await trio.to_thread.run_sync(second.started.wait)
            # the caller is gone while its transaction runs
            await wait_for(lambda: conn.nursery is None or conn.nursery.cancel_scope.cancel_called)
            second.release.set()
            await wait_for(lambda: conn not in daemon.ctx.ws_hub.connections)
            closed = await victim.next_push("session_closed")
            # The store's token watcher may see the deleted token before the change says why.
            assert closed["content"]["reason"] in ("password changed", "token destroyed")
            answer = await victim.call("server.list", {})
            assert answer["status_code"] == SESSION_ABORTED, answer
        assert await tokens_of(daemon, victim_id) == 0
        assert f"account 'victim' (id {victim_id}) changed: password changed" in (
            await audit_messages(daemon, "admin")
        )


async def test_a_locked_admins_call_in_flight_is_refused(
    daemon: RunningDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = daemon.ctx.auth.hasher
    gate = threading.Event()
    real_hash = hasher.hash_sync

    def held_hash(password: str) -> str:
        assert gate.wait(30)
        return real_hash(password)

    with trio.fail_after(60):
        second_id = await add_account(daemon, "admin2", "ADMIN")
        async with ws_client(daemon, login=True) as first, ws_client(daemon) as second:
            await second.login("admin2", PASSWORD)
            monkeypatch.setattr(hasher, "hash_sync", held_hash)
            new = {"username": "backdoor", "password": "backdoor-pass-1", "flags": "ADMIN"}
            await second.ws.send_message(
                json.dumps({"type": "account.create", "uuid": "b1", "content": new})
            )
            await wait_for(lambda: hasher.statistics().borrowed_tokens == 1)
            await first.ok("account.set", {"id": second_id, "locked": True})
            gate.set()
            answer = await second.answer("b1")
            assert answer["status_code"] == PERMISSION_DENIED, answer
        made = await daemon.ctx.db.call(lambda c: account_table.get_by_name(c, "backdoor"))
        assert made is None
        assert not [m for m in await audit_messages(daemon, "admin") if "backdoor" in m]


async def test_a_demoted_admins_request_in_flight_is_refused_over_the_admin_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two hashes at once: the held one, and the first admin's own login beside it.
    settings = make_settings(tmp_path / "data", auth={"hash_concurrency": 2})
    async with running_daemon(settings) as daemon:
        await _demoted_over_the_admin_api(daemon, monkeypatch)


async def _demoted_over_the_admin_api(
    daemon: RunningDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = daemon.ctx.auth.hasher
    gate = threading.Event()
    real_hash = hasher.hash_sync

    def held_hash(password: str) -> str:
        assert gate.wait(30)
        return real_hash(password)

    answers: list[int] = []
    with trio.fail_after(60):
        second_id = await add_account(daemon, "admin2", "ADMIN")

        async def create_as_second() -> None:
            async with daemon.admin(auth=("admin2", PASSWORD)) as rest:
                new = {"username": "backdoor", "password": "backdoor-pass-1", "flags": "ADMIN"}
                answers.append((await rest.post("/accounts/", json=new)).status_code)

        async with trio.open_nursery() as nursery:
            monkeypatch.setattr(hasher, "hash_sync", held_hash)
            nursery.start_soon(create_as_second)
            await wait_for(lambda: hasher.statistics().borrowed_tokens == 1)
            async with admin_client(daemon) as rest:
                demoted = await rest.put(f"/accounts/{second_id}/", json={"admin": False})
                assert demoted.status_code == 200, demoted.text
            gate.set()
        assert answers == [403]
        made = await daemon.ctx.db.call(lambda c: account_table.get_by_name(c, "backdoor"))
        assert made is None


async def ban_own_address(daemon: RunningDaemon) -> None:
    """Refused without ``confirm_self``; with it, answered, told, then closed (1008),
    as is another connection from the address. Its clients end with this frame."""
    async with ws_client(daemon, login=True) as admin, ws_client(daemon) as bystander:
        await bystander.login()
        answer = await admin.call("ban.add", {"ip": "127.0.0.0/8", "comment": "oops"})
        assert answer["status_code"] == INVALID_ARGUMENT, answer
        assert answer["content"] == {"field": "confirm_self"}
        assert "127.0.0.1" in answer["status_string"]
        assert await admin.ok("ban.list", {}) == []
        assert daemon.ctx.bans.is_banned("127.0.0.1") is None

        ban = await admin.ok(
            "ban.add", {"ip": "127.0.0.1", "comment": "on purpose", "confirm_self": True}
        )
        assert (ban["ip"], ban["appliesToYou"]) == ("127.0.0.1", True)
        closed = await admin.next_push("session_closed")
        assert closed["content"]["reason"] == BANNED
        assert await close_code(admin) == 1008
        assert await close_code(bystander) == 1008


async def test_a_ban_of_ones_own_address_needs_confirmation_and_is_answered(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(60):
        with client_socket_leak_tolerated():
            await ban_own_address(daemon)
        assert daemon.ctx.bans.is_banned("127.0.0.1") is not None
        assert await tokens_of(daemon, 1) == 0
        (added,) = await audit_messages(daemon, "Ban")
        assert "127.0.0.1 added" in added
        assert "2 WebSocket connection(s) closed" in added


async def test_a_revocation_cancelled_while_queued_still_ends_the_sessions(
    daemon: RunningDaemon,
) -> None:
    db = daemon.ctx.db
    with trio.fail_after(60):
        victim_id = await add_account(daemon, "victim")
        async with ws_client(daemon) as victim, trio.open_nursery() as nursery:
            await victim.login("victim", PASSWORD)
            gate = Gate("gate")
            nursery.start_soon(db.call, gate)
            await trio.to_thread.run_sync(gate.started.wait)
            scope = trio.CancelScope()
            done = trio.Event()

            async def revoke() -> None:
                with scope:
                    await daemon.ctx.auth.revoke_account(victim_id, "account locked")
                done.set()

            nursery.start_soon(revoke)
            await wait_for(lambda: queued(daemon, "AuthService.revoke_account.<locals>.<lambda>"))
            scope.cancel()
            for _ in range(3):  # the cancelled task runs before the store goes on
                await trio.lowlevel.checkpoint()
            gate.release.set()
            await done.wait()
            closed = await victim.next_push("session_closed")
            assert closed["content"]["reason"] == "account locked"
        assert await tokens_of(daemon, victim_id) == 0
