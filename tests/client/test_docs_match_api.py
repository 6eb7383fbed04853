"""docs/api.md and docs/admin.md describe every endpoint and call the daemon serves, and
the answers they describe are the ones given: WebSocket calls answer as their HTTP
twins, ``/rooms`` errors keep the rooms' shape, the admin API's ``users`` counts the
members connected."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import msgspec
import trio

from leosuite.api.admin.app import create_admin_app
from leosuite.api.http.app import create_http_app
from leosuite.api.http.errors import HTTP_ERROR_TYPES
from leosuite.api.ws.api import WsApi
from leosuite.api.ws.dashboard import install_dashboard_calls
from leosuite.api.ws.sessions import install_session_calls
from tests.helpers.chat import chat
from tests.helpers.daemon import ADMIN_PASSWORD, RunningDaemon
from tests.helpers.http import api_client
from tests.helpers.servers import command_settings
from tests.helpers.ws import ws_client

DOCS = Path(__file__).resolve().parents[2] / "docs"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


def spans(name: str) -> list[str]:
    """The text of every code span of a page of docs/ (which may wrap a line)."""
    text = re.sub(r"```.*?```", "", (DOCS / name).read_text(), flags=re.S)
    return re.findall(r"`([^`]+)`", text)


def pattern(path: str) -> str:
    """A path with its variable parts (``<x>``, ``<int:x>``, ``:x``) as ``*``, no
    trailing slash."""
    path = re.sub(r"<[^>]+>|:[A-Za-z_]+", "*", path)
    return path.rstrip("/") or "/"


_METHOD = r"(?:GET|POST|PUT|DELETE|PATCH)"
#: ``GET``, ``GET, PUT``, ``GET or DELETE``, with or without their backticks.
_METHODS = rf"`?{_METHOD}`?(?:\s*(?:,|or|and)\s*`?{_METHOD}`?)*"


def blocks(text: str) -> list[str]:
    """Paragraphs, list items and table rows, each on one line."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    parts = re.split(r"\n\s*\n|\n(?=\s*- |\|)", text)
    return [" ".join(part.split()) for part in parts]


def documented_pairs(*names: str) -> set[tuple[str, str]]:
    """``(METHOD, path pattern)`` for every ``METHOD /path`` of the pages (``GET or
    DELETE /x/`` names both); a method without a path in the same paragraph or list
    item is the last path's (``GET /x/`` → ...; ``PUT`` with ...)."""
    found: set[tuple[str, str]] = set()
    for name in names:
        for block in blocks((DOCS / name).read_text()):
            last = None
            for match in re.finditer(rf"({_METHODS})(?:\s+(/[^`\s?]*))?", block):
                methods = re.findall(_METHOD, match.group(1))
                if match.group(2):
                    last = pattern(match.group(2))
                if last is not None:
                    found.update((method, last) for method in methods)
    # admin.md: "Every path here is served in both spellings, /sessions/... and /session/..."
    found |= {
        (m, "/session" + p[len("/sessions") :]) for m, p in found if p.startswith("/sessions/")
    }
    return found


def ws_names(name: str) -> set[str]:
    """Every call name in the page's code spans; ``server.start|stop`` names both."""
    names: set[str] = set()
    for span in spans(name):
        for token in re.findall(r"[a-z_]+(?:\.[a-z_|]+)?", span):
            prefix, dot, rest = token.partition(".")
            if dot:
                names.update(f"{prefix}.{part}" for part in rest.split("|") if part)
            else:
                names.add(token)
    return names


async def test_every_http_endpoint_is_in_api_md(daemon: RunningDaemon) -> None:
    app = create_http_app(daemon.ctx)
    served = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and not rule.endpoint.startswith("web.")
    }
    text = " ".join(spans("api.md"))
    missing = [
        p for p in sorted(served) if not re.search(rf"(?<![\w/]){re.escape(p)}(?![\w/])", text)
    ]
    assert missing == [], f"HTTP endpoints not in docs/api.md: {missing}"


