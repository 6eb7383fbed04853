"""The range of every numeric setting: a value outside it stops start-up.

:func:`check_ranges` checks each number of a :class:`~leosuite.settings.Settings`
against :data:`RANGES` and raises :class:`~leosuite.errors.ConfigError` naming the key
and its range (NaN and infinities are outside every range). Every numeric setting has
an entry here; a test fails for one that has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from .errors import ConfigError

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["RANGES", "Range", "check_ranges", "numeric_keys"]

DAY = 86400.0
YEAR = 366 * DAY
#: Counts and rates: the upper bound only keeps out the absurd.
MANY = 10**9
#: Sizes in bytes: 1 TiB.
HUGE = 2**40


@dataclass(frozen=True, slots=True)
class Range:
    low: float
    high: float
    #: ``low`` itself is refused (the value must be greater than it).
    above: bool = False
    #: What the low end means, when it means something (``0 turns it off``).
    note: str = ""

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        low_ok = value > self.low if self.above else value >= self.low
        return low_ok and value <= self.high

    def describe(self) -> str:
        low = f"greater than {_number(self.low)}" if self.above else f"at least {_number(self.low)}"
        text = f"must be {low} and at most {_number(self.high)}"
        return f"{text} ({self.note})" if self.note else text


def _number(value: float) -> str:
    """A bound as a person writes it: whole numbers in full (up to 16 digits)."""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}"


def _positive(high: float) -> Range:
    return Range(0, high, above=True)


def _count(high: float = MANY) -> Range:
    return Range(1, high)


def _off(high: float, note: str) -> Range:
    return Range(0, high, note=note)


RANGES: dict[str, Range] = {
    "daemon.shutdown_timeout": _positive(DAY),
    "daemon.disk_warn_free_bytes": _off(2**60, "0 turns it off"),
    "daemon.disk_warn_free_percent": _off(100, "0 turns it off"),
    "daemon.disk_check_interval": _positive(DAY),
    "http.max_body_bytes": _count(HUGE),
    "http.read_timeout": _positive(DAY),
    "http.keep_alive_timeout": _positive(DAY),
    "http.max_connections_per_ip": _count(),
    "http.request_rate": _positive(MANY),
    "http.request_burst": _count(),
    "ws.max_message_bytes": _count(HUGE),
    "ws.max_connections": _count(),
    "ws.max_connections_per_ip": _count(),
    "ws.request_rate": _positive(MANY),
    "ws.request_burst": _count(),
    "ws.max_inflight": _count(),
    "ws.queue_size": _count(),
    "ws.send_timeout": _positive(DAY),
    "ws.ping_interval": _positive(DAY),
    "ws.handshake_timeout": _positive(DAY),
    "ws.console_batch_bytes": _count(HUGE),
    "ws.console_max_lag": _count(HUGE),
    "ws.login_attempts_per_minute": _count(),
    "admin.max_connections_per_ip": _count(),
    "auth.pow_difficulty": Range(0, 64),
    "auth.pow_count": _count(1000),
    "auth.pow_max_difficulty": Range(0, 64),
    "auth.login_info_ttl": _positive(DAY),
    "auth.token_ttl": _positive(YEAR),
    "auth.failure_window": _positive(YEAR),
    "auth.min_password_length": _count(1024),
    "auth.hash_time_cost": _count(1000),
    "auth.hash_memory_kib": Range(8, 2**32 - 1),
    "auth.hash_parallelism": _count(2**24 - 1),
    "auth.hash_concurrency": _count(1024),
    "auth.max_pending_logins": _count(),
    "auth.max_pending_logins_per_ip": _count(),
    "auth.login_info_per_minute": _count(),
    "auth.pow_account_max_extra": Range(0, 64),
    "auth.token_max_lifetime": _positive(YEAR),
    "housekeeping.interval": _positive(DAY),
    "housekeeping.audit_keep_days": _off(36525, "0 means no age limit"),
    "housekeeping.audit_keep_entries": _off(2**62, "0 means no count limit"),
    "servers.console_retention_bytes": Range(64 * 1024, 2**62),
    "servers.console_ring_bytes": Range(0, 2**62),
    "servers.console_file_max_bytes": _off(2**62, "0 means 16 MiB"),
    "servers.console_keep_files": Range(0, 10**6),
    "servers.log_max_read": _count(HUGE),
    "servers.log_max_wait": _off(DAY, "0 answers at once"),
    "servers.stats_interval": _positive(DAY),
    "servers.command_max_bytes": _count(2**20),
    "servers.backoff_initial": _positive(DAY),
    "servers.backoff_max": _positive(DAY),
    "servers.backoff_reset_after": _positive(YEAR),
    "servers.max_per_account": _off(MANY, "0 means no limit"),
    "servers.kept_days": _off(36525, "0 keeps them for ever"),
    "limits.max_memory_mb": _off(2**22, "0 means no ceiling"),
    "limits.max_cpu_percent": _off(100 * 4096, "0 means no ceiling"),
    "limits.max_pids": _off(2**22, "0 means no ceiling"),
    "limits.default_memory_mb": _off(2**22, "0 means no limit"),
    "limits.default_cpu_percent": _off(100 * 4096, "0 means no limit"),
    "limits.default_pids_max": _off(2**22, "0 means no limit"),
    "schedules.grace_seconds": _off(YEAR, "0 never runs a run missed while the daemon was down"),
    "schedules.step_timeout": _positive(DAY),
    "backups.keep": _off(10**6, "0 means no count limit"),
    "backups.keep_days": _off(36525, "0 means no age limit"),
    "backups.quota_bytes": _off(2**62, "0 means no quota"),
    "backups.max_concurrent": _count(64),
    "backups.command_wait": Range(0, 3600),
    "store.retry_for": Range(0, 3600),
    "store.cache_kib": Range(64, 2**20),
    "node.heartbeat_interval": Range(0.01, 3600),
    "node.heartbeat_timeout": Range(0.03, DAY),
    "node.console_token_lifetime": Range(1, 3600),
    "node.console_key_rotation": Range(3600, 365 * DAY),
    "servers.files_max_upload_bytes": _count(HUGE),
    "servers.install_max_bytes": _count(HUGE),
    "servers.install_concurrency": _count(1000),
    "servers.logfile_threads": _count(64),
    "servers.install_timeout": _positive(YEAR),
    "community.session_count_limit": _count(),
    "community.session_size_limit": _count(HUGE),
    "community.message_max_bytes": _count(HUGE),
    "community.default_max_users": _count(),
    "community.channels_per_member": _count(),
    "community.channel_creations_per_minute": _count(),
    "community.channels_per_address": _count(),
    "community.idle_time_limit": _off(YEAR, "0 never closes an idle session"),
    "community.history_replay": Range(0, MANY),
    "community.chat_queue_size": _count(),
    "community.room_poll_max_wait": _positive(DAY),
    "community.room_message_retention": _off(YEAR, "0 keeps them until the room closes"),
    "community.room_idle_warning": Range(0, YEAR),
    "community.room_count_limit": _count(),
    "community.room_creations_per_hour": _count(),
    "community.wrong_passwords_per_ip": _count(),
    "community.wrong_passwords_per_session": _count(),
    "community.wrong_password_window": _positive(YEAR),
    "community.guest_logins_per_minute": _count(),
}


def _is_number(annotation: object) -> bool:
    """``int``, ``float``, or one of them or ``None``."""
    if annotation in (int, float):
        return True
    args = getattr(annotation, "__args__", ())
    return bool(args) and all(a in (int, float, type(None)) for a in args)


def numeric_keys(settings_type: type[msgspec.Struct]) -> list[str]:
    """Every ``section.key`` of ``settings_type`` whose value is a number."""
    keys = []
    for section in msgspec.structs.fields(settings_type):
        if not isinstance(section.type, type):
            continue
        for field in msgspec.structs.fields(section.type):
            if _is_number(field.type):
                keys.append(f"{section.name}.{field.name}")
    return keys


def check_ranges(settings: Settings) -> None:
    """Refuse the first number outside its range (``None``: the setting is not set)."""
    for key in numeric_keys(type(settings)):
        section, name = key.split(".")
        value = getattr(getattr(settings, section), name)
        if value is None:
            continue
        found = RANGES.get(key)
        if found is not None and not found.holds(value):
            raise ConfigError(f"{key}: {found.describe()} (got {value})", field=key)
    ws = settings.ws
    # A console subscriber that lags is moved to one batch before the end: a smaller
    # lag bound would move it backwards and send bytes twice.
    if ws.console_max_lag < ws.console_batch_bytes:
        raise ConfigError(
            "ws.console_max_lag: must be at least ws.console_batch_bytes "
            f"({ws.console_batch_bytes}) (got {ws.console_max_lag})",
            field="ws.console_max_lag",
        )
