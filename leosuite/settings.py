"""Settings: one TOML file, then ``LEOSUITE_<SECTION>_<KEY>`` environment variables, then flags.

Everything is decoded into frozen ``msgspec.Struct``s, so an unknown key or a wrong
type is a :class:`~leosuite.errors.ConfigError` that names the key. Every field is
documented in ``docs/configuration.md``; a test fails when one is not.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import msgspec

from .errors import ConfigError
from .forwarded import check_forwarded_header, parse_networks
from .public_address import parse_public_address, parse_public_url, public_urls
from .settings_ranges import check_ranges

__all__ = [
    "ENV_PREFIX",
    "RESERVED_ENV",
    "SECRET_SETTINGS",
    "Address",
    "Settings",
    "load_settings",
    "parse_address",
    "settings_as_dict",
]

ENV_PREFIX = "LEOSUITE_"
#: Environment variables that are not settings: read elsewhere by the daemon and its
#: clients, or by the project's test and benchmark scripts.
RESERVED_ENV = frozenset(
    {
        "LEOSUITE_ADMIN_PASSWORD",
        "LEOSUITE_CONFIG",
        "LEOSUITE_SERVER_ID",
        "LEOSUITE_TOKEN",
        "LEOSUITE_CHROMIUM",
        "LEOSUITE_TEST_OUTPUT",
        "LEOSUITE_TEST_STORE",
        "LEOSUITE_DOC_SCREENSHOTS",
        "LEOSUITE_BENCH_SRC",
    }
)

KiB = 1024
MiB = 1024 * KiB


class DaemonSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    data_dir: str = "./leosuite-data"
    instance_name: str = "leosuite"
    shutdown_timeout: float = 60.0
    log_level: str = "info"
    #: On SIGTERM/SIGINT: "stop" every server, then exit; or "leave" them running.
    on_exit: str = "stop"
    #: The data directory's filesystem is "low" below either (0 turns one off).
    disk_warn_free_bytes: int = 1024 * MiB
    disk_warn_free_percent: float = 5.0
    disk_check_interval: float = 10.0


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    listen: str = "127.0.0.1:8975"
    max_body_bytes: int = 1 * MiB
    read_timeout: float = 60.0
    keep_alive_timeout: float = 5.0
    #: Host names the daemon is served under besides loopback and its own addresses.
    allowed_hosts: list[str] = msgspec.field(default_factory=list)
    max_connections_per_ip: int = 64
    request_rate: float = 50.0
    request_burst: int = 200
    #: Serve the protocol of GameConsole's web client at ``/service``.
    gameconsole_service: bool = False
    #: Browser origins (``https://host:port``) whose pages may call ``/service`` (CORS).
    cors_origins: list[str] = msgspec.field(default_factory=list)
    #: The dashboard's URL as clients reach it (a TLS reverse proxy's), e.g.
    #: ``https://games.example.org``; "": the address the page was loaded from.
    public_url: str = ""
    #: Proxies (addresses, networks) whose forwarding header names the client.
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    #: That header: ``X-Forwarded-For`` or ``Forwarded``.
    forwarded_header: str = "X-Forwarded-For"


class WsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    listen: str = "127.0.0.1:8976"
    max_message_bytes: int = 1 * MiB
    allowed_origins: list[str] = msgspec.field(default_factory=list)
    max_connections: int = 10000
    max_connections_per_ip: int = 64
    request_rate: float = 50.0
    request_burst: int = 200
    max_inflight: int = 16
    queue_size: int = 64
    send_timeout: float = 10.0
    ping_interval: float = 20.0
    handshake_timeout: float = 5.0
    console_batch_bytes: int = 256 * KiB
    console_max_lag: int = 4 * MiB
    login_attempts_per_minute: int = 10
    echo_path: bool = False
    #: ``HOST[:PORT]`` chat clients reach this listener under ("": its own address).
    public_address: str = ""
    #: The WebSocket API's URL as clients reach it ("": see ``http.public_url``).
    public_url: str = ""


class AdminSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    listen: str = "127.0.0.1:8977"
    max_connections_per_ip: int = 16


class MetricsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: A token a Prometheus scraper sends as ``Authorization: Bearer`` for ``/metrics``
    #: on the admin listener instead of an ADMIN account's credentials ("": none).
    scrape_token: str = ""


#: The most password hashes at once by default (each holds ``hash_memory_kib``).
HASH_THREADS_MAX = 4


def _hash_threads() -> int:
    """Password hashes at once by default: the CPUs this process may use less one (the
    daemon's own thread keeps a core while a login storm hashes), at least one and at
    most :data:`HASH_THREADS_MAX`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity on this platform
        cpus = os.cpu_count() or 1
    return max(1, min(HASH_THREADS_MAX, cpus - 1))


class AuthSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pow_difficulty: int = 12
    pow_count: int = 4
    pow_max_difficulty: int = 20
    login_info_ttl: float = 120.0
    token_ttl: float = 1200.0
    failure_window: float = 900.0
    min_password_length: int = 8
    hash_time_cost: int = 2
    hash_memory_kib: int = 19456
    hash_parallelism: int = 1
    hash_concurrency: int = msgspec.field(default_factory=_hash_threads)
    max_pending_logins: int = 10000
    max_pending_logins_per_ip: int = 16
    login_info_per_minute: int = 60
    pow_account_max_extra: int = 2
    token_max_lifetime: float = 86400.0


class StoreSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    path: str = ""
    #: A PostgreSQL store ("postgresql://user:password@host:port/database"); "": SQLite at path.
    url: str = ""
    #: How long a lost PostgreSQL connection is retried before calls fail (seconds).
    retry_for: float = 30.0
    #: The SQLite page cache of the store's connection, in KiB (SQLite's own default).
    cache_kib: int = 2000


#: A node's name: 1-64 of a-z 0-9 _ . -, not starting with - or . (a server name that
#: may hold dots, so a host name fits).
NODE_NAME_RE = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,63}", re.ASCII)


