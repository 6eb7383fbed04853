"""Retention by age (``backups.keep_days``) with an injected wall clock: a backup service
over a real daemon's store and servers, whose clock the test moves days ahead, removes
the backups older than the limit after each new one, never the one just made, and
audits each removal; negative and huge retention, quota and concurrency settings are
refused at start."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import trio

from leosuite.audit import Actor
from leosuite.backups.service import BackupService
from leosuite.errors import ConfigError
from leosuite.settings import load_settings
from tests.helpers.admin_accounts import server_audit
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.http import api_client
from tests.helpers.servers import FAST_DEMO

DAY = 86400.0


class Clock:
    """Unix seconds that move only when the test says so."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def test_keep_days_with_an_injected_clock(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(120):
        async with running_daemon(settings) as daemon, api_client(daemon) as admin:
            await admin.create("game", "demo-game", FAST_DEMO)
            folder = Path(settings.data_dir) / "servers" / "game"
            (folder / "level.dat").write_bytes(b"level\n" * 100)
            ctx = daemon.ctx
            clock = Clock(1_800_000_000.0)
            root = tmp_path / "kept"
            service = BackupService(
                db=ctx.db,
                manager=ctx.servers,
                settings=msgspec.structs.replace(settings.backups, keep_days=1.0),
                root=root,
                audit=ctx.audit,
                now=clock,
            )
            record = ctx.servers.record("game")
            actor = Actor(name="test")
            async with trio.open_nursery() as nursery:
                await nursery.start(service.run)

                async def make() -> int:
                    made = await service.create(record, actor=actor, by="test")
                    return made.id

                async def kept() -> list[int]:
                    return [b.id for b in await service.listing(record)]

                first = await make()
                clock.now += 0.5 * DAY
                second = await make()
                assert await kept() == [second, first]  # half a day old: kept
                clock.now += 0.75 * DAY
                third = await make()
                # The first is 1.25 days old now: removed, file and record.
                assert await kept() == [third, second]
                clock.now += 10 * DAY
                fourth = await make()
                # Everything else is older than a day; the one just made stays.
                assert await kept() == [fourth]
                files = sorted(p.name for p in root.rglob("*") if p.is_file())
                assert files == [b.file for b in await service.listing(record)]
                # A clock set back (the backup just made looks older than the others)
                # still never removes the new one.
                clock.now -= 20 * DAY
                fifth = await make()
                assert fifth in await kept()
                nursery.cancel_scope.cancel()
            messages = [e.message for e in await server_audit(daemon, "game")]
            removed = [
                m
                for m in messages
                if m.endswith("removed by retention (backups.keep, backups.keep_days)")
            ]
            assert len(removed) == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("keep", -1),
        ("keep", 10**30),
        ("keep_days", -1.0),
        ("keep_days", float("nan")),
        ("keep_days", float("inf")),
        ("quota_bytes", -5),
        ("quota_bytes", 2**80),
        ("max_concurrent", 0),
        ("max_concurrent", 10**9),
        ("command_wait", -1.0),
    ],
)
def test_negative_and_huge_limits_are_refused(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"backups.{name}: must be at least"):
        load_settings(None, environ={}, overrides={"backups": {name: value}})
