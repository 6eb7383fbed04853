"""``/banlist`` of the admin API over real sockets, and the ban on every listener.

The banned peer connects from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to lo), so
the test's own clients on 127.0.0.1 keep their access."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from leosuite.store import audit
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, start_daemon
from tests.helpers.http import assert_admin_error, assert_unauthorized
from tests.helpers.ws import RawClient, Rejected

BANNED = "127.0.0.2"
BANNED_HTTP = {"error_type": "forbidden", "error_message": "your address is banned"}
BANNED_ADMIN = {"status": "error", "message": "your address is banned"}
BAN_KEYS = {"id", "ip", "subnet", "expires", "comment", "added"}


def admin(daemon: RunningDaemon, source: str | None = None) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source) if source else None
    return httpx.AsyncClient(
        base_url=daemon.endpoints.admin,
        auth=("admin", ADMIN_PASSWORD),
        timeout=10,
        transport=transport,
    )


def banned_http(daemon: RunningDaemon) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=BANNED)
    return httpx.AsyncClient(base_url=daemon.endpoints.http, timeout=10, transport=transport)


def iso_in(seconds: float) -> str:
    return (
        datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(seconds=seconds)
    ).isoformat()


def refusals(daemon: RunningDaemon, ip: str) -> list[audit.AuditEntry]:
    entries = daemon.ctx.db.call_sync(lambda c: audit.page(c, limit=10000))
    return [e for e in entries if e.topic == "Ban" and e.user_ip == ip and "refused" in e.message]


async def until_closed(raw: RawClient) -> int | None:
    while raw.close_code() is None and await raw.read_some():
        pass
    return raw.close_code()


async def ws_refusal(url: str) -> int:
    with pytest.raises(Rejected) as info:
        async with RawClient.open(url, source=BANNED):
            pass
    return info.value.status


async def assert_banned_everywhere(daemon: RunningDaemon) -> None:
    async with banned_http(daemon) as client:
        for response in (
            await client.get("/api/health"),
            await client.get("/api/auth/config"),
        ):
            assert response.status_code == 403, response.text
            assert response.json() == BANNED_HTTP
        # the rooms answer every error in their own shape
        rooms = await client.post("/rooms", json={"action": "createRoom", "payload": {}})
        assert rooms.status_code == 403, rooms.text
        assert rooms.json() == {
            "status": "error",
            "error_type": "forbidden",
            "text": "your address is banned",
        }
    async with admin(daemon, BANNED) as client:
        for path in ("/status", "/api/banlist/", "/no/such/path"):
            response = await client.get(path)
            assert response.status_code == 403, response.text
            assert response.json() == BANNED_ADMIN
    ws = daemon.endpoints.ws
    for path in ("/", "/chat/login/x", "/nowhere"):
        assert await ws_refusal(ws + path) == 403


async def test_ban_holds_on_every_listener(daemon: RunningDaemon) -> None:
    ws = daemon.endpoints.ws
    with trio.fail_after(30):
        async with banned_http(daemon) as client:
            assert (await client.get("/api/health")).status_code == 200
        async with (
            RawClient.open(ws + "/", source=BANNED) as api_conn,
            RawClient.open(ws + "/chat/login/bob", source=BANNED) as chat_conn,
            RawClient.open(ws + "/") as bystander,
        ):
            await api_conn.send("get_leosac_version", None, "v")
            while not api_conn.count():  # the connection is registered and served
                assert await api_conn.read_some()
            while not chat_conn.count():  # bob's own login broadcast
                assert await chat_conn.read_some()
            assert [m.ip for m in daemon.ctx.chat.core.members.values()] == [BANNED]

            async with admin(daemon) as client:
                response = await client.post(
                    "/banlist/", json={"ip": BANNED, "comment": "flooding"}
                )
            assert response.status_code == 200, response.text
            added: dict[str, Any] = response.json()
            assert set(added) == BAN_KEYS | {"appliesToYou"}
            assert added["appliesToYou"] is False
            assert (added["ip"], added["subnet"], added["expires"]) == (BANNED, 0, "")
            assert added["comment"] == "flooding"
            assert added["added"].endswith("Z")

            assert await until_closed(api_conn) == 1008
            assert await until_closed(chat_conn) == 1008
            assert not daemon.ctx.chat.core.members
            await bystander.send("get_leosac_version", None, "still")
            while not bystander.count():
                assert await bystander.read_some()
            assert bystander.close_code() is None

        await assert_banned_everywhere(daemon)
        # the test's own address is untouched
        async with daemon.http() as client:
            assert (await client.get("/api/health")).status_code == 200
        async with admin(daemon) as client:
            listed = (await client.get("/api/banlist")).json()
            assert listed == [{k: added[k] for k in BAN_KEYS}]
            # refused connections are audited, once a minute per address
            assert len(refusals(daemon, BANNED)) == 1
            entries = daemon.ctx.db.call_sync(lambda c: audit.page(c, limit=100))
            assert any(e.topic == "Ban" and "added" in e.message for e in entries)

            removed = await client.delete(f"/banlist/{added['id']}/")
            assert removed.status_code == 200, removed.text
            assert removed.json() == {"status": "ok"}
            assert (await client.get("/banlist")).json() == []
            assert (await client.delete(f"/banlist/{added['id']}")).status_code == 404
        async with banned_http(daemon) as client:
            assert (await client.get("/api/health")).status_code == 200
        async with RawClient.open(ws + "/", source=BANNED):
            pass


async def test_subnets_and_ipv6_over_the_api(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with admin(daemon) as client:
            bodies = [
                {"ip": "2001:db8::", "subnet": 32},
                {"ip": "2001:DB8:1::7/128", "subnet": "128", "expires": iso_in(3600)},
                {"ip": "::ffff:192.0.2.1", "comment": None},
                {"ip": "127.0.0.0/31", "comment": "two addresses"},  # last: bans this client
            ]
            answers = []
            for body in bodies:
                response = await client.post("/api/banlist/", json=body)
                assert response.status_code == 200, response.text
                answers.append(response.json())
            assert [(a["ip"], a["subnet"]) for a in answers] == [
                ("2001:db8::", 32),
                ("2001:db8:1::7", 128),
                ("192.0.2.1", 0),
                ("127.0.0.0", 31),
            ]
            # 127.0.0.0/31 holds 127.0.0.1, this client
            assert [a["appliesToYou"] for a in answers] == [False, False, False, True]
            expires = datetime.datetime.fromisoformat(answers[1]["expires"])
            assert expires.tzinfo == datetime.UTC
            assert answers[1]["expires"].endswith("Z")
            assert answers[0]["expires"] == ""
        bans = daemon.ctx.bans
        assert bans.is_banned("2001:db8:ffff::1") is not None
        assert bans.is_banned("::ffff:192.0.2.1") is not None
        assert bans.is_banned("127.0.0.2") is None  # outside 127.0.0.0/31
        # the test client (127.0.0.1) banned itself: take it back in-process
        await bans.remove(answers[3]["id"])
        async with admin(daemon) as client:
            listed = (await client.get("/banlist/")).json()
        assert [b["id"] for b in listed] == [a["id"] for a in answers[:3]]


async def test_ban_of_the_admins_own_address(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with admin(daemon) as client:
            response = await client.post("/banlist", json={"ip": "127.0.0.1"})
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["appliesToYou"] is True
            assert "127.0.0.1" in answer["message"]
            assert "your own address" in answer["message"]
            after = await client.get("/banlist/")
            assert after.status_code == 403
            assert after.json() == BANNED_ADMIN
        async with daemon.http() as client:
            assert (await client.get("/api/health")).json() == BANNED_HTTP
        # another address can still lift it
        async with admin(daemon, BANNED) as other:
            lifted = await other.delete(f"/api/banlist/{answer['id']}/")
            assert lifted.status_code == 200, lifted.text
        async with admin(daemon) as client:
            assert (await client.get("/banlist/")).json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"ip": "999.1.1.1"}, "ip", id="bad-address"),
        pytest.param({"ip": "10.0.0.0/33"}, "ip", id="prefix-33"),
        pytest.param({"ip": ""}, "ip", id="empty"),
        pytest.param({"ip": "1.2.3.4", "subnet": 33}, "subnet", id="v4-subnet-33"),
        pytest.param({"ip": "::1", "subnet": 129}, "subnet", id="v6-subnet-129"),
        pytest.param({"ip": "1.2.3.4", "subnet": -1}, "subnet", id="negative"),
        pytest.param({"ip": "1.2.3.4", "subnet": 1e309}, None, id="huge-number"),
        pytest.param({"ip": "1.2.3.4", "expires": "2001-01-01T00:00:00Z"}, "expires", id="past"),
        pytest.param({"ip": "1.2.3.4", "expires": "next week"}, "expires", id="not-a-date"),
        pytest.param({"ip": "1.2.3.4", "expires": 5}, "expires", id="number-date"),
        pytest.param({"subnet": 8}, "ip", id="missing-ip"),
        pytest.param({"ip": 5}, "ip", id="ip-number"),
        pytest.param({"ip": "1.2.3.4", "reason": "x"}, "reason", id="unknown-field"),
        pytest.param({"ip": "1.2.3.4", "address": "1.2.3.5"}, "address", id="ip-vs-address"),
        pytest.param({"ip": "", "address": ""}, "ip", id="both-empty"),
        pytest.param(["1.2.3.4"], None, id="array"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    daemon: RunningDaemon, body: Any, field: str | None
) -> None:
    with trio.fail_after(20):
        async with admin(daemon) as client:
            if isinstance(body, dict) and body.get("subnet") == 1e309:
                response = await client.post(
                    "/banlist/",
                    content=b'{"ip": "1.2.3.4", "subnet": 1e309}',
                    headers={"Content-Type": "application/json"},
                )
            else:
                response = await client.post("/banlist/", json=body)
            message = assert_admin_error(response, 400)
            if field is not None:
                assert field in message, message
            assert (await client.get("/banlist/")).json() == []


async def test_bad_requests(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        async with admin(daemon) as client:
            for content, headers, status in [
                (b"{not json", {"Content-Type": "application/json"}, 400),
                (b"\xff\xfe", {"Content-Type": "application/json"}, 400),
                (b"ip=1.2.3.4", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
            ]:
                response = await client.post("/banlist/", content=content, headers=headers)
                assert_admin_error(response, status)
            for path in ("/banlist/999/", "/banlist/abc", "/banlist/-1", f"/banlist/{10**30}/"):
                assert_admin_error(await client.delete(path), 404)
            wrong = await client.get("/banlist/1/")
            assert_admin_error(wrong, 405)
            assert "DELETE" in wrong.headers["Allow"]
            assert_admin_error(await client.put("/banlist/", json={}), 405)
        async with httpx.AsyncClient(base_url=daemon.endpoints.admin) as anonymous:
            assert_unauthorized(await anonymous.get("/banlist/"))
            assert_unauthorized(await anonymous.post("/banlist/", json={"ip": "1.2.3.4"}))
            assert_unauthorized(await anonymous.delete("/banlist/1/"))
        assert daemon.ctx.bans.bans() == []


async def test_ban_expires_while_the_banned_client_retries(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", housekeeping={"interval": 0.2})
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            daemon = await start_daemon(nursery, settings)
            events = daemon.ctx.audit.subscribe()
            async with admin(daemon) as client:
                response = await client.post(
                    "/banlist/", json={"ip": BANNED, "expires": iso_in(1.0)}
                )
                assert response.status_code == 200, response.text
            tries = 0
            async with banned_http(daemon) as banned:
                while (answer := await banned.get("/api/health")).status_code == 403:
                    tries += 1  # a flood of retries, no pause
                assert answer.status_code == 200
            assert tries > 0
            # the flood left one audit entry, not one per try
            assert len(refusals(daemon, BANNED)) == 1
            async with RawClient.open(daemon.endpoints.ws + "/", source=BANNED):
                pass
            # housekeeping deletes the expired ban
            async for event in events:
                if event.topic == "Unban" and "expired" in event.message:
                    break
            count = daemon.ctx.db.call_sync(lambda c: c.execute("SELECT count(*) FROM bans"))
            assert count.fetchone()[0] == 0
            assert daemon.ctx.bans.bans() == []
            daemon.daemon.request_stop()


async def test_bans_survive_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            first = await start_daemon(nursery, settings)
            async with admin(first) as client:
                response = await client.post("/banlist/", json={"ip": "127.0.0.2/32"})
                assert response.status_code == 200, response.text
            first.daemon.request_stop()
        async with trio.open_nursery() as nursery:
            second = await start_daemon(nursery, settings)
            async with admin(second) as client:
                listed = (await client.get("/banlist/")).json()
            assert [(b["ip"], b["subnet"]) for b in listed] == [(BANNED, 32)]
            await assert_banned_everywhere(second)
            second.daemon.request_stop()


async def test_address_is_another_name_for_ip(daemon: RunningDaemon) -> None:
    """Drawpile's web admin sends its form whole: ``address`` empty beside ``ip``, and
    an empty subnet; older forms send only ``address``."""
    with trio.fail_after(20):
        async with admin(daemon) as client:
            form = {"address": "", "ip": "192.0.2.50", "subnet": "", "expires": "", "comment": ""}
            first = await client.post("/banlist/", json=form)
            assert first.status_code == 200, first.text
            second = await client.post("/banlist/", json={"address": "192.0.2.51"})
            assert second.status_code == 200, second.text
            listed = [ban["ip"] for ban in (await client.get("/banlist/")).json()]
            assert listed == ["192.0.2.50", "192.0.2.51"]