def _host_node_name() -> str:
    """This host's name as a node name (lower case, cut to 64); "node" when it cannot be one."""
    name = socket.gethostname().lower()[:64]
    return name if NODE_NAME_RE.fullmatch(name) else "node"


class NodeSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: This daemon's name among the nodes sharing a store (default: the host name).
    name: str = msgspec.field(default_factory=_host_node_name)
    #: The HTTP API's URL other nodes and clients reach this node at ("": http.public_url,
    #: else the HTTP listener's address).
    public_url: str = ""
    #: Seconds between two heartbeats this node writes to the store.
    heartbeat_interval: float = 5.0
    #: A node whose last heartbeat is older than this is shown unreachable (seconds).
    heartbeat_timeout: float = 15.0
    #: Seconds a console token lives: the time a client has to open the console with it.
    console_token_lifetime: float = 60.0
    #: Seconds each console token signing key signs before the next one (the same on
    #: every node; tokens of the previous key stay valid until they expire).
    console_key_rotation: float = 86400.0


class HousekeepingSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    interval: float = 30.0
    #: Audit log entries older than this many days are purged (0: no age limit).
    audit_keep_days: float = 90.0
    #: Only the newest this many audit log entries are kept (0: no count limit).
    audit_keep_entries: int = 100_000


class ServersSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: Console bytes kept on disk per server (older ones are dropped); None: the
    #: default, or what the older keys below add up to.
    console_retention_bytes: int | None = None
    #: Older keys, still read: retention is file_max_bytes x (keep_files + 1).
    console_ring_bytes: int | None = None
    console_file_max_bytes: int | None = None
    console_keep_files: int | None = None
    log_max_read: int = 64 * KiB
    log_max_wait: float = 30.0
    stats_interval: float = 2.0
    command_max_bytes: int = 4096
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    backoff_reset_after: float = 60.0
    #: The most servers an account without ADMIN may own (0: no limit).
    max_per_account: int = 10
    #: The system user servers run as when neither they nor their type name one
    #: ("": the daemon's own user).
    user: str = ""
    #: Days the files and logs of destroyed servers are kept before housekeeping
    #: removes them (0: kept for ever).
    kept_days: float = 30.0
    #: The largest file one upload into a server's directory may bring.
    files_max_upload_bytes: int = 1024 * MiB
    #: The largest file one install step may download.
    install_max_bytes: int = 2048 * MiB
    #: How many install downloads run at once (worker threads of their own); more wait.
    install_concurrency: int = 4
    #: How many worker threads read, stat and list followed log files at once.
    logfile_threads: int = 4
    #: Seconds one install download may take in all before it fails.
    install_timeout: float = 3600.0
    #: Mojang's version manifest, where ``minecraft_jar`` install steps find versions.
    minecraft_manifest_url: str = "https://piston-meta.mojang.com/mc/game/version_manifest_v2.json"

    @property
    def retention_bytes(self) -> int:
        """Console bytes kept on disk per server."""
        if self.console_retention_bytes is not None:
            return self.console_retention_bytes
        if self.console_file_max_bytes is not None or self.console_keep_files is not None:
            file_max = self.console_file_max_bytes or 16 * MiB
            return max(file_max * ((self.console_keep_files or 0) + 1), 64 * KiB)
        return 64 * MiB


class SchedulesSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: A run due while the daemon was not running runs at start when it was due at
    #: most this many seconds ago; older ones are audited as missed.
    grace_seconds: float = 600.0
    #: The longest one step of a schedule may take (a ``wait`` step: its own length).
    step_timeout: float = 300.0


class BackupsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: Where backups are written, one subdirectory per server id ("": <data_dir>/backups).
    dir: str = ""
    #: How new archives are compressed: "zstd" or "gzip".
    compression: str = "zstd"
    #: Backups kept per server, newest first, after each new one (0: no count limit).
    keep: int = 0
    #: Days a backup is kept, checked after each new one (0: no age limit).
    keep_days: float = 0.0
    #: Bytes of backups an account's servers may hold together (0: no limit; ADMIN exempt).
    quota_bytes: int = 0
    #: Backups and restores that run at once, daemon-wide (the others wait their turn).
    max_concurrent: int = 1
    #: Seconds waited after a running server's backup_before commands, before archiving.
    command_wait: float = 2.0


class LimitsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    #: Each server in a cgroup of its own: "auto" where one can be made, "on" (the
    #: daemon does not start without one), "off".
    enabled: str = "auto"
    #: The most a non-ADMIN owner may give a server (0: no ceiling).
    max_memory_mb: int = 0
    max_cpu_percent: int = 0
    max_pids: int = 0
    #: What a server that sets none gets (0: no limit).
    default_memory_mb: int = 0
    default_cpu_percent: int = 0
    default_pids_max: int = 0
    #: The directory made below the daemon's own cgroup for the servers' groups.
    cgroup_name: str = "leosuite"
    #: Where the cgroup filesystems are mounted.
    cgroup_mount: str = "/sys/fs/cgroup"


class CommunitySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    session_count_limit: int = 100
    session_size_limit: int = 5 * MiB
    message_max_bytes: int = 16 * KiB
    default_max_users: int = 100
    channels_per_member: int = 50
    channel_creations_per_minute: int = 60
    channels_per_address: int = 50
    allow_guests: bool = True
    allow_guest_hosts: bool = True
    enable_persistence: bool = True
    welcome_message: str = ""
    idle_time_limit: float = 6 * 3600.0
    history_replay: int = 50
    registration: bool = False
    chat_queue_size: int = 256
    room_poll_max_wait: float = 30.0
    room_message_retention: float = 600.0
    room_idle_warning: float = 300.0
    room_count_limit: int = 100
    room_creations_per_hour: int = 20
    rooms_require_account: bool = False
    wrong_passwords_per_ip: int = 10
    wrong_passwords_per_session: int = 30
    wrong_password_window: float = 600.0
    guest_logins_per_minute: int = 30


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    daemon: DaemonSettings = msgspec.field(default_factory=DaemonSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    ws: WsSettings = msgspec.field(default_factory=WsSettings)
    admin: AdminSettings = msgspec.field(default_factory=AdminSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    node: NodeSettings = msgspec.field(default_factory=NodeSettings)
    housekeeping: HousekeepingSettings = msgspec.field(default_factory=HousekeepingSettings)
    servers: ServersSettings = msgspec.field(default_factory=ServersSettings)
    community: CommunitySettings = msgspec.field(default_factory=CommunitySettings)
    limits: LimitsSettings = msgspec.field(default_factory=LimitsSettings)
    schedules: SchedulesSettings = msgspec.field(default_factory=SchedulesSettings)
    backups: BackupsSettings = msgspec.field(default_factory=BackupsSettings)

    @property
    def data_dir(self) -> Path:
        return Path(self.daemon.data_dir)

    @property
    def backups_dir(self) -> Path:
        return Path(self.backups.dir) if self.backups.dir else self.data_dir / "backups"

    @property
    def db_path(self) -> Path:
        return Path(self.store.path) if self.store.path else self.data_dir / "leosuite.db"


class Address(msgspec.Struct, frozen=True):
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(value: str, *, key: str) -> Address:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6); port 0 picks a free port."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ConfigError(f"{key}: {value!r} is not HOST:PORT", field=key)
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"{key}: port {port} is out of range 0-65535", field=key)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(
                f"{key}: {host!r} is not an IP address (use e.g. 127.0.0.1, 0.0.0.0 or [::1])",
                field=key,
            ) from None
    return Address(host, port)


def _check_host_name(value: str) -> None:
    """An ``http.allowed_hosts`` entry is a bare host name or address (``[v6]`` for
    IPv6), not a URL."""
    name = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if not name or any(c in name for c in "/@?#[] \t") or (":" in name and name == value):
        raise ConfigError(
            f"http.allowed_hosts: {value!r} is not a host name (e.g. dash.example.org, "
            "192.168.1.5 or [fd00::5]; no scheme, port or path)",
            field="http.allowed_hosts",
        )


def _check_origin(value: str) -> None:
    """An ``http.cors_origins`` entry is a whole browser origin: ``http`` or ``https``,
    a host and maybe a port, nothing after it."""
    found = _ORIGIN.fullmatch(value)
    if found is None or int(found.group("port") or 0) > 65535:
        raise ConfigError(
            f"http.cors_origins: {value!r} is not an origin (e.g. https://console.example.org "
            "or http://192.168.1.5:8080; no path, not even a trailing /)",
            field="http.cors_origins",
        )


_ORIGIN = re.compile(
    r"(?i:https?)://(?:\[[0-9A-Fa-f:.]+\]|[^/?#@\\\s:\[\]]+)(?::(?P<port>[0-9]{1,5}))?"
)


_SECTIONS: dict[str, type[msgspec.Struct]] = {
    f.name: f.type for f in msgspec.structs.fields(Settings) if isinstance(f.type, type)
}


#: The GameConsole client's proofs: SHA-512 with 16 zero bits, at most this many a login.
GAMECONSOLE_PROOF_BITS = 16
GAMECONSOLE_MAX_PROOFS = 64


def _check_node(node: NodeSettings) -> None:
    if NODE_NAME_RE.fullmatch(node.name) is None:
        raise ConfigError(
            "node.name: 1-64 characters of a-z, 0-9, _, . and -, not starting with - or .",
            field="node.name",
        )
    if node.public_url:
        parse_public_url(
            node.public_url, key="node.public_url", schemes=("http", "https"), path=False
        )
    if node.heartbeat_timeout <= node.heartbeat_interval:
        raise ConfigError(
            "node.heartbeat_timeout: must be greater than node.heartbeat_interval",
            field="node.heartbeat_timeout",
        )


