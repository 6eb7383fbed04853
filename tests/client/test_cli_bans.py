"""``leosuite ban ...`` as subprocesses against the in-process daemon's admin API, with
HOME in tmp_path so the saved token is isolated."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import pytest
import trio

from leosuite.client.commands.bans import parse_expiry
from tests.helpers.cli import Cli
from tests.helpers.daemon import RunningDaemon

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("1h", 3600), ("1H30m", 5400), ("2d", 172800), ("1w", 604800)],
)
def test_durations_become_iso_dates(text: str, seconds: int) -> None:
    expected = datetime.datetime.fromtimestamp(NOW + seconds, tz=datetime.UTC)
    assert parse_expiry(text, NOW) == expected.isoformat().replace("+00:00", "Z")


def test_dates_pass_through_and_junk_is_refused() -> None:
    assert parse_expiry("2030-01-02T03:04:05+02:00", NOW) == "2030-01-02T03:04:05+02:00"
    assert parse_expiry("", NOW) == ""
    for bad in ("soon", "0h", "1y", "h", "-1h", "1.5h"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_expiry(bad, NOW)


async def test_ban_commands(daemon: RunningDaemon, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    data = ["--data-dir", str(tmp_path / "data")]  # where the daemon's endpoints.json is
    bans = daemon.ctx.bans
    with trio.fail_after(90):
        not_yet = await cli.run("ban", "list", *data, expect=1)
        assert b"not logged in" in not_yet.stderr
        await cli.login(daemon.endpoints.http)
        assert (await cli.run("ban", "list", *data)).stdout == b"(no bans)\n"

        first = await cli.json(
            "ban", "add", "127.0.0.2", "--expires", "1h", "--comment", "flood", *data
        )
        assert (first["ip"], first["subnet"], first["comment"]) == ("127.0.0.2", 0, "flood")
        assert first["appliesToYou"] is False
        expires = datetime.datetime.fromisoformat(first["expires"])
        left = expires - datetime.datetime.now(tz=datetime.UTC)
        assert datetime.timedelta(minutes=58) < left <= datetime.timedelta(hours=1)
        assert bans.is_banned("127.0.0.2") is not None

        # --admin-url instead of the data dir
        url = ["--admin-url", daemon.endpoints.admin]
        text = (await cli.run("ban", "add", "10.0.0.0/8", *url)).stdout.decode()
        assert text.startswith("ban #2: 10.0.0.0/8 (never expires)")
        await cli.run(
            "ban", "add", "2001:db8::", "--subnet", "32", "--expires", "2999-01-01T00:00:00Z", *url
        )
        listed = await cli.json("ban", "list", *url)
        assert [(b["id"], b["ip"], b["subnet"]) for b in listed] == [
            (1, "127.0.0.2", 0),
            (2, "10.0.0.0", 8),
            (3, "2001:db8::", 32),
        ]
        assert listed[2]["expires"] == "2999-01-01T00:00:00Z"
        table = (await cli.run("ban", "list", *url)).stdout.decode().splitlines()
        assert table[0].split() == ["ID", "ADDRESS", "EXPIRES", "ADDED", "COMMENT"]
        assert table[1].split()[:2] == ["1", "127.0.0.2"]
        assert table[1].split()[-1] == "flood"
        assert table[2].split()[:3] == ["2", "10.0.0.0/8", "never"]

        bad = await cli.run("ban", "add", "999.1.1.1", *url, expect=1)
        assert b"ip" in bad.stderr
        assert b"HTTP 400" in bad.stderr
        assert (
            b"--expires"
            in (await cli.run("ban", "add", "1.2.3.4", "--expires", "soon", expect=2)).stderr
        )
        wide = await cli.run("ban", "add", "1.2.3.4", "--subnet", "33", *url, expect=1)
        assert b"subnet" in wide.stderr

        removed = await cli.run("ban", "remove", "1", *url)
        assert removed.stdout == b"ban #1 removed\n"
        assert bans.is_banned("127.0.0.2") is None
        again = await cli.run("ban", "remove", "1", *url, expect=1)
        assert b"no ban with id 1" in again.stderr
        assert await cli.json("ban", "remove", "2", *url) == {"id": 2, "status": "ok"}

        own = (await cli.run("ban", "add", "127.0.0.1", "--comment", "oops", *url)).stdout
        assert b"warning: this ban covers your own address (127.0.0.1)" in own
        refused = await cli.run("ban", "list", *url, expect=1)
        assert b"your address is banned" in refused.stderr
        for ban in bans.bans():
            await bans.remove(ban.id)
        # the ban ended the token last used from the banned address: log in again
        ended = await cli.run("ban", "list", *url, expect=1)
        assert b"HTTP 401" in ended.stderr
        await cli.login(daemon.endpoints.http)
        assert (await cli.run("ban", "list", *url)).stdout == b"(no bans)\n"
