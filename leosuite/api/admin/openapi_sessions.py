"""The admin document's sessions, members, session chat and invites, and the pages
leosuite answers as not supported (shapes: docs/admin.md). Each path is listed in both
spellings the listener serves, ``/session/`` and ``/sessions/``; the seed's spelling
keeps the plain operation id, the other has ``_plural`` or ``_singular``."""

from __future__ import annotations

from typing import Any

from ..openapi import Schema, path_parameter, query_parameter, ref, struct_components
from .invites import InviteBody
from .openapi import (
    _BOOL,
    _INT,
    _STRING,
    _TIME,
    NOT_FOUND,
    _error,
    _list,
    _object,
    _op,
)
from .session_chat import OFFSET_MAX, ChatConnect, ChatLine
from .session_users import UserPatch
from .sessions import SessionPatch, SessionsMessage

__all__ = ["build_sessions"]

SID = path_parameter("sid", _STRING, "a session id, or its name (# optional, any case)")
USER_ID = path_parameter("user_id", _STRING, "a member id as /users shows it")
UID = path_parameter("uid", _STRING, "a member's uid (the same number as its id)")
SECRET = path_parameter("secret", _STRING, "an invite code")
EXTBAN_ID = path_parameter(
    "ban_id", {"type": "integer", "minimum": 0}, "an external ban id (there are none)"
)
OFFSET = query_parameter(
    "offset", {"type": "integer", "minimum": 0, "maximum": OFFSET_MAX}, "the first line wanted"
)
QUIET = query_parameter(
    "quiet", _STRING, "the origin's quiet termination: leosuite shuts the session down as usual"
)
LISTING = path_parameter("listing", _STRING, "a listing id (there are none)")
CONFLICT = {"409": _error("connected already, or a room")}
NO_BODY = {"400": _error("a bad value (named)")}

_SUMMARY: dict[str, Schema] = {
    "id": _STRING,
    "alias": _STRING,
    "protocol": _STRING,
    "userCount": _INT,
    "founder": _STRING,
    "title": _STRING,
    "hasPassword": _BOOL,
    "closed": _BOOL,
    "persistent": _BOOL,
    "nsfm": _BOOL,
    "startTime": _TIME,
    "size": _INT,
    "maxUserCount": _INT,
    "authOnly": _BOOL,
    "idleOverride": _BOOL,
}

_USER: dict[str, Schema] = {
    "id": _INT,
    "uid": _INT,
    "name": _STRING,
    "ip": _STRING,
    "auth": _BOOL,
    "op": _BOOL,
    "trusted": _BOOL,
    "muted": _BOOL,
    "mod": _BOOL,
    "tls": _BOOL,
    "online": _BOOL,
}

_CHAT_LINE: Schema = {
    **_object({"i": _INT, "n": _STRING, "m": _STRING}, required=["m"]),
    "description": 'a member\'s line {"i", "n", "m"} (i 0: SYSTEM), or the administrators\' {"m"}',
}
_EMPTY: Schema = {"type": "array", "maxItems": 0}
_DETAIL_REQUIRED = [
    *_SUMMARY,
    "maxSize",
    "preserveChat",
    "hasOpword",
    "users",
    "listing",
    "listings",
]

