"""The schema of leosuite's SQLite store, as a list of forward migrations.

``MIGRATIONS[i]`` takes a database from schema version ``i`` to ``i + 1``
(``PRAGMA user_version``). :meth:`leosuite.store.db.Database.open` applies the
missing ones in order, each in its own transaction together with the
``user_version`` bump, so a crash mid-migration leaves the previous version
intact. Never edit a migration that has shipped: append a new one.

Conventions: ids are ``INTEGER PRIMARY KEY AUTOINCREMENT`` (never reused);
timestamps are ``REAL`` unix seconds supplied by the caller's clock; booleans
are ``INTEGER`` 0/1.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_V1 = """
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- case-insensitively unique (usernames are ASCII), stored as given
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT    NOT NULL,
    locked        INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
    -- comma-separated, sorted: "ADMIN,HOST"
    flags         TEXT    NOT NULL DEFAULT '',
    created_at    REAL    NOT NULL
);

CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- lowercase hex sha256 of the token; the token itself is never stored
    token_hash  TEXT    NOT NULL UNIQUE,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at  REAL    NOT NULL,
    expires_at  REAL    NOT NULL,
    last_ip     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX tokens_account ON tokens (account_id);
CREATE INDEX tokens_expires ON tokens (expires_at);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp    REAL    NOT NULL,
    level        TEXT    NOT NULL CHECK (level IN ('debug', 'info', 'warning', 'error')),
    topic        TEXT    NOT NULL,
    session      TEXT    NOT NULL DEFAULT '',
    -- str.casefold() of session, for case-insensitive filtering beyond ASCII
    session_fold TEXT    NOT NULL DEFAULT '',
    -- no foreign key: entries outlive deleted accounts
    user_id      INTEGER,
    user_ip      TEXT    NOT NULL DEFAULT '',
    user_name    TEXT    NOT NULL DEFAULT '',
    message      TEXT    NOT NULL
);
CREATE INDEX audit_log_timestamp ON audit_log (timestamp);
CREATE INDEX audit_log_session ON audit_log (session_fold);

CREATE TABLE servers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    type            TEXT    NOT NULL,
    -- a JSON object: the server's variable values
    settings_json   TEXT    NOT NULL DEFAULT '{}',
    owner_id        INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    -- console byte offset; never goes back
    next_read_index INTEGER NOT NULL DEFAULT 0 CHECK (next_read_index >= 0),
    created_at      REAL    NOT NULL
);
CREATE INDEX servers_owner ON servers (owner_id);

CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_V2 = """
-- Persistent chat sessions (community/persistence.py): a row per session whose
-- ``persistent`` flag is set; members are never stored (they reconnect).
CREATE TABLE chat_sessions (
    -- the session's uuid (seed 002's ``id``)
    id             TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL,
    alias          TEXT    NOT NULL DEFAULT '',
    title          TEXT    NOT NULL DEFAULT '',
    founder        TEXT    NOT NULL DEFAULT '',
    password_hash  TEXT,
    opword_hash    TEXT,
    closed         INTEGER NOT NULL DEFAULT 0 CHECK (closed IN (0, 1)),
    nsfm           INTEGER NOT NULL DEFAULT 0 CHECK (nsfm IN (0, 1)),
    preserve_chat  INTEGER NOT NULL DEFAULT 1 CHECK (preserve_chat IN (0, 1)),
    max_user_count INTEGER NOT NULL CHECK (max_user_count >= 0),
    start_time     REAL    NOT NULL,
    last_activity  REAL    NOT NULL,
    -- the id the next message gets; ids never go back
    next_id        INTEGER NOT NULL DEFAULT 1 CHECK (next_id >= 1),
    -- the history ring, oldest first, as leosuite.community.persistence encodes it
    history_format INTEGER NOT NULL DEFAULT 1,
    history        BLOB    NOT NULL DEFAULT x'',
    saved_at       REAL    NOT NULL
);

-- A persistent session's operators, muted and banned names.
CREATE TABLE chat_session_names (
    session_id TEXT NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('op', 'muted', 'banned')),
    name       TEXT NOT NULL,
    PRIMARY KEY (session_id, role, name)
) WITHOUT ROWID;
"""

_V3 = """
-- Server-wide IP bans (store/bans.py, leosuite/auth/bans.py): an address, or a network when
-- ``subnet`` (the prefix length) is set; 0 bans the single address, as seed 002 says.
CREATE TABLE bans (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    -- the address as given, in its compressed text form (IPv4 or IPv6)
    ip      TEXT    NOT NULL,
    subnet  INTEGER NOT NULL DEFAULT 0 CHECK (subnet BETWEEN 0 AND 128),
    -- unix seconds; NULL never expires
    expires REAL,
    comment TEXT    NOT NULL DEFAULT '',
    added   REAL    NOT NULL
);
CREATE INDEX bans_expires ON bans (expires);
"""

