"""The scheduler under trio's MockClock: cron times in a zone with daylight saving, an
interval, runs missed while no scheduler ran (within and beyond the grace period), and
two schedules of one server that overlap (the second waits)."""

from __future__ import annotations

import datetime
import sqlite3
import zoneinfo
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from leosuite.clock import WallClock
from leosuite.schedules.model import Schedule, parse_steps, parse_timing
from leosuite.schedules.scheduler import Scheduler
from leosuite.store import Database
from leosuite.store import schedules as schedule_table

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
DAY = 86400.0


def berlin(*args: int) -> float:
    return datetime.datetime(*args, tzinfo=BERLIN).timestamp()  # type: ignore[misc]


def local(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(round(stamp), tz=BERLIN).isoformat()


class FakeServer:
    """Records each step with the wall time it ran at; ``busy`` makes power steps last."""

    def __init__(self, now: WallClock, *, power_takes: float = 0.0, players: int = 0) -> None:
        self.now = now
        self.power_takes = power_takes
        self.players = players
        self.running = True
        self.done: list[tuple[str, str, float]] = []

    def is_running(self, server: str) -> bool:
        return self.running

    async def power(self, server: str, action: str, *, by: int | None) -> None:
        self.done.append((server, action, self.now()))
        await trio.sleep(self.power_takes)
        self.done.append((server, f"{action} done", self.now()))

    async def command(self, server: str, line: str) -> None:
        self.done.append((server, f"command {line}", self.now()))

    async def players_online(self, server: str) -> int:
        return self.players

    async def backup(self, server: str) -> None:
        # A backup lasts longer than schedules.step_timeout (600 s here): it is not cut.
        self.done.append((server, "backup", self.now()))
        await trio.sleep(700)
        self.done.append((server, "backup done", self.now()))


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "leosuite.db")
    now = 1.0e9

    def seed(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO servers (id, name, type, created_at) VALUES (1, 'game', 'demo-game', ?)",
            (now,),
        )

    database._conn.execute("BEGIN")
    seed(database._conn)
    database._conn.execute("COMMIT")
    yield database
    database.close()


async def add(
    db: Database,
    name: str,
    *,
    anchor: float,
    cron: str | None = None,
    interval: float | None = None,
    zone: str = "UTC",
    steps: tuple[str, ...] = ("restart",),
) -> Schedule:
    schedule = Schedule(
        id=0,
        server_id=1,
        name=name,
        timing=parse_timing(cron, interval, zone),
        steps=parse_steps(list(steps)),
        anchor_at=anchor,
    )
    return await db.call(lambda conn: schedule_table.add(conn, schedule))


class Harness:
    def __init__(self, db: Database, now: WallClock, server: FakeServer, grace: float) -> None:
        self.audit: list[tuple[str, str]] = []

        async def audit(server_name: str, message: str, level: str) -> None:
            self.audit.append((level, message))

        self.scheduler = Scheduler(
            db,
            server,
            now=now,
            server_name=lambda sid: "game" if sid == 1 else None,
            audit=audit,
            grace=grace,
            step_timeout=600.0,
        )


async def audited(harness: Harness, count: int) -> list[tuple[str, str]]:
    """The audit entries once ``count`` are not about waiting (outcomes are stored, then
    audited); those about waiting included."""
    while sum("waits for" not in m for _, m in harness.audit) < count:
        # A checkpoint that keeps this task runnable: the mock clock stands still while
        # the store's thread finishes, so no later run slips in.
        await trio.sleep(0)
    return harness.audit


@asynccontextmanager
async def scheduling(
    db: Database, now: WallClock, server: FakeServer, *, grace: float = 300.0
) -> AsyncIterator[Harness]:
    harness = Harness(db, now, server, grace)
    await harness.scheduler.load()
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.scheduler.run)
        yield harness
        nursery.cancel_scope.cancel()


