"""The answer fields Drawpile's own admin tools read, each named with the page or the
line of code that reads it (``drawpile_requests`` says which call answers them)."""

from __future__ import annotations

from dataclasses import dataclass

STR = (str,)
INT = (int,)
NUM = (int, float)
BOOL = (bool,)
LIST = (list,)
OBJ = (dict,)
TEXT_OR_NUM = (str, int, float)


@dataclass(frozen=True)
class Read:
    """A field the tool's code reads. ``path``: dotted keys, ``[]`` for every entry of
    a list (which must then have one); ``""`` is the answer itself."""

    path: str
    kinds: tuple[type, ...]
    reader: str
    #: The tool does without it, but not with another type (Go's json.Unmarshal).
    optional: bool = False


def _r(path: str, kinds: tuple[type, ...], reader: str, optional: bool = False) -> Read:
    return Read(path, kinds, reader, optional)


STATUS_READS = (
    _r("started", STR, "Status page: 'Server started at' (formatted when it ends in Z)"),
    _r("ext_host", STR, "Status page: 'Address: host'"),
    _r("ext_port", INT, "Status page: 'Address: host:port' (port shown unless 27750)"),
    _r("sessions", INT, "Status page: 'Sessions: n / max'"),
    _r("maxSessions", INT, "Status page: 'Sessions: n / max'"),
    _r("users", INT, "Status page: 'Users: n'"),
)

SETTINGS_READS = (
    _r("serverTitle", STR, "Settings page: Server title"),
    _r("clientTimeout", TEXT_OR_NUM, "Settings page: Connection timeout"),
    _r("allowGuests", BOOL, "Settings page: Allow unauthenticated users"),
    _r("allowGuestHosts", BOOL, "Settings page: Allow anyone to host"),
    _r("welcomeMessage", STR, "Settings page: Welcome message"),
    _r("sessionSizeLimit", TEXT_OR_NUM, "Settings page: Size limit"),
    _r("sessionCountLimit", TEXT_OR_NUM, "Settings page: Max simultaneous sessions"),
    _r("idleTimeLimit", TEXT_OR_NUM, "Settings page: Idle time limit"),
    _r("persistence", BOOL, "Settings page: Allow anyone to make sessions persist"),
    _r("archive", BOOL, "Settings page: Archive terminated sessions"),
)

SESSION_LIST_READS = (
    _r("[].id", STR, "Sessions page: the link (id.substr(0, 8))"),
    _r("[].title", STR, "Sessions page: Title"),
    _r("[].alias", STR, "Sessions page: Alias"),
    _r("[].userCount", INT, "Sessions page: Users 'n / max'"),
    _r("[].maxUserCount", INT, "Sessions page: Users 'n / max' (254 when missing)"),
    _r("[].hasPassword", BOOL, "Sessions page: Options 🔒"),
    _r("[].closed", BOOL, "Sessions page: Options 🚪"),
    _r("[].authOnly", BOOL, "Sessions page: Options 👥 (registered users only)"),
    _r("[].persistent", BOOL, "Sessions page: Options 💾"),
    _r("[].nsfm", BOOL, "Sessions page: Options 🔞"),
    _r("[].idleOverride", BOOL, "Sessions page: Options ⏰ (ignores idle timeout)"),
    _r("[].size", NUM, "Sessions page: Size in MB"),
    _r("[].startTime", STR, "Sessions page: Started at"),
)