SCHEMAS: dict[str, Schema] = {
    "SessionSummary": _object(_SUMMARY),
    "SessionUser": _object(_USER),
    "SessionDetail": _object(
        {
            **_SUMMARY,
            "maxSize": _INT,
            "preserveChat": _BOOL,
            "hasOpword": _BOOL,
            "users": _list("SessionUser"),
            "listing": _EMPTY,
            "listings": _EMPTY,
            "invitelist": {**_list("Invite"), "description": "not for a room"},
            "chat": {
                "anyOf": [{"type": "null"}, ref("AdminChatState")],
                "description": "null: not connected; not for a room",
            },
        },
        required=_DETAIL_REQUIRED,
    ),
    "SessionChanged": {
        "allOf": [ref("SessionDetail"), _object({"ignored": {"type": "array", "items": _STRING}})],
        "description": "the detail after the change; ignored: the names not taken",
    },
    "SessionsMessaged": _object({"status": {"const": "ok"}, "sessions": _INT}),
    "UserEntry": _object({"session": _STRING, **_USER, "state": {"enum": ["session", "login"]}}),
    "AdminChatState": _object(
        {
            "offset": _INT,
            "count": _INT,
            "timeout": {"type": "integer", "description": "milliseconds"},
            "remaining": {"type": "integer", "description": "milliseconds"},
        }
    ),
    "ChatLines": _object({"offset": _INT, "messages": {"type": "array", "items": _CHAT_LINE}}),
    "Invite": _object(
        {
            "secret": _STRING,
            "creator": _STRING,
            "at": _TIME,
            "maxUses": _INT,
            "uses": {"type": "array", "items": _object({"name": _STRING, "at": _TIME})},
            "op": _BOOL,
            "trust": _BOOL,
        }
    ),
    "Invites": _object({"invites": _list("Invite")}),
    "ListServerWhitelist": _object(
        {
            "enabled": {"const": False},
            "whitelist": _EMPTY,
            "_locked": {"const": True},
            "supported": {"const": False},
            "message": _STRING,
        }
    ),
    "ExtBans": _object(
        {
            "config": {"type": "object"},
            "bans": _EMPTY,
            "status": _object({"active": {"const": False}, "started": {"const": False}}),
            "supported": {"const": False},
            "message": _STRING,
        }
    ),
    "Locks": _object(
        {
            "supported": {"const": False},
            "sections": {"type": "object", "additionalProperties": {"const": False}},
            "password": {"const": False},
        }
    ),
}


def _session_ops(body: dict[type[Any], Schema], singular: bool) -> dict[str, Schema]:
    """The operations of ``/session/{sid}`` (``singular``) or ``/sessions/{sid}``."""
    read = "_singular" if singular else ""
    change = "" if singular else "_plural"
    return {
        "get": _op(
            f"session_show{read}", "A session with its users", ref("SessionDetail"),
            tag="sessions", errors=NOT_FOUND, parameters=[SID],
        ),
        "delete": _op(
            f"session_shutdown{read}", "Shut a session down", ref("Ok"), tag="sessions",
            errors=NOT_FOUND, parameters=[SID, QUIET],
        ),
        "put": _op(
            f"session_put{change}",
            "Change a session's properties (other names ignored); message or alert its members",
            ref("SessionChanged"), tag="sessions", body=body[SessionPatch], errors=NOT_FOUND,
            parameters=[SID],
        ),
    }  # fmt: skip


def _user_ops(body: dict[type[Any], Schema], singular: bool) -> dict[str, Schema]:
    suffix = "" if singular else "_plural"
    params = [SID, USER_ID]
    return {
        "get": _op(
            f"user_show{suffix}", "A member", ref("SessionUser"), tag="sessions",
            errors=NOT_FOUND, parameters=params,
        ),
        "delete": _op(
            f"user_kick{suffix}", "Kick a member from the session", ref("Ok"), tag="sessions",
            errors=NOT_FOUND, parameters=params,
        ),
        "put": _op(
            f"user_put{suffix}", "Op, trust or message a member", ref("SessionUser"),
            tag="sessions", body=body[UserPatch], errors=NOT_FOUND, parameters=params,
        ),
    }  # fmt: skip


def _chat_ops(body: dict[type[Any], Schema]) -> dict[str, Schema]:
    lines = ref("ChatLines")
    return {
        "post": _op(
            "chat_connect", "Connect to the session's chat", lines, tag="sessions",
            body=body[ChatConnect], body_required=True, errors={**NOT_FOUND, **CONFLICT},
            parameters=[SID],
        ),
        "get": _op(
            "chat_read", "The chat's lines from offset", lines, tag="sessions",
            errors={**NOT_FOUND, **NO_BODY}, parameters=[SID, OFFSET],
        ),
        "put": _op(
            "chat_say", "Say a line, then read from offset", lines, tag="sessions",
            body=body[ChatLine], body_required=True, errors=NOT_FOUND, parameters=[SID],
        ),
        "delete": _op(
            "chat_disconnect", "Say a last line (optional), read, disconnect", lines,
            tag="sessions", parameters=[SID, OFFSET, query_parameter(
                "message", _STRING, "a last line to every member (optional)")],
            errors={**NOT_FOUND, **NO_BODY, "413": _error("message too large")},
        ),
    }  # fmt: skip