async def test_a_daily_0400_restart_runs_once_a_day_across_both_dst_changes(
    db: Database, mock_clock: trio.testing.MockClock
) -> None:
    for start in (berlin(2026, 3, 26, 12), berlin(2026, 10, 22, 12)):
        now = WallClock(start=start)
        server = FakeServer(now)
        await add(db, f"nightly {start:.0f}", anchor=now(), cron="0 4 * * *", zone="Europe/Berlin")
        async with scheduling(db, now, server) as harness:
            first = harness.scheduler.next_run(1 if start < berlin(2026, 6, 1) else 2)
            assert first is not None
            await trio.sleep(6 * DAY)
            await audited(harness, 6)
        restarts = [local(t) for _, action, t in server.done if action == "restart"]
        if start < berlin(2026, 6, 1):
            # Summer time starts on Sunday 29 March: 04:00 is +02:00 from then on.
            assert restarts == [
                "2026-03-27T04:00:00+01:00",
                "2026-03-28T04:00:00+01:00",
                "2026-03-29T04:00:00+02:00",
                "2026-03-30T04:00:00+02:00",
                "2026-03-31T04:00:00+02:00",
                "2026-04-01T04:00:00+02:00",
            ]
        else:
            # Summer time ends on Sunday 25 October: 04:00 is +01:00 from then on.
            assert restarts == [
                "2026-10-23T04:00:00+02:00",
                "2026-10-24T04:00:00+02:00",
                "2026-10-25T04:00:00+01:00",
                "2026-10-26T04:00:00+01:00",
                "2026-10-27T04:00:00+01:00",
                "2026-10-28T04:00:00+01:00",
            ]
        assert all(message.startswith("schedule nightly") for _, message in harness.audit)
        await db.call(lambda conn: conn.execute("DELETE FROM server_schedules"))


async def test_an_interval_schedule_runs_every_interval_from_its_creation(
    db: Database, mock_clock: trio.testing.MockClock
) -> None:
    now = WallClock(start=1_800_000_000.0)
    server = FakeServer(now)
    created = now()
    await add(db, "save", anchor=created, interval=900, steps=("command save", "wait 5"))
    async with scheduling(db, now, server) as harness:
        await trio.sleep(3600 + 10)  # the last run's wait step is over
        assert harness.scheduler.next_run(1) == pytest.approx(created + 5 * 900)
        await audited(harness, 4)
    saves = [round(t - created) for _, action, t in server.done if action == "command save"]
    assert saves == [900, 1800, 2700, 3600]
    stored = await db.call(lambda conn: schedule_table.of_server(conn, 1))
    assert stored[0].last_due == pytest.approx(created + 3600)
    assert stored[0].last_result.startswith("done (due at ")


async def test_a_run_missed_while_down_runs_once_at_start_within_the_grace_period(
    db: Database, mock_clock: trio.testing.MockClock
) -> None:
    now = WallClock(start=berlin(2026, 5, 4, 12))
    server = FakeServer(now)
    await add(db, "nightly", anchor=now(), cron="0 4 * * *", zone="Europe/Berlin")
    # The daemon was down from noon until 04:03 two days later: two runs were due.
    await trio.sleep(berlin(2026, 5, 6, 4, 3) - now())
    async with scheduling(db, now, server, grace=600) as harness:
        await trio.sleep(60)
        entries = await audited(harness, 2)
    assert [(a, local(t)) for _, a, t in server.done if a == "restart"] == [
        ("restart", "2026-05-06T04:03:00+02:00")
    ]
    levels = sorted((level, message.split(" (")[0]) for level, message in entries)
    assert levels == [
        ("info", "schedule nightly: done"),
        ("warning", "schedule nightly: missed a run due at 2026-05-05T02:00:00Z or earlier"),
    ]


async def test_a_run_missed_beyond_the_grace_period_is_audited_not_run(
    db: Database, mock_clock: trio.testing.MockClock
) -> None:
    now = WallClock(start=berlin(2026, 5, 4, 12))
    server = FakeServer(now)
    await add(db, "nightly", anchor=now(), cron="0 4 * * *", zone="Europe/Berlin")
    await trio.sleep(berlin(2026, 5, 5, 5, 0) - now())  # an hour late, grace is 10 minutes
    async with scheduling(db, now, server, grace=600) as harness:
        await trio.sleep(60)
        assert harness.scheduler.next_run(1) == berlin(2026, 5, 6, 4)
        entries = await audited(harness, 1)
    assert server.done == []
    assert [(level, m.split(" (")[0]) for level, m in entries] == [
        ("warning", "schedule nightly: missed a run due at 2026-05-05T02:00:00Z or earlier")
    ]
    stored = await db.call(lambda conn: schedule_table.of_server(conn, 1))
    assert stored[0].last_due == berlin(2026, 5, 5, 4)
    assert stored[0].last_result.startswith("missed a run")


