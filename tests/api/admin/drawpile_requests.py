"""The requests of Drawpile's own admin tools, written out as data.

- dpwebadmin, the web admin: every function of its ``src/api/index.js``, called the
  way its pages call it: the ``/api`` prefix and the trailing slashes it uses, HTTP
  Basic, ``X-Requested-With: XMLHttpRequest``, ``Content-Type: application/json`` on
  a body, the body as ``JSON.stringify`` writes it and with the types its inputs give
  (a text box sends a string, ``"25"``; a number box a number, until it is edited; a
  checkbox a bool).
- drawpile-monitor, the automod script: its live-mode calls (``requests`` with
  ``auth=(user, password)``; no ``X-Requested-With``).
- pubsrvproxy, the public statistics proxy: its two reads, with the credentials in its
  ``ServerAddr`` URL, which Go's HTTP client sends as Basic.

A path's ``{placeholders}`` are filled at run time: ``sid`` the session's id,
``uid`` a member's id in it, ``user_uid`` the ``uid`` the Users page read (the text
``undefined`` when there is none, as JavaScript writes it), ``account``,
``admin_account``, ``ban``, ``secret`` (an invite's) likewise from the daemon's answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.api.admin.drawpile_reads import (
    ACCOUNT_LIST_READS,
    BAN_LIST_READS,
    CHAT_READS,
    EXTBAN_READS,
    INVITE_READS,
    LOCKS_READS,
    LOG_READS,
    MONITOR_SESSION_READS,
    MONITOR_USER_READS,
    PROXY_SESSION_READS,
    PROXY_USER_READS,
    SESSION_LIST_READS,
    SESSION_READS,
    SETTINGS_READS,
    STATUS_READS,
    USER_LIST_READS,
    WHITELIST_READS,
    Read,
)

#: A call without a body (``fetch`` without ``body``; ``requests`` without ``json=``).
NO_BODY: Any = None

#: The headers dpwebadmin's ``doGet``/``doDelete`` set; ``doSend`` adds the type.
XRW = {"X-Requested-With": "XMLHttpRequest"}
JSON_TYPE = {"Content-Type": "application/json"}

#: requests' own headers (``json=`` adds the type).
REQUESTS_HEADERS = {
    "User-Agent": "python-requests/2.32.3",
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
}

#: Go's ``http.Get`` headers (credentials from the URL become ``Authorization``).
GO_HEADERS = {"User-Agent": "Go-http-client/1.1", "Accept-Encoding": "gzip"}

ALERT = "Restarting in 5 minutes"


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str
    body: Any = NO_BODY
    reads: tuple[Read, ...] = ()
    #: The status the tool needs; ``None``: any 2xx.
    status: int | None = None
    #: Calls replayed first (by name), as a user gets to this one.
    before: tuple[str, ...] = ()
    #: What the answer alone does not show, checked by the test (by name).
    effect: str = ""
    #: The key the page takes its list from when the answer is an object.
    listed: str = ""
    #: ``admin``, ``wrong`` (a wrong password) or ``none`` (no credentials).
    credentials: str = "admin"
    #: A page leosuite has no counterpart for: an answer in the page's shape, never 404.
    unsupported: bool = False
    #: The body starts from this path's GET answer (the page sends back what it read).
    body_from: str = ""
    #: The tool reads a success as text, not JSON.
    text_answer: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def _log(name: str, query: str, effect: str = "", before: tuple[str, ...] = ()) -> Call:
    reads = () if effect == "log_page_two" else LOG_READS
    return Call(
        f"getLogs: {name}", "GET", f"/api/log/?{query}", reads=reads, effect=effect, before=before
    )


def _settings(name: str, body: dict[str, Any], effect: str) -> Call:
    return Call(
        f"setServerSettings: {name}", "PUT", "/api/server/", body, reads=SETTINGS_READS,
        effect=effect,
    )  # fmt: skip


def _session(name: str, body: dict[str, Any], effect: str, **kw: Any) -> Call:
    return Call(
        f"changeSession: {name}", "PUT", "/api/sessions/{sid}", body, reads=SESSION_READS,
        effect=effect, **kw,
    )  # fmt: skip


# fmt: off
DPWEBADMIN: list[Call] = [
    # Log in: tryLogin asks /status/ with the typed credentials.
    Call("tryLogin", "GET", "/api/status/"),
    Call("tryLogin: wrong password", "GET", "/api/status/", status=401, credentials="wrong",
         effect="no_basic_challenge"),
    Call("getStatus", "GET", "/api/status/", reads=STATUS_READS, effect="ext_address"),
    # Settings: a change is sent 1 s after the last edit, every key edited in that time.
    Call("getServerSettings", "GET", "/api/server/", reads=SETTINGS_READS),
    _settings("sessionCountLimit as text", {"sessionCountLimit": "25"}, "session_count_25"),
    _settings("persistence", {"persistence": False}, "persistence_off"),
    _settings("archive", {"archive": True}, "archive_on"),
    _settings("clientTimeout", {"clientTimeout": "2m"}, "client_timeout_2m"),
    _settings("idleTimeLimit", {"idleTimeLimit": "2h"}, "idle_time_2h"),
    _settings("sessionSizeLimit", {"sessionSizeLimit": "10MB"}, "size_limit_10mb"),
    _settings("welcome and autoreset threshold in one debounce",
              {"welcomeMessage": "Be nice!", "autoResetThreshold": "5MB"},
              "welcome_kept_beside_unknown"),
    _settings("title and guest boxes",
              {"serverTitle": "Drawing club", "allowGuests": False, "allowGuestHosts": False},
              "title_and_guests"),
    _settings("logpurgedays as text", {"logpurgedays": "30"}, "accepted"),
    _settings("forceNsfm", {"forceNsfm": True}, "accepted"),
    _settings("ruleText", {"ruleText": "No spam, please."}, "accepted"),
    # List servers: leosuite announces to none.
    Call("getListserverWhitelist", "GET", "/api/listserverwhitelist/", reads=WHITELIST_READS,
         unsupported=True),
    Call("setListserverWhitelist", "PUT", "/api/listserverwhitelist/",
         {"whitelist": ["https://pub.drawpile.net/"], "enabled": True},
         body_from="/api/listserverwhitelist/", unsupported=True),
    # Sessions.
    Call("getSessions", "GET", "/api/sessions/?v=2", reads=SESSION_LIST_READS, listed="sessions"),
    Call("changeSessions: message all sessions", "PUT", "/api/sessions", {"alert": ALERT},
         effect="alert_delivered"),
    Call("getSession", "GET", "/api/sessions/{sid}", reads=SESSION_READS),
    _session("title", {"title": "Evening sketches"}, "title_changed"),
    _session("maxUserCount", {"maxUserCount": 10}, "max_users_10"),
    _session("closed", {"closed": True}, "closed"),
    _session("authOnly", {"authOnly": True}, "auth_only"),
    _session("persistent", {"persistent": True}, "persistent"),
    _session("nsfm", {"nsfm": True}, "nsfm"),
    _session("idleOverride", {"idleOverride": True}, "idle_override"),
    _session("founder", {"founder": "carol"}, "accepted"),
    _session("autoreset threshold", {"resetThreshold": "5MB"}, "accepted"),
    _session("password", {"password": "secret-pw-1"}, "has_password"),
    _session("password removed", {"password": ""}, "no_password",
             before=("changeSession: password",)),
    _session("opword", {"opword": "op-secret-1"}, "has_opword"),
    _session("message everyone", {"alert": ALERT}, "alert_delivered"),
    _session("several fields in one debounce",
             {"title": "Night owls", "closed": True, "nsfm": True}, "several_fields"),
    Call("terminateSession", "DELETE", "/api/sessions/{sid}", effect="session_gone"),
    Call("terminateSession: quiet", "DELETE", "/api/sessions/{sid}?quiet=true",
         effect="session_gone"),
    Call("unlistSession", "DELETE", "/api/sessions/{sid}/listing/1", status=404,
         effect="error_message"),
    # Invites.
    Call("createInvite", "POST", "/api/sessions/{sid}/invites",
         {"maxUses": 1, "trust": False, "op": False}, effect="invite_listed"),
    Call("createInvite: uses typed, trusted", "POST", "/api/sessions/{sid}/invites",
         {"maxUses": "5", "trust": True, "op": False}, effect="invite_listed"),
    Call("getSession: with an invite", "GET", "/api/sessions/{sid}",
         reads=SESSION_READS + INVITE_READS, before=("createInvite",)),
    Call("revokeInvite", "DELETE", "/api/sessions/{sid}/invites/{secret}",
         before=("createInvite",), effect="invite_gone"),
    # Users.
    Call("getUsers", "GET", "/api/users/?v=2", reads=USER_LIST_READS, listed="users"),
    Call("kickUserByUid", "DELETE", "/api/users/{user_uid}", effect="bob_disconnected"),
    Call("changeUser: op", "PUT", "/api/sessions/{sid}/{uid}", {"op": True}, effect="bob_op"),
    Call("changeUser: de-op", "PUT", "/api/sessions/{sid}/{uid}", {"op": False},
         before=("changeUser: op",), effect="bob_not_op"),
    Call("changeUser: trusted", "PUT", "/api/sessions/{sid}/{uid}", {"trusted": True},
         effect="bob_trusted"),
    Call("changeUser: message", "PUT", "/api/sessions/{sid}/{uid}", {"alert": ALERT},
         effect="bob_alerted"),
    Call("kickUserFromSession", "DELETE", "/api/sessions/{sid}/{uid}", effect="bob_kicked"),
    # The session's chat, as the admin.
    Call("connectChat", "POST", "/api/sessions/{sid}/chat", {"message": "Hello from the admin"},
         reads=CHAT_READS, effect="chat_connected"),
    Call("getChatMessages", "GET", "/api/sessions/{sid}/chat?offset=0", reads=CHAT_READS,
         before=("connectChat",), effect="chat_has_lines"),
    Call("sendChatMessage", "PUT", "/api/sessions/{sid}/chat",
         {"message": "Anyone here?", "offset": 1}, reads=CHAT_READS,
         before=("connectChat",), effect="chat_line_delivered"),
    Call("disconnectChat", "DELETE", "/api/sessions/{sid}/chat?message=Bye%20for%20now",
         reads=CHAT_READS, before=("connectChat",), effect="chat_disconnected"),
    # Accounts: the edit form sends every field; flags from its checkboxes.
    Call("getAccounts", "GET", "/api/accounts/?v=2", reads=ACCOUNT_LIST_READS,
         listed="accounts"),
    Call("createAccount: the form's defaults", "POST", "/api/accounts/",
         {"username": "painter", "password": "a-long-password", "locked": False,
          "flags": "HOST,WEBHOST,WEB,WEBSESSION"}, effect="painter_flags"),
    Call("createAccount: every box", "POST", "/api/accounts/",
         {"username": "painter", "password": "a-long-password", "locked": True,
          "flags": "MOD,GHOST,HOST,WEBHOST,BANEXEMPT,WEB,WEBSESSION,PERSIST"},
         effect="painter_flags"),
    Call("changeAccount: password left empty", "PUT", "/api/accounts/{account}",
         {"username": "host1", "password": "", "locked": False, "flags": "HOST,WEB"},
         effect="host1_password_kept"),
    Call("changeAccount: new password", "PUT", "/api/accounts/{account}",
         {"username": "host1", "password": "another-long-password", "locked": False,
          "flags": "HOST"}, effect="host1_password_changed"),
    Call("changeAccount: the admin's own, no ADMIN box", "PUT", "/api/accounts/{admin_account}",
         {"username": "admin", "password": "", "locked": False, "flags": "MOD"},
         effect="admin_kept"),
    Call("deleteAccount", "DELETE", "/api/accounts/{account}", effect="host1_gone"),
    # Bans: the add form starts as {address, subnet, expires, comment} and the address
    # box writes "ip"; the subnet box is a number box (a number once edited); the
    # origin takes expiry dates as "yyyy-MM-dd HH:mm:ss".
    Call("getBanList", "GET", "/api/banlist/?v=2", reads=BAN_LIST_READS, listed="bans",
         before=("addBan: subnet untouched",)),
    Call("addBan: subnet untouched", "POST", "/api/banlist/",
         {"address": "", "subnet": "", "expires": "2030-01-01 00:00:00", "comment": "spam",
          "ip": "203.0.113.7"}, effect="ban_listed"),
    Call("addBan: subnet typed", "POST", "/api/banlist/",
         {"address": "", "subnet": 24, "expires": "2030-01-01 00:00:00", "comment": "",
          "ip": "198.51.100.0"}, effect="ban_listed"),
    Call("deleteBan", "DELETE", "/api/banlist/{ban}", before=("addBan: subnet untouched",),
         effect="ban_gone"),
    # External bans: leosuite fetches none.
    Call("getExtBanList", "GET", "/api/extbans/", reads=EXTBAN_READS, unsupported=True),
    Call("refreshExtBans", "POST", "/api/extbans/refresh", {}, unsupported=True),
    Call("changeExtBan", "PUT", "/api/extbans/1", {"enabled": True}, unsupported=True,
         text_answer=True),
    # Logs: the page sends every filter, empty ones too; its page 1 is page=0.
    _log("first page", "page=0&session=&user=&contains="),
    _log("session by id", "page=0&session={sid}&user=&contains=", "log_session"),
    _log("session by alias", "page=0&session=lobby&user=&contains=", "log_session"),
    _log("user", "page=0&session=&user=carol&contains=", "log_user"),
    _log("message contains", "page=0&session=&user=&contains=joined", "log_contains"),
    _log("page 2", "page=1&session=&user=&contains=", "log_page_two"),
    # Locks: leosuite has no section locks.
    Call("getLocks", "GET", "/api/locks/", reads=LOCKS_READS, unsupported=True,
         effect="locks_unsupported"),
    Call("putLocks", "PUT", "/api/locks/", {"sections": ["server"], "password": ""},
         unsupported=True),
]

MONITOR: list[Call] = [
    Call("get_sessions", "GET", "/api/sessions", reads=MONITOR_SESSION_READS,
         effect="plain_array", headers=REQUESTS_HEADERS),
    Call("get_users", "GET", "/api/users", reads=MONITOR_USER_READS,
         effect="users_match_sessions", headers=REQUESTS_HEADERS),
    Call("update_session: rename offensive title", "PUT", "/api/sessions/{sid}",
         {"alert": "Your session's title was detected to be offensive and has been changed.",
          "title": "Session #0"}, effect="monitor_renamed", headers=REQUESTS_HEADERS),
    Call("update_session: warn before a kick", "PUT", "/api/sessions/{sid}", {"alert": ALERT},
         effect="alert_delivered", headers=REQUESTS_HEADERS),
    Call("terminate_session", "DELETE", "/api/sessions/{sid}", effect="session_gone",
         headers=REQUESTS_HEADERS),
    Call("kick_user", "DELETE", "/api/sessions/{sid}/{uid}", effect="bob_kicked",
         headers=REQUESTS_HEADERS),
]

PUBSRVPROXY: list[Call] = [
    Call("sessions/", "GET", "/sessions/", reads=PROXY_SESSION_READS, headers=GO_HEADERS,
         effect="plain_array"),
    Call("users/", "GET", "/users/", reads=PROXY_USER_READS, headers=GO_HEADERS,
         effect="plain_array"),
    Call("sessions/ without credentials", "GET", "/sessions/", status=401, credentials="none",
         headers=GO_HEADERS),
    Call("users/ without credentials", "GET", "/users/", status=401, credentials="none",
         headers=GO_HEADERS),
]
# fmt: on


def by_name(calls: list[Call]) -> dict[str, Call]:
    named = {call.name: call for call in calls}
    assert len(named) == len(calls), "call names are unique"
    return named