def _invite_ops(body: dict[type[Any], Schema]) -> dict[str, dict[str, Schema]]:
    return {
        "/sessions/{sid}/invites": {
            "post": _op(
                "invite_create", "Create an invite code", ref("Invite"), tag="sessions",
                body=body[InviteBody], body_required=True,
                errors={**NOT_FOUND, "409": _error("50 codes already, or a room")},
                parameters=[SID],
            ),
            "get": _op(
                "invites_list", "The session's invite codes", ref("Invites"), tag="sessions",
                errors=NOT_FOUND, parameters=[SID],
            ),
        },
        "/sessions/{sid}/invites/{secret}": {
            "get": _op(
                "invite_show", "An invite code", ref("Invite"), tag="sessions",
                errors=NOT_FOUND, parameters=[SID, SECRET],
            ),
            "delete": _op(
                "invite_revoke", "Revoke an invite code", ref("Ok"), tag="sessions",
                errors=NOT_FOUND, parameters=[SID, SECRET],
            ),
        },
    }  # fmt: skip


def _unsupported_ops() -> dict[str, dict[str, Schema]]:
    never = "(never answered: not supported)"
    refused = {"400": _error("not supported")}
    return {
        "/listserverwhitelist": {
            "get": _op("listserverwhitelist_get", "Not supported: no list servers",
                       ref("ListServerWhitelist"), tag="unsupported"),
            "put": _op("listserverwhitelist_put", f"Refused {never}",
                       ref("ListServerWhitelist"), tag="unsupported", errors=refused),
        },
        "/extbans": {
            "get": _op("extbans_get", "Not supported: no external bans", ref("ExtBans"),
                       tag="unsupported"),
        },
        "/extbans/refresh": {
            "post": _op("extbans_refresh", f"Refused {never}", ref("Ok"), tag="unsupported",
                        errors=refused),
        },
        "/extbans/{ban_id}": {
            "put": _op("extban_put", f"No such ban {never}", ref("Ok"), tag="unsupported",
                       errors=NOT_FOUND, parameters=[EXTBAN_ID]),
        },
        "/locks": {
            "get": _op("locks_get", "Not supported: no section locks", ref("Locks"),
                       tag="unsupported"),
            "put": _op("locks_put", f"Refused {never}", ref("Locks"), tag="unsupported",
                       errors=refused),
        },
    }  # fmt: skip


def build_sessions() -> tuple[dict[str, Schema], dict[str, Schema]]:
    """``(paths, component schemas)`` of this part of the admin document."""
    structs: list[type[Any]] = [
        SessionPatch, SessionsMessage, UserPatch, ChatConnect, ChatLine, InviteBody,
    ]  # fmt: skip
    refs, schemas = struct_components(structs)
    body = dict(zip(structs, refs, strict=True))
    schemas["SessionPatch"].pop("additionalProperties", None)  # other names are ignored
    schemas.update(SCHEMAS)
    paths: dict[str, Schema] = {
        "/sessions": {
            "get": _op("sessions_list", "Sessions", _list("SessionSummary"), tag="sessions"),
            "put": _op(
                "sessions_message", "Message or alert every session", ref("SessionsMessaged"),
                tag="sessions", body=body[SessionsMessage],
            ),
        },
        "/sessions/{sid}": _session_ops(body, singular=False),
        "/session/{sid}": _session_ops(body, singular=True),
        "/session/{sid}/{user_id}": _user_ops(body, singular=True),
        "/sessions/{sid}/{user_id}": _user_ops(body, singular=False),
        "/users": {
            "get": _op("users_list", "Connected members", _list("UserEntry"), tag="sessions")
        },
        "/users/{uid}": {
            "delete": _op(
                "user_disconnect", "Disconnect a member from the server", ref("Ok"),
                tag="sessions", errors=NOT_FOUND, parameters=[UID],
            )
        },
        "/sessions/{sid}/listing/{listing}": {
            "delete": _op(
                "listing_remove", "Unlist (never answered: there are no listings)", ref("Ok"),
                tag="sessions", errors=NOT_FOUND, parameters=[SID, LISTING],
            )
        },
        "/sessions/{sid}/chat": _chat_ops(body),
        **_invite_ops(body),
        **_unsupported_ops(),
    }  # fmt: skip
    return paths, schemas