def _check(settings: Settings) -> Settings:
    for key in ("http.listen", "ws.listen", "admin.listen"):
        section, name = key.split(".")
        parse_address(getattr(getattr(settings, section), name), key=key)
    check_ranges(settings)
    for host in settings.http.allowed_hosts:
        _check_host_name(host)
    for origin in settings.http.cors_origins:
        _check_origin(origin)
    if settings.ws.public_address:
        parse_public_address(settings.ws.public_address, key="ws.public_address")
    public_urls(settings.http.public_url, settings.ws.public_url)
    if settings.store.url and not re.match(r"postgres(ql)?://", settings.store.url):
        raise ConfigError("store.url: must be a postgresql:// URL (or empty for SQLite)",
                          field="store.url")  # fmt: skip
    _check_node(settings.node)
    parse_networks(settings.http.trusted_proxies, key="http.trusted_proxies")
    check_forwarded_header(settings.http.forwarded_header, key="http.forwarded_header")
    if not 0 <= settings.auth.pow_difficulty <= settings.auth.pow_max_difficulty <= 64:
        raise ConfigError(
            "auth.pow_difficulty: must satisfy 0 <= pow_difficulty <= pow_max_difficulty <= 64",
            field="auth.pow_difficulty",
        )
    auth = settings.auth
    if (
        settings.http.gameconsole_service
        and auth.pow_count * 2 ** (auth.pow_max_difficulty - GAMECONSOLE_PROOF_BITS)
        > GAMECONSOLE_MAX_PROOFS
    ):
        # Its client's proofs are fixed at 16 bits: past this many, /service would be a
        # cheaper way to guess passwords than leosuite's own login.
        raise ConfigError(
            "http.gameconsole_service: cannot match auth.pow_count x 2^auth.pow_max_difficulty"
            f" with at most {GAMECONSOLE_MAX_PROOFS} proofs of 16 bits; lower those or leave"
            " the service off",
            field="http.gameconsole_service",
        )
    if settings.auth.hash_memory_kib < 8 * settings.auth.hash_parallelism:
        raise ConfigError(
            "auth.hash_memory_kib: must be at least 8 * hash_parallelism",
            field="auth.hash_memory_kib",
        )
    if settings.servers.user and not re.fullmatch(
        r"[a-z_][a-z0-9_.-]{0,31}\$?|[0-9]{1,10}", settings.servers.user
    ):
        raise ConfigError("servers.user: not a system user's name or uid", field="servers.user")
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", settings.servers.minecraft_manifest_url):
        raise ConfigError(
            "servers.minecraft_manifest_url: must be an http or https URL",
            field="servers.minecraft_manifest_url",
        )
    if settings.servers.retention_bytes < 64 * KiB:
        raise ConfigError(
            "servers.console_retention_bytes: must be at least 65536",
            field="servers.console_retention_bytes",
        )
    if settings.metrics.scrape_token and not re.fullmatch(
        r"[!-~]{16,256}", settings.metrics.scrape_token
    ):
        raise ConfigError(
            "metrics.scrape_token: must be 16 to 256 printable characters without spaces",
            field="metrics.scrape_token",
        )
    if settings.backups.compression not in ("zstd", "gzip"):
        raise ConfigError(
            f"backups.compression: must be 'zstd' or 'gzip', not {settings.backups.compression!r}",
            field="backups.compression",
        )
    if settings.limits.enabled not in ("auto", "on", "off"):
        raise ConfigError(
            f"limits.enabled: must be 'auto', 'on' or 'off', not {settings.limits.enabled!r}",
            field="limits.enabled",
        )
    if not re.fullmatch(r"[a-z0-9_][a-z0-9_-]{0,63}", settings.limits.cgroup_name):
        raise ConfigError(
            "limits.cgroup_name: 1-64 characters of a-z, 0-9, _ and -, not starting with -",
            field="limits.cgroup_name",
        )
    if settings.daemon.on_exit not in ("stop", "leave"):
        raise ConfigError(
            f"daemon.on_exit: must be 'stop' or 'leave', not {settings.daemon.on_exit!r}",
            field="daemon.on_exit",
        )
    if settings.daemon.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError(
            "daemon.log_level: must be one of debug, info, warning, error", field="daemon.log_level"
        )
    return settings