SESSION_READS = (
    _r("id", STR, "Session page: ID (and every change it sends)"),
    _r("title", STR, "Session page: Title"),
    _r("alias", STR, "Session page: Alias"),
    _r("founder", STR, "Session page: Started by"),
    _r("startTime", STR, "Session page: Started at"),
    _r("size", NUM, "Session page: Size"),
    _r("maxSize", NUM, "Session page: Size '/ max'"),
    _r("userCount", INT, "Session page: Users"),
    _r("maxUserCount", INT, "Session page: Users '/ max' (a number box)"),
    _r("closed", BOOL, "Session page: 🚪 Closed to new users"),
    _r("authOnly", BOOL, "Session page: 👥 Registered users only"),
    _r("persistent", BOOL, "Session page: 💾 Persists without users"),
    _r("nsfm", BOOL, "Session page: 🔞 NSFM"),
    _r("idleOverride", BOOL, "Session page: ⏰ Ignores idle timeout"),
    _r("hasPassword", BOOL, "Session page: 'Change'/'Set' password button"),
    _r("hasOpword", BOOL, "Session page: 'Change'/'Set' operator password button"),
    _r("users", LIST, "Session page: Users box (users.map)"),
    _r("users[].id", INT, "Session page: Users ID (and the Op/Kick paths)"),
    _r("users[].name", STR, "Session page: Users Name"),
    _r("users[].ip", STR, "Session page: Users IP"),
    _r("users[].online", BOOL, "Session page: online/offline and the Op/Trust/Kick buttons"),
    _r("users[].op", BOOL, "Session page: Op/De-op button, 🅾️"),
    _r("users[].trusted", BOOL, "Session page: Trust/Untrust button, 🤝"),
    _r("users[].mod", BOOL, "Session page: no Op/Trust buttons for moderators, 👷"),
    _r("users[].muted", BOOL, "Session page: 🔇"),
    _r("listings", LIST, "Session page: Listings box (listings.map: the page dies without)"),
    _r("chat", (dict, type(None)), "Session page: the Chat box shows when 'chat' is present"),
    _r("invitelist", LIST, "Session page: the Invite Codes box shows when 'invitelist' is"),
)

INVITE_READS = (
    _r("invitelist[].secret", STR, "Session page: Invite Codes Code (and Revoke)"),
    _r("invitelist[].creator", STR, "Session page: Invite Codes Created by"),
    _r("invitelist[].at", STR, "Session page: Invite Codes Created at"),
    _r("invitelist[].trust", BOOL, "Session page: Invite Codes Roles 'Trusted'"),
    _r("invitelist[].op", BOOL, "Session page: Invite Codes Roles 'Operator'"),
    _r("invitelist[].uses", LIST, "Session page: Invite Codes Uses (uses.map)"),
    _r("invitelist[].maxUses", INT, "Session page: Invite Codes Uses 'n / max'"),
)

USER_LIST_READS = (
    _r("[].name", STR, "Users page: Username"),
    _r("[].id", INT, "Users page: ID"),
    _r("[].session", STR, "Users page: Session link"),
    _r("[].ip", STR, "Users page: IP"),
    _r("[].uid", (str, int), "Users page: Kick (DELETE /users/:uid)"),
    _r("[].state", STR, "Users page: '(quietly terminated)' when no session"),
    _r("[].op", BOOL, "Users page: Flags 🅾️"),
    _r("[].mod", BOOL, "Users page: Flags 👷"),
    _r("[].muted", BOOL, "Users page: Flags 🔇"),
)

CHAT_READS = (
    _r("offset", INT, "Session page chat: the next offset (offset + messages.length)"),
    _r("messages", LIST, "Session page chat: the lines shown"),
)

ACCOUNT_LIST_READS = (
    _r("[].id", INT, "Accounts page: Edit/Delete paths"),
    _r("[].username", STR, "Accounts page: Username"),
    _r("[].locked", BOOL, "Accounts page: Status 'Locked'"),
    _r("[].flags", STR, "Accounts page: Flags (flags.indexOf('MOD') ...)"),
)

BAN_LIST_READS = (
    _r("[].id", INT, "Bans page: Delete path"),
    _r("[].ip", STR, "Bans page: Address"),
    _r("[].subnet", INT, "Bans page: Address '/ subnet' when > 0"),
    _r("[].expires", STR, "Bans page: Expires"),
    _r("[].added", STR, "Bans page: Added"),
    _r("[].comment", STR, "Bans page: Comment"),
)

EXTBAN_READS = (
    _r("bans", LIST, "Extbans page: the table (bans.map: the page dies without)"),
    _r("config", OBJ, "Extbans page: Cache key (config.extBansCacheKey)"),
    _r("status", OBJ, "Extbans page: Status (destructured: the page dies without)"),
    _r("status.active", BOOL, "Extbans page: Status 'active'/'inactive'"),
    _r("status.started", BOOL, "Extbans page: Status 'started'/'stopped'"),
    _r("status.url", STR, "Extbans page: Source URL"),
)