_V4 = """
-- The process of each server that runs (store/processes.py): what the daemon needs to
-- find it again after it restarted. A row exists from the spawn until the exit is seen.
CREATE TABLE server_processes (
    server_id  INTEGER PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    pid        INTEGER NOT NULL,
    -- field 22 of /proc/<pid>/stat: with boot_id, tells the process from a reused pid
    start_time INTEGER NOT NULL,
    boot_id    TEXT    NOT NULL,
    -- unix seconds of the spawn (uptime survives a daemon restart)
    started_at REAL    NOT NULL
);
"""

_V5 = """
-- A persistent session's guests-not-allowed and never-idle flags (the admin API's
-- authOnly and idleOverride): a restart must not open a session to guests.
ALTER TABLE chat_sessions
    ADD COLUMN auth_only INTEGER NOT NULL DEFAULT 0 CHECK (auth_only IN (0, 1));
ALTER TABLE chat_sessions
    ADD COLUMN idle_override INTEGER NOT NULL DEFAULT 0 CHECK (idle_override IN (0, 1));
"""

_V6 = """
-- Rights on one server given to another account (store/grants.py): comma-separated,
-- sorted names of leosuite.auth.permissions.RIGHTS; no row means no right.
CREATE TABLE server_grants (
    server_id  INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    rights     TEXT    NOT NULL CHECK (rights <> ''),
    -- the account that last set them; NULL once it is deleted
    granted_by INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    granted_at REAL    NOT NULL,
    PRIMARY KEY (server_id, account_id)
) WITHOUT ROWID;
CREATE INDEX server_grants_account ON server_grants (account_id);
CREATE INDEX server_grants_granted_by ON server_grants (granted_by);
"""

_V7 = """
-- Schedules of a server (store/schedules.py): when (a cron expression in a time zone, or
-- an interval in seconds) and what (steps, a JSON array of step lines).
CREATE TABLE server_schedules (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id       INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    cron            TEXT,
    interval        REAL    CHECK (interval > 0),
    zone            TEXT    NOT NULL,
    steps_json      TEXT    NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    only_if_running INTEGER NOT NULL DEFAULT 0 CHECK (only_if_running IN (0, 1)),
    only_if_players INTEGER NOT NULL DEFAULT 0 CHECK (only_if_players IN (0, 1)),
    created_by      INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    -- interval schedules count from here: creation or the last change
    anchor_at       REAL    NOT NULL,
    -- the due time last handled (ran, skipped or missed); NULL before the first
    last_due        REAL,
    last_result     TEXT    NOT NULL DEFAULT '',
    CHECK ((cron IS NULL) <> (interval IS NULL)),
    UNIQUE (server_id, name)
);
"""

_V8 = """
-- Backups of a server (store/backups.py): one row per archive file, written once the
-- file is complete under its final name; the file is backups.dir/<server id>/<name>.tar.*
CREATE TABLE server_backups (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id    INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    -- the UTC time it was taken, as 2026-12-02T04-00-00Z (a suffix -2, -3 ... if taken twice)
    name         TEXT    NOT NULL,
    created_at   REAL    NOT NULL,
    -- bytes of the archive file, and its lowercase hex SHA-256
    size         INTEGER NOT NULL CHECK (size >= 0),
    sha256       TEXT    NOT NULL,
    files        INTEGER NOT NULL CHECK (files >= 0),
    -- bytes of the files archived (before compression)
    source_bytes INTEGER NOT NULL DEFAULT 0 CHECK (source_bytes >= 0),
    compression  TEXT    NOT NULL CHECK (compression IN ('zstd', 'gzip')),
    -- the account's username, or "schedule"
    by_name      TEXT    NOT NULL,
    note         TEXT    NOT NULL DEFAULT '',
    UNIQUE (server_id, name)
);
"""

_V9 = """
-- The daemons sharing this store (store/nodes.py): each writes its row when it starts
-- and its heartbeat every node.heartbeat_interval.
CREATE TABLE nodes (
    name         TEXT PRIMARY KEY,
    -- the HTTP API's URL other nodes and clients reach it at
    public_url   TEXT NOT NULL,
    -- the WebSocket API's URL clients reach it at
    ws_url       TEXT NOT NULL DEFAULT '',
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    -- the leosuite version it runs
    version      TEXT NOT NULL,
    -- when it said it stops; NULL while it runs
    stopped_at   REAL
);

-- The node that runs each server; '' for a server made before nodes existed (the first
-- node that opens the store takes it).
ALTER TABLE servers ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE INDEX servers_node ON servers (node);

-- The owning node's last known state of each of its servers, for the other nodes.
CREATE TABLE server_states (
    server_id  INTEGER PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    node       TEXT NOT NULL,
    state      TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL
);
"""

#: Forward migrations; ``MIGRATIONS[i]`` upgrades schema version ``i`` to ``i + 1``.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9)

#: The schema version this code creates and understands.
SCHEMA_VERSION = len(MIGRATIONS)
