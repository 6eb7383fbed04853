"""Admin API ``GET /log/`` (seed 002) over real HTTP: the audit log, 100 per page,
newest first, ``page``/``session``/``after``, bad query values as 400; and the
retention purge that housekeeping runs."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from leosuite.api.admin.log import format_timestamp, parse_after
from leosuite.audit import Actor, purge_audit
from leosuite.errors import ConfigError
from leosuite.settings import HousekeepingSettings
from leosuite.store import audit
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon, make_settings, start_daemon
from tests.helpers.http import assert_admin_error
from tests.helpers.store import open_test_store

AUTH = ("admin", ADMIN_PASSWORD)
KEYS = {"timestamp", "level", "topic", "session", "user", "message"}
#: 2030-01-01T10:00:00Z (later than the daemon's own entries)
BASE = 1893492000.0


def add_entries(daemon: RunningDaemon, rows: list[dict[str, Any]]) -> Any:
    def insert(conn: sqlite3.Connection) -> None:
        for row in rows:
            audit.append(conn, **{"level": "info", "topic": "Status", **row})

    return daemon.ctx.db.call(insert)


async def get_log(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/log/", params=params)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    for entry in entries:
        assert set(entry) == KEYS
    return entries


async def test_every_path_and_the_entry_shape(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        await daemon.ctx.audit.record(
            "Kick",
            "kicked bob",
            actor=Actor(id=7, ip="10.0.0.1", name="alice"),
            level="warning",
            session="Lobby",
        )
        await daemon.ctx.audit.record("Status", "plain", level="error")
        async with daemon.admin(auth=AUTH) as client:
            for path in ("/log", "/log/", "/api/log", "/api/log/"):
                response = await client.get(path)
                assert response.status_code == 200, (path, response.text)
                assert response.headers["content-type"] == "application/json"
                assert isinstance(response.json(), list)
            assert_admin_error(await client.post("/log/", json={}), 405)
            assert_admin_error(await client.delete("/api/log"), 405)
            newest, kick = (await get_log(client))[:2]
        async with daemon.admin() as anonymous:
            assert_admin_error(await anonymous.get("/api/log/"), 401)
    assert newest["user"] == ""
    assert (newest["level"], newest["message"], newest["session"]) == ("Error", "plain", "")
    assert kick["level"] == "Warn"
    assert (kick["topic"], kick["session"], kick["message"]) == ("Kick", "Lobby", "kicked bob")
    assert kick["user"] == "7;10.0.0.1;alice"
    assert kick["timestamp"].endswith("Z")
    when = datetime.datetime.fromisoformat(kick["timestamp"].replace("Z", "+00:00"))
    assert when.utcoffset() == datetime.timedelta(0)
    assert abs(when.timestamp() - daemon.ctx.now()) < 60


async def test_levels_user_triples_and_timestamps(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        await add_entries(
            daemon,
            [
                {"timestamp": BASE + 0.0019, "level": "debug", "message": "d"},
                {"timestamp": BASE + 1.9999, "level": "info", "message": "i", "user_ip": "::1"},
                {"timestamp": BASE + 2, "level": "warning", "message": "w", "user_id": 3},
            ],
        )
        async with daemon.admin(auth=AUTH) as client:
            entries = await get_log(client, after=str(BASE - 1))
    assert [(e["level"], e["user"], e["timestamp"]) for e in entries] == [
        ("Warn", "3;;", "2030-01-01T10:00:02.000Z"),
        ("Info", ";::1;", "2030-01-01T10:00:01.999Z"),  # cut, not rounded
        ("Debug", "", "2030-01-01T10:00:00.001Z"),
    ]


async def test_pages_of_100_newest_first(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        await add_entries(
            daemon,
            [{"timestamp": BASE + i, "message": f"entry {i}", "session": "S"} for i in range(250)],
        )
        async with daemon.admin(auth=AUTH) as client:
            pages = [await get_log(client, page=str(n), session="s") for n in range(4)]
            assert await get_log(client, page="") == await get_log(client)  # empty = page 0
            whole = [e for n in range(10) for e in await get_log(client, page=str(n))]
    assert [len(p) for p in pages] == [100, 100, 50, 0]
    messages = [e["message"] for p in pages for e in p]
    assert messages == [f"entry {i}" for i in reversed(range(250))]
    # Every entry of the log, each once, newest (largest id) first.
    assert len(whole) == len({(e["timestamp"], e["message"]) for e in whole})
    assert whole[-1]["message"].startswith("started")


async def test_session_filter_is_case_insensitive(daemon: RunningDaemon) -> None:
    with trio.fail_after(20):
        await add_entries(
            daemon,
            [
                {"timestamp": BASE, "message": "a", "session": "Lobby"},
                {"timestamp": BASE + 1, "message": "b", "session": "LOBBY"},
                {"timestamp": BASE + 2, "message": "c", "session": "lobby2"},
                {"timestamp": BASE + 3, "message": "d", "session": "Straße"},
            ],
        )
        async with daemon.admin(auth=AUTH) as client:
            assert [e["message"] for e in await get_log(client, session="lobby")] == ["b", "a"]
            assert [e["message"] for e in await get_log(client, session="STRASSE")] == ["d"]
            assert await get_log(client, session="nope") == []
            assert await get_log(client, session="x" * 10_000) == []
            assert await get_log(client, session="lobby", page="1") == []


async def test_after_takes_iso_8601_and_unix_seconds_strictly_after(
    daemon: RunningDaemon,
) -> None:
    with trio.fail_after(20):
        await add_entries(
            daemon,
            [{"timestamp": BASE + i, "message": str(i), "session": "S"} for i in range(5)],
        )
        async with daemon.admin(auth=AUTH) as client:

            async def after(value: str, **more: str) -> list[str]:
                return [e["message"] for e in await get_log(client, after=value, **more)]

            assert await after("2030-01-01T10:00:02Z") == ["4", "3"]
            assert await after("2030-01-01T10:00:02.000Z") == ["4", "3"]
            assert await after("2030-01-01T10:00:01.5") == ["4", "3", "2"]  # naive is UTC
            assert await after("2030-01-01T12:00:02+02:00") == ["4", "3"]
            assert await after(str(int(BASE) + 2)) == ["4", "3"]
            assert await after(str(BASE + 2.5)) == ["4", "3"]
            assert await after("2030-01-01T10:00:04Z") == []
            assert await after("2030-01-01") == ["4", "3", "2", "1", "0"]
            assert await after("2030-01-01T10:00:00Z", session="s") == ["4", "3", "2", "1"]
            # Following: the newest timestamp shown gives exactly the newer entries.
            newest = (await get_log(client, session="S"))[0]["timestamp"]
            assert await after(newest, session="S") == []
            await add_entries(
                daemon, [{"timestamp": BASE + 4.0004, "message": "5", "session": "S"}]
            )
            # The same millisecond comes again (the client skips what it has shown).
            assert await after(newest, session="S") == ["5"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "-1"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"page": "0x10"}, "page"),
        ({"page": " 1"}, "page"),
        ({"page": "٣"}, "page"),  # an Arabic-Indic digit
        ({"page": "10000001"}, "page"),
        ({"page": "9" * 10_000}, "page"),
        ({"after": "yesterday"}, "after"),
        ({"after": "nan"}, "after"),
        ({"after": "inf"}, "after"),
        ({"after": "1e9"}, "after"),
        ({"after": "2026-13-45"}, "after"),
        ({"after": "2026-11-23T25:00:00Z"}, "after"),
        ({"after": "2026-W47"}, "after"),
        ({"after": "1" * 10_000}, "after"),
        ({"after": "2026-11-23" + "x" * 10_000}, "after"),
        ({"after": "\x00"}, "after"),
    ],
)
async def test_bad_query_values_are_400(
    daemon: RunningDaemon, params: dict[str, str], field: str
) -> None:
    with trio.fail_after(20):
        async with daemon.admin(auth=AUTH) as client:
            response = await client.get("/api/log", params={**params, "session": "s"})
            message = assert_admin_error(response, 400)
            assert message.startswith(field + ":"), message
            assert (await client.get("/log/")).status_code == 200


def test_parse_after_and_format_timestamp() -> None:
    assert parse_after(None) is None
    assert parse_after("") is None
    assert parse_after("0") == 0.0
    assert parse_after("-1.5") == -1.5
    assert parse_after("2030-01-01T10:00:00.250Z") == BASE + 0.25
    assert format_timestamp(BASE + 0.25) == "2030-01-01T10:00:00.250Z"
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert format_timestamp(-0.0005) == "1969-12-31T23:59:59.999Z"
    for stamp in (BASE, BASE + 0.001, BASE + 59.9999):
        shown = format_timestamp(stamp)
        again = parse_after(shown)
        assert again is not None
        assert again <= stamp < again + 0.001


# -- retention ---------------------------------------------------------------------------


async def test_purge_by_age_and_by_count(tmp_path: Path) -> None:
    db = await trio.to_thread.run_sync(open_test_store, tmp_path)
    try:
        day = 86_400.0
        now = BASE + 100 * day

        def fill(conn: sqlite3.Connection) -> None:
            for age in (200, 91, 89.5, 30, 1, 0):  # days, oldest first
                audit.append(
                    conn, timestamp=now - age * day, level="info", topic="t", message=f"{age}"
                )

        def left() -> list[str]:
            return db.call_sync(lambda conn: [e.message for e in audit.page(conn, limit=100)])

        await db.call(fill)
        keep_all = HousekeepingSettings(audit_keep_days=0, audit_keep_entries=0)
        assert await purge_audit(db, keep_all, now) == 0
        assert len(left()) == 6
        by_age = HousekeepingSettings(audit_keep_days=90, audit_keep_entries=0)
        assert await purge_audit(db, by_age, now) == 2
        assert left() == ["0", "1", "30", "89.5"]
        by_count = HousekeepingSettings(audit_keep_days=0, audit_keep_entries=3)
        assert await purge_audit(db, by_count, now) == 1
        assert left() == ["0", "1", "30"]
        both = HousekeepingSettings(audit_keep_days=10, audit_keep_entries=1)
        assert await purge_audit(db, both, now) == 2
        assert left() == ["0"]
    finally:
        db.close()


def test_retention_settings_are_checked(tmp_path: Path) -> None:
    defaults = make_settings(tmp_path).housekeeping
    assert (defaults.audit_keep_days, defaults.audit_keep_entries) == (90.0, 100_000)
    for key, value in (
        ("audit_keep_days", -1),
        ("audit_keep_entries", -5),
        ("audit_keep_days", float("nan")),
    ):
        with pytest.raises(ConfigError, match=f"housekeeping.{key}"):
            make_settings(tmp_path, housekeeping={key: value})


async def test_housekeeping_enforces_retention(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", housekeeping={"interval": 0.05, "audit_keep_entries": 3}
    )
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            running = await start_daemon(nursery, settings)
            for n in range(10):
                await running.ctx.audit.record("Status", f"entry {n}")
            db = running.ctx.db
            while await db.call(audit.count) > 3:
                await trio.sleep(0.05)  # real time: the next housekeeping pass
            async with running.admin(auth=AUTH) as client:
                shown = [e["message"] for e in await get_log(client)]
            assert shown[:2] == ["entry 9", "entry 8"]
            running.daemon.request_stop()