async def test_two_schedules_of_one_server_never_overlap_the_second_waits(
    db: Database, mock_clock: trio.testing.MockClock
) -> None:
    now = WallClock(start=1_800_000_000.0)
    server = FakeServer(now, power_takes=100)
    created = now()
    await add(db, "a restart", anchor=created, interval=3600, steps=("restart",))
    await add(db, "b say", anchor=created, interval=3600, steps=("command say hi", "stop"))
    async with scheduling(db, now, server) as harness:
        await trio.sleep(3600 + 500)
        entries = await audited(harness, 2)
    events = [(action, round(t - created)) for _, action, t in server.done]
    # Both were due at 3600: whichever ran first, the other began only once it had ended.
    assert events in (
        [
            ("restart", 3600),
            ("restart done", 3700),
            ("command say hi", 3700),
            ("stop", 3700),
            ("stop done", 3800),
        ],
        [
            ("command say hi", 3600),
            ("stop", 3600),
            ("stop done", 3700),
            ("restart", 3700),
            ("restart done", 3800),
        ],
    )
    waited = [m for _, m in entries if "waits for another schedule of game" in m]
    assert len(waited) == 1


async def test_conditions_skip_a_run_and_the_backup_step_makes_a_backup(
    db: Database, mock_clock: trio.testing.MockClock
) -> None:
    now = WallClock(start=1_800_000_000.0)
    server = FakeServer(now, players=0)
    created = now()
    players = await add(db, "players", anchor=created, interval=600, steps=("command say hi",))
    running = await add(db, "running", anchor=created, interval=600, steps=("command save",))
    backup = ("command a", "backup")
    await add(db, "backup", anchor=created + 660 - 3600, interval=3600, steps=backup)

    def only(s: Schedule, **flags: bool) -> None:
        def write(conn: sqlite3.Connection) -> None:
            schedule_table.replace(conn, msgspec.structs.replace(s, **flags))

        pending.append(write)

    pending: list[Any] = []
    only(players, only_if_players=True)
    only(running, only_if_running=True)
    for write in pending:
        await db.call(write)
    server.running = False
    async with scheduling(db, now, server) as harness:
        await trio.sleep(1500)
        entries = await audited(harness, 3)
    results = sorted({m.split(" (due")[0] for _, m in entries if "waits for" not in m})
    assert results == [
        "schedule backup: done",
        "schedule players: skipped: the server is not running (no players online)",
        "schedule running: skipped: the server is not running",
    ]
    steps = [(action, stamp - created) for _, action, stamp in server.done]
    assert steps == [("command a", 660.0), ("backup", 660.0), ("backup done", 1360.0)]


async def test_a_step_longer_than_the_step_timeout_fails_the_run(
    db: Database, mock_clock: trio.testing.MockClock
) -> None:
    now = WallClock(start=1_800_000_000.0)
    server = FakeServer(now, power_takes=5000)  # the harness's step timeout is 600
    created = now()
    await add(db, "slow", anchor=created, interval=3600, steps=("restart", "command never"))
    async with scheduling(db, now, server) as harness:
        await trio.sleep(3600 + 700)
        entries = await audited(harness, 1)
    assert [m.split(" (due")[0] for _, m in entries] == [
        "schedule slow: failed at step 1 (restart): not done within 600 seconds "
        "(schedules.step_timeout)"
    ]
    assert [action for _, action, _ in server.done] == ["restart"]
    assert not harness.scheduler.running(1)


async def test_close_stops_scheduling(db: Database, mock_clock: trio.testing.MockClock) -> None:
    now = WallClock(start=1_800_000_000.0)
    server = FakeServer(now)
    await add(db, "save", anchor=now(), interval=600, steps=("command save",))
    async with scheduling(db, now, server) as harness:
        await trio.sleep(601)
        harness.scheduler.close()
        await trio.sleep(6000)
        assert not harness.scheduler.run_now(1)
    assert [action for _, action, _ in server.done] == ["command save"]
