"""What a schedule is: when it runs (a cron expression in a time zone, or an interval)
and what it does (a short list of steps), checked before anything is stored.

A cron expression has the five fields of crontab(5) and is read by ``cronsim``, whose
daylight-saving rules are Debian cron's: a job at a fixed local time runs once a day,
at the first valid minute when the clock skips it and once when the clock repeats it.
An interval schedule runs every ``interval`` seconds counted from when it was created
or last changed. Every time a schedule is shown or compared is unix seconds.
"""

from __future__ import annotations

import datetime
import math
import re
import zoneinfo
from typing import Literal

import msgspec
from cronsim import CronSim, CronSimError

from ..errors import InvalidInput

__all__ = [
    "DEFAULT_ZONE",
    "MAX_INTERVAL",
    "MAX_SCHEDULES_PER_SERVER",
    "MAX_STEPS",
    "MAX_WAIT",
    "MIN_INTERVAL",
    "STEP_KINDS",
    "Schedule",
    "Step",
    "Timing",
    "check_name",
    "next_due",
    "parse_steps",
    "parse_timing",
]

#: The zone of a schedule that names none: the same instant on every machine.
DEFAULT_ZONE = "UTC"
MIN_INTERVAL = 10.0
MAX_INTERVAL = 366 * 86400.0
MAX_STEPS = 32
#: The longest ``wait`` step, in seconds.
MAX_WAIT = 3600.0
MAX_SCHEDULES_PER_SERVER = 50
MAX_LINE = 1000
MAX_CRON = 200

StepKind = Literal["command", "start", "stop", "restart", "backup", "wait"]
STEP_KINDS: tuple[StepKind, ...] = ("command", "start", "stop", "restart", "backup", "wait")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")


class Step(msgspec.Struct, frozen=True):
    kind: StepKind
    #: The command line of ``command``; the seconds of ``wait`` as text; else "".
    arg: str = ""

    def text(self) -> str:
        return f"{self.kind} {self.arg}" if self.arg else self.kind

    @property
    def seconds(self) -> float:
        return float(self.arg) if self.kind == "wait" else 0.0


class Timing(msgspec.Struct, frozen=True, kw_only=True):
    """When a schedule is due: ``cron`` in ``zone``, or every ``interval`` seconds."""

    cron: str | None = None
    interval: float | None = None
    zone: str = DEFAULT_ZONE


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    server_id: int
    name: str
    timing: Timing
    steps: tuple[Step, ...]
    enabled: bool = True
    only_if_running: bool = False
    only_if_players: bool = False
    #: The account that created it: power actions are recorded as started by it.
    created_by: int | None = None
    #: Interval schedules count from here (creation or the last change).
    anchor_at: float = 0.0
    #: The due time the scheduler last handled (ran, skipped or missed), if any.
    last_due: float | None = None
    last_result: str = ""


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            "a schedule name is 1 to 64 letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit",
            field="name",
        )
    return name


def _zone(name: str) -> zoneinfo.ZoneInfo:
    if not name or len(name) > 64 or name.startswith("/") or ".." in name:
        raise InvalidInput(f"unknown time zone {name[:64]!r}", field="zone")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidInput(f"unknown time zone {name[:64]!r}", field="zone") from exc


def parse_timing(cron: str | None, interval: float | None, zone: str | None) -> Timing:
    """A checked :class:`Timing`: exactly one of ``cron`` and ``interval``."""
    if (cron is None) == (interval is None):
        raise InvalidInput("give either cron or interval (not both)", field="cron")
    zone_name = DEFAULT_ZONE if zone is None else zone
    tz = _zone(zone_name)
    if cron is not None:
        text = " ".join(cron.split())
        if len(text) > MAX_CRON or len(text.split()) != 5:
            raise InvalidInput(
                "a cron expression has five fields: minute hour day-of-month month "
                "day-of-week (as in crontab)",
                field="cron",
            )
        try:
            next(CronSim(text, datetime.datetime(2026, 1, 1, tzinfo=tz)))
        except (CronSimError, StopIteration) as exc:
            raise InvalidInput(f"invalid cron expression {text!r}: {exc}", field="cron") from exc
        return Timing(cron=text, zone=zone_name)
    assert interval is not None
    if not (math.isfinite(interval) and MIN_INTERVAL <= interval <= MAX_INTERVAL):
        raise InvalidInput(
            f"interval must be {MIN_INTERVAL:g} to {MAX_INTERVAL:g} seconds", field="interval"
        )
    return Timing(interval=float(interval), zone=zone_name)


def parse_steps(lines: list[str]) -> tuple[Step, ...]:
    """``command <line>``, ``start``, ``stop``, ``restart``, ``backup``, ``wait <seconds>``."""
    if not lines:
        raise InvalidInput("a schedule needs at least one step", field="steps")
    if len(lines) > MAX_STEPS:
        raise InvalidInput(f"a schedule has at most {MAX_STEPS} steps", field="steps")
    return tuple(_step(line) for line in lines)


def _step(line: str) -> Step:
    kind, _, arg = line.strip().partition(" ")
    arg = arg.strip()
    shown = line[:60]
    if kind == "command":
        if not arg or len(arg) > MAX_LINE or any(c in arg for c in "\r\n\0"):
            raise InvalidInput(
                f"step {shown!r}: command needs one line of 1 to {MAX_LINE} characters",
                field="steps",
            )
        return Step("command", arg)
    if kind == "wait":
        try:
            seconds = float(arg)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and 0 <= seconds <= MAX_WAIT):
            raise InvalidInput(
                f"step {shown!r}: wait needs 0 to {MAX_WAIT:g} seconds", field="steps"
            )
        return Step("wait", f"{seconds:g}")
    for bare in ("start", "stop", "restart", "backup"):
        if kind == bare and not arg:
            return Step(bare)
    raise InvalidInput(
        f"unknown step {shown!r} (steps are command <line>, start, stop, restart, backup, "
        "wait <seconds>)",
        field="steps",
    )


def next_due(timing: Timing, *, after: float, anchor: float) -> float:
    """The first time strictly after ``after`` the schedule is due (unix seconds)."""
    if timing.interval is not None:
        if after < anchor:
            return anchor + timing.interval
        periods = math.floor((after - anchor) / timing.interval) + 1
        return anchor + periods * timing.interval
    assert timing.cron is not None
    tz = zoneinfo.ZoneInfo(timing.zone)
    start = datetime.datetime.fromtimestamp(math.floor(after), tz=tz)
    return next(CronSim(timing.cron, start)).timestamp()