async def test_every_admin_endpoint_is_in_admin_md(daemon: RunningDaemon) -> None:
    app = create_admin_app(daemon.ctx)
    served = {
        (method, pattern(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static" and not rule.rule.startswith("/api/")
        for method in rule.methods or ()
        if method in METHODS
    }
    missing = sorted(served - documented_pairs("admin.md", "api.md"))
    assert missing == [], f"admin API endpoints not in docs/admin.md: {missing}"


async def test_every_websocket_call_is_in_api_md(daemon: RunningDaemon) -> None:
    api = WsApi(daemon.ctx, daemon.ctx.ws_hub)
    install_dashboard_calls(api)
    install_session_calls(api)
    missing = sorted(set(api.handlers) - ws_names("api.md"))
    assert missing == [], f"WebSocket calls not in docs/api.md: {missing}"


async def test_websocket_calls_answer_as_their_http_twins(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with api_client(daemon) as api, ws_client(daemon, login=True) as ws:
            for name in ("over-http", "over-ws"):
                await api.create(name, "command", command_settings("echo"))
                await api.ok("server_start", {"server": name})
                await api.wait_log(name, b"ready\n")
            http_cmd = await api.post("server_cmd", {"server": "over-http", "command": "x"})
            assert (http_cmd.status_code, http_cmd.content) == (204, b"")
            assert await ws.ok("server.cmd", {"server": "over-ws", "command": "x"}) is None
            http_gone = await api.post("server_destroy", {"server": "over-http"})
            assert (http_gone.status_code, http_gone.content) == (204, b"")
            assert await ws.ok("server.destroy", {"server": "over-ws"}) is None


async def announce_a_large_body(url: str, max_bytes: int) -> bytes:
    """POST to ``url`` with a ``Content-Length`` over ``max_bytes`` and no body; the
    answer the listener gives at once, up to the end of its body."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {max_bytes + 1}\r\n\r\n"
    )
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    async with stream:
        await stream.send_all(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = await stream.receive_some(65536)
            assert chunk, answer
            answer += chunk
    return answer


async def test_rooms_errors_keep_the_rooms_shape(daemon: RunningDaemon) -> None:
    """api.md: every ``/rooms`` error is ``{"status": "error", "error_type", "text"}``."""
    url = daemon.endpoints.http + "/rooms"
    json = {"Content-Type": "application/json"}
    refusals = [
        ("POST", {"headers": json, "content": b"{not json"}, 400, "invalid"),
        ("POST", {"headers": {"Content-Type": "text/plain"}, "content": b"{}"}, 415, None),
        ("POST", {"headers": {**json, "Host": "rebind.example"}, "content": b"{}"}, 421, None),
        ("GET", {}, 405, "method_not_allowed"),
    ]
    with trio.fail_after(30):
        async with httpx.AsyncClient(timeout=10) as client:
            for method, kwargs, status, error_type in refusals:
                answer = await client.request(method, url, **kwargs)
                assert answer.status_code == status, (method, kwargs, answer.text)
                body = answer.json()
                assert set(body) == {"status", "error_type", "text"}, (status, body)
                assert body["status"] == "error"
                assert body["error_type"] == (error_type or HTTP_ERROR_TYPES[status])
            # A body announced over http.max_body_bytes, refused before it is sent.
            oversized = await announce_a_large_body(url, daemon.ctx.settings.http.max_body_bytes)
            assert oversized.startswith(b"HTTP/1.1 400 "), oversized
            body = msgspec.json.decode(oversized.partition(b"\r\n\r\n")[2])
            assert (body["status"], body["error_type"]) == ("error", "too_large"), body
            ban = await daemon.ctx.bans.add("127.0.0.1", comment="test")
            try:
                banned = await client.post(url, headers=json, content=b"{}")
                assert banned.status_code == 403
                assert banned.json() == {
                    "status": "error",
                    "error_type": "forbidden",
                    "text": "your address is banned",
                }
                elsewhere = await client.post(daemon.endpoints.http + "/api/server_list", json={})
                assert set(elsewhere.json()) == {"error_type", "error_message"}
            finally:
                await daemon.ctx.bans.remove(ban.id)


async def test_admin_status_counts_the_members_connected(daemon: RunningDaemon) -> None:
    with trio.fail_after(30):
        async with daemon.admin(auth=("admin", ADMIN_PASSWORD)) as admin:
            assert (await admin.get("/status/")).json()["users"] == 0
            async with chat(daemon, "alice"), chat(daemon, "bob"):
                assert (await admin.get("/status/")).json()["users"] == 2