WHITELIST_READS = (
    _r("whitelist", LIST, "List servers page: the table (whitelist.map)"),
    _r("enabled", BOOL, "List servers page: 'Use whitelist'"),
)

LOCKS_READS = (
    _r("supported", BOOL, "Lock page: false shows 'only supported when using a config database'"),
    _r("sections", OBJ, "Lock page: a checkbox per section"),
    _r("password", BOOL, "Lock page: asks for the unlock password"),
)

LOG_READS = (
    _r("[].timestamp", STR, "Logs page: Time"),
    _r("[].level", STR, "Logs page: Level"),
    _r("[].topic", STR, "Logs page: Topic"),
    _r("[].session", STR, "Logs page: Session"),
    _r("[].user", STR, "Logs page: User"),
    _r("[].message", STR, "Logs page: Message"),
)

#: drawpile-monitor's reads (``session["title"]`` and ``user["name"]`` raise when absent).
MONITOR_SESSION_READS = (
    _r("[].id", STR, "drawpile-monitor: session['id'] (its PUT/DELETE paths)"),
    _r("[].title", STR, "drawpile-monitor: session['title'] (profanity check)"),
    _r("[].alias", STR, "drawpile-monitor: session.get('alias')"),
    _r("[].founder", STR, "drawpile-monitor: session.get('founder')"),
    _r("[].protocol", STR, "drawpile-monitor: session.get('protocol') (outdated check)"),
    _r("[].nsfm", BOOL, "drawpile-monitor: session.get('nsfm')"),
    _r("[].hasPassword", BOOL, "drawpile-monitor: session.get('hasPassword')"),
)
MONITOR_USER_READS = (
    _r("[].name", STR, "drawpile-monitor: user['name']"),
    _r("[].id", INT, "drawpile-monitor: user['id'] (the kick path)"),
    _r("[].ip", STR, "drawpile-monitor: user['ip']"),
    _r("[].session", STR, "drawpile-monitor: user['session'] (matched to sessions[].id)"),
    _r("[].mod", BOOL, "drawpile-monitor: user.get('mod') (moderators skipped)"),
    _r("[].auth", BOOL, "drawpile-monitor: user.get('auth')"),
)

#: pubsrvproxy's structs: Go's ``json.Unmarshal`` fails the whole read on a field of
#: another type (keys match in any letter case); a missing field is its zero value,
#: which the public list then shows.
PROXY_SESSION_READS = (
    _r("[].id", STR, "pubsrvproxy: Id string"),
    _r("[].alias", STR, "pubsrvproxy: Alias string"),
    _r("[].protocol", STR, "pubsrvproxy: Protocol string"),
    _r("[].title", STR, "pubsrvproxy: Title string"),
    _r("[].userCount", INT, "pubsrvproxy: UserCount int -> users"),
    _r("[].maxUserCount", INT, "pubsrvproxy: MaxUserCount int (not passed on)", optional=True),
    _r("[].hasPassword", BOOL, "pubsrvproxy: HasPassword bool -> password"),
    _r("[].closed", BOOL, "pubsrvproxy: Closed bool"),
    _r("[].nsfm", BOOL, "pubsrvproxy: Nsfm bool"),
    _r("[].persistent", BOOL, "pubsrvproxy: Persistent bool (not passed on)", optional=True),
    _r("[].founder", STR, "pubsrvproxy: Founder string -> owner"),
    _r("[].startTime", STR, "pubsrvproxy: StartTime string -> started"),
    _r("[].size", INT, "pubsrvproxy: Size int"),
)
PROXY_USER_READS = (
    _r("[].id", INT, "pubsrvproxy: Id int"),
    _r("[].name", STR, "pubsrvproxy: Name string"),
    _r("[].ip", STR, "pubsrvproxy: Ip string"),
    _r("[].auth", BOOL, "pubsrvproxy: Auth bool"),
    _r("[].op", BOOL, "pubsrvproxy: Op bool"),
    _r("[].muted", BOOL, "pubsrvproxy: Muted bool"),
    _r("[].mod", BOOL, "pubsrvproxy: Mod bool"),
    _r("[].session", STR, "pubsrvproxy: Session string"),
)
