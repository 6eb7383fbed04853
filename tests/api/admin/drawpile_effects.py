"""What each replayed call is for, checked on the daemon after it (by the name a
:class:`~tests.api.admin.drawpile_requests.Call` gives as its ``effect``): mostly
through the admin API again, as the page shows it after a reload, and on the chat
members' own connections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from leosuite.store import accounts
from tests.api.admin.drawpile_requests import ALERT, Call
from tests.api.admin.drawpile_world import World, listed
from tests.helpers.accounts import PASSWORD

__all__ = ["EFFECTS"]

Effect = Callable[[World, Call, Any], Awaitable[None]]
EFFECTS: dict[str, Effect] = {}


def effect(function: Effect) -> Effect:
    EFFECTS[function.__name__] = function
    return function


@effect
async def no_basic_challenge(world: World, call: Call, answer: Any) -> None:
    assert world.response is not None
    assert "WWW-Authenticate" not in world.response.headers, "the browser's login dialog opens"


@effect
async def ext_address(world: World, call: Call, answer: Any) -> None:
    ws = httpx.URL(world.daemon.endpoints.ws)
    assert (answer["ext_host"], answer["ext_port"]) == (ws.host, ws.port)


@effect
async def accepted(world: World, call: Call, answer: Any) -> None:
    """Nothing more than a success: the page takes the answer as it is."""


async def setting(world: World, key: str) -> Any:
    return (await world.get("/api/server/"))[key]


@effect
async def session_count_25(world: World, call: Call, answer: Any) -> None:
    assert str(answer["sessionCountLimit"]) == "25"
    assert (await world.get("/api/status/"))["maxSessions"] == 25


@effect
async def persistence_off(world: World, call: Call, answer: Any) -> None:
    assert answer["persistence"] is False
    assert await setting(world, "enablePersistence") is False


@effect
async def archive_on(world: World, call: Call, answer: Any) -> None:
    assert answer["archive"] is True
    assert await setting(world, "archiveMode") is True


@effect
async def client_timeout_2m(world: World, call: Call, answer: Any) -> None:
    assert world.daemon.ctx.chat.server_settings.client_timeout == 120


@effect
async def idle_time_2h(world: World, call: Call, answer: Any) -> None:
    assert world.daemon.ctx.chat.server_settings.idle_time_limit == 7200


@effect
async def size_limit_10mb(world: World, call: Call, answer: Any) -> None:
    assert world.daemon.ctx.chat.server_settings.session_size_limit == 10 * 1024 * 1024


@effect
async def welcome_kept_beside_unknown(world: World, call: Call, answer: Any) -> None:
    assert answer["welcomeMessage"] == "Be nice!"
    assert await setting(world, "welcomeMessage") == "Be nice!"
    assert "autoResetThreshold" in str(answer), "the answer names the key it ignored"


@effect
async def title_and_guests(world: World, call: Call, answer: Any) -> None:
    now = await world.get("/api/server/")
    assert (now["serverTitle"], now["allowGuests"], now["allowGuestHosts"]) == (
        "Drawing club",
        False,
        False,
    )


async def lobby(world: World) -> Any:
    return await world.get(await world.fill("/api/sessions/{sid}"))


@effect
async def title_changed(world: World, call: Call, answer: Any) -> None:
    assert answer["title"] == (await lobby(world))["title"] == "Evening sketches"


def flag_effect(key: str, value: Any) -> Effect:
    async def check_flag(world: World, call: Call, answer: Any) -> None:
        assert answer[key] == value, f"the answer's {key}"
        assert (await lobby(world))[key] == value, f"{key} after a reload"

    return check_flag


EFFECTS.update(
    max_users_10=flag_effect("maxUserCount", 10),
    closed=flag_effect("closed", True),
    auth_only=flag_effect("authOnly", True),
    persistent=flag_effect("persistent", True),
    nsfm=flag_effect("nsfm", True),
    idle_override=flag_effect("idleOverride", True),
    has_password=flag_effect("hasPassword", True),
    no_password=flag_effect("hasPassword", False),
    has_opword=flag_effect("hasOpword", True),
)


@effect
async def several_fields(world: World, call: Call, answer: Any) -> None:
    now = await lobby(world)
    assert (now["title"], now["closed"], now["nsfm"]) == ("Night owls", True, True)


@effect
async def alert_delivered(world: World, call: Call, answer: Any) -> None:
    frame = await world.bob.expect(0, user="SYSTEM", message=ALERT)
    assert frame["dest"] == "lobby"


@effect
async def session_gone(world: World, call: Call, answer: Any) -> None:
    sessions = listed(await world.get("/api/sessions/?v=2"), "sessions")
    assert all(s["alias"] != "lobby" and s["title"] != "lobby" for s in sessions)
    assert world.core.find("lobby") is None
    await world.bob.expect(5, channel="lobby", user="bob")


@effect
async def error_message(world: World, call: Call, answer: Any) -> None:
    assert isinstance(answer["message"], str)


def invites(detail: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = detail.get("invitelist") or []
    return found


@effect
async def invite_listed(world: World, call: Call, answer: Any) -> None:
    shown = invites(await lobby(world))
    assert [(i.get("maxUses"), i.get("trust"), i.get("op")) for i in shown] == [
        (int(call.body["maxUses"]), call.body["trust"], call.body["op"])
    ], "the Session page's Invite Codes box"


@effect
async def invite_gone(world: World, call: Call, answer: Any) -> None:
    assert all(i.get("secret") != world.values["secret"] for i in invites(await lobby(world)))


def bob_in(detail: Any) -> dict[str, Any]:
    return next(u for u in detail["users"] if u["name"] == "bob")


@effect
async def bob_op(world: World, call: Call, answer: Any) -> None:
    assert answer["op"] is True
    assert bob_in(await lobby(world))["op"] is True


@effect
async def bob_not_op(world: World, call: Call, answer: Any) -> None:
    assert answer["op"] is False
    assert bob_in(await lobby(world))["op"] is False


@effect
async def bob_trusted(world: World, call: Call, answer: Any) -> None:
    assert bob_in(await lobby(world)).get("trusted") is True


@effect
async def bob_alerted(world: World, call: Call, answer: Any) -> None:
    await world.bob.expect(0, user="SYSTEM", message=ALERT)


@effect
async def bob_kicked(world: World, call: Call, answer: Any) -> None:
    await world.bob.expect(5, channel="lobby", user="bob")
    users = (await lobby(world))["users"]
    assert not [u for u in users if u["name"] == "bob" and u.get("online", True)]


@effect
async def bob_disconnected(world: World, call: Call, answer: Any) -> None:
    await world.bob.closed()
    assert world.core.find("lobby") is not None
    assert world.core.find("lobby").member_named("bob") is None  # type: ignore[union-attr]


def lines(answer: Any) -> list[str]:
    return [m.get("m") for m in answer["messages"]]


@effect
async def chat_connected(world: World, call: Call, answer: Any) -> None:
    assert "Hello from the admin" in lines(answer)
    await world.bob.expect(0, dest="lobby", message="Hello from the admin")
    assert (await lobby(world))["chat"] is not None, "the Chat box says 'Connected'"


@effect
async def chat_has_lines(world: World, call: Call, answer: Any) -> None:
    assert "Hello from the admin" in lines(answer)


@effect
async def chat_line_delivered(world: World, call: Call, answer: Any) -> None:
    await world.bob.expect(0, dest="lobby", message="Anyone here?")
    await world.carol.send(0, dest="#lobby", message="Hi admin")
    await world.carol.expect(0, dest="lobby", message="Hi admin")
    later = await world.get(await world.fill("/api/sessions/{sid}/chat?offset=0"))
    assert "Hi admin" in lines(later), "a member's line reaches the admin's chat box"


@effect
async def chat_disconnected(world: World, call: Call, answer: Any) -> None:
    assert (await lobby(world))["chat"] is None, "the Chat box says 'Not connected'"


async def account_named(world: World, name: str) -> dict[str, Any] | None:
    found = listed(await world.get("/api/accounts/?v=2"), "accounts")
    return next((a for a in found if a["username"] == name), None)


@effect
async def painter_flags(world: World, call: Call, answer: Any) -> None:
    painter = await account_named(world, "painter")
    assert painter is not None
    assert set(painter["flags"].split(",")) == set(call.body["flags"].split(","))
    assert painter["locked"] is call.body["locked"]


async def password_ok(world: World, name: str, password: str) -> bool:
    account = await world.daemon.ctx.db.call(lambda c: accounts.get_by_name(c, name))
    ok: bool = await world.daemon.ctx.auth.verify_password(account, password)
    return ok


@effect
async def host1_password_kept(world: World, call: Call, answer: Any) -> None:
    assert await password_ok(world, "host1", PASSWORD)
    host1 = await account_named(world, "host1")
    assert host1 is not None
    assert set(host1["flags"].split(",")) == {"HOST", "WEB"}


@effect
async def host1_password_changed(world: World, call: Call, answer: Any) -> None:
    assert await password_ok(world, "host1", "another-long-password")


@effect
async def admin_kept(world: World, call: Call, answer: Any) -> None:
    admin = await account_named(world, "admin")
    assert admin is not None
    assert "ADMIN" in admin["flags"].split(","), "an edit from the form keeps ADMIN"


@effect
async def host1_gone(world: World, call: Call, answer: Any) -> None:
    assert await account_named(world, "host1") is None


@effect
async def ban_listed(world: World, call: Call, answer: Any) -> None:
    bans = listed(await world.get("/api/banlist/?v=2"), "bans")
    assert [b["ip"] for b in bans] == [call.body["ip"]]


@effect
async def ban_gone(world: World, call: Call, answer: Any) -> None:
    assert listed(await world.get("/api/banlist/?v=2"), "bans") == []


@effect
async def log_session(world: World, call: Call, answer: Any) -> None:
    sid = world.values.get("sid") or await world.fill("{sid}")
    assert answer, "the lobby's entries"
    assert {e["session"] for e in answer} <= {sid, "lobby"}, "only the lobby's entries"


@effect
async def log_user(world: World, call: Call, answer: Any) -> None:
    assert answer, "carol's entries"
    users = {e["user"] for e in answer}
    assert {u.rsplit(";", 1)[-1] for u in users} == {"carol"}, f"only carol's entries: {users}"


@effect
async def log_contains(world: World, call: Call, answer: Any) -> None:
    assert answer, "the entries that say it"
    others = [e["message"] for e in answer if "joined" not in e["message"].casefold()]
    assert not others, f"only the entries that say it: {others[:3]}"


@effect
async def log_page_two(world: World, call: Call, answer: Any) -> None:
    assert isinstance(answer, list)


@effect
async def locks_unsupported(world: World, call: Call, answer: Any) -> None:
    assert answer["supported"] is False, "the Lock page says it is not supported"


@effect
async def plain_array(world: World, call: Call, answer: Any) -> None:
    assert isinstance(answer, list), "the tool iterates the answer itself"


@effect
async def users_match_sessions(world: World, call: Call, answer: Any) -> None:
    ids = {s["id"] for s in await world.get("/api/sessions")}
    assert {u["session"] for u in answer if u["session"]} <= ids


@effect
async def monitor_renamed(world: World, call: Call, answer: Any) -> None:
    assert (await lobby(world))["title"] == "Session #0"
    await world.bob.expect(0, user="SYSTEM", message=call.body["alert"])