def _decode(raw: Mapping[str, Any], origin: str) -> Settings:
    try:
        return msgspec.convert(raw, Settings, str_keys=True)
    except msgspec.ValidationError as exc:
        # msgspec says e.g. "Object contains unknown field `x` - at `$.http`" or
        # "Expected `int`, got `str` - at `$.auth.pow_count`": turn the path into a key.
        text = str(exc)
        message, _, where = text.partition(" - at `$")
        key = where.rstrip("`").lstrip(".")
        if "unknown field" in message:
            unknown = message.split("`")[1]
            key = f"{key}.{unknown}" if key else unknown
            raise ConfigError(f"{origin}: unknown setting {key!r}", field=key) from None
        raise ConfigError(f"{origin}: {key or 'settings'}: {message}", field=key) from None


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for name, text in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in _SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(
                f"environment: {name} does not name a setting "
                f"(expected {ENV_PREFIX}<SECTION>_<KEY> with SECTION one of "
                f"{', '.join(s.upper() for s in _SECTIONS)})",
                field=name,
            )
        key = rest[len(section) + 1 :]
        fields = {f.name: f for f in msgspec.structs.fields(_SECTIONS[section])}
        if key not in fields:
            raise ConfigError(f"environment: {name}: unknown setting '{section}.{key}'", field=name)
        result.setdefault(section, {})[key] = _parse_env_value(text, fields[key].type, name)
    return result


def _parse_env_value(text: str, annotation: Any, name: str) -> Any:
    if annotation is str:
        return text
    if annotation is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment: {name}: {text!r} is not a boolean", field=name)
    if annotation == list[str]:
        return [part.strip() for part in text.split(",") if part.strip()]
    try:
        return msgspec.json.decode(text.encode())
    except msgspec.DecodeError:
        raise ConfigError(
            f"environment: {name}: {text!r} is not a valid value", field=name
        ) from None


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the effective settings: defaults < TOML file < environment < ``overrides`` (flags)."""
    raw: dict[str, Any] = {}
    if config_file is not None:
        try:
            raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {config_file} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {config_file}: cannot read it: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file}: invalid TOML: {exc}") from None
        _decode(raw, f"config file {config_file}")  # name the key relative to the file
    env = os.environ if environ is None else environ
    raw = _merge(raw, _env_overrides(env))
    _decode(raw, "environment")
    if overrides:
        raw = _merge(raw, overrides)
    return _check(_decode(raw, "command line"))


#: The settings whose values are secrets (``section.key``): ``config show`` masks these
#: and nothing else (passwords come from elsewhere).
SECRET_SETTINGS: frozenset[str] = frozenset({"metrics.scrape_token", "store.url"})


def settings_as_dict(
    settings: Settings,
    *,
    mask_secrets: bool = True,
    secrets: Collection[str] = SECRET_SETTINGS,
) -> dict[str, Any]:
    """The effective settings as plain data for ``leosuite config show``, the values of
    the ``secrets`` settings masked (an empty one is shown: it hides nothing)."""
    data: dict[str, Any] = msgspec.to_builtins(settings)
    if mask_secrets:
        for key in secrets:
            section, _, name = key.partition(".")
            if data.get(section, {}).get(name) not in (None, ""):
                data[section][name] = "********"
    return data
