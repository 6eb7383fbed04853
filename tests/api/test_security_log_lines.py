"""Text a client chooses (a login name, a JSON field name, a room user) cannot forge
lines: the audit table and the daemon's stderr hold it with its control characters,
line separators and bidirectional overrides escaped, on the line it belongs to."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import trio

from leosuite.auth.pow import solve
from tests.helpers.chat_tokens import serve_process
from tests.helpers.daemon import base_env

FORGED = "x\nFORGED-LINE 1\r\nFORGED-LINE 2\u2028FORGED-LINE 3\x85\x1b[2J\u202e"
RAW = ("\n", "\r", "\u2028", "\x85", "\x1b", "\u202e")


async def attack(client: httpx.AsyncClient) -> None:
    """The forged text as a login name, an unknown field name and a room user."""
    info = (await client.get("/api/auth/login_info")).json()
    proofs = solve(info["random"], count=info["proof_of_works"], difficulty=info["difficulty"])
    guess = {"username": FORGED, "password": "wrong", "random": info["random"]}
    answer = await client.post("/api/auth/login", json={**guess, "proof_of_works": proofs})
    assert answer.status_code == 403, answer.text
    answer = await client.post("/api/auth/login_info", json={FORGED: 1})
    assert answer.status_code in (400, 405), answer.text
    answer = await client.post("/api/server_list", json={FORGED: 1})
    assert answer.status_code == 400, answer.text
    room = {"roomName": "den", "owner": "alice", "pass": "alice-password"}
    answer = await client.post("/rooms", json={"action": "createRoom", "payload": room})
    assert answer.status_code == 200, answer.text
    join = {"roomName": "den", "user": FORGED, "userpass": "wrong"}
    answer = await client.post("/rooms", json={"action": "joinRoom", "payload": json.dumps(join)})
    assert answer.status_code in (400, 403), answer.text


async def test_forged_lines_are_escaped_in_the_audit_table_and_on_stderr(
    tmp_path: Path,
) -> None:
    env = base_env(LEOSUITE_ADMIN_PASSWORD="admin-password-1")
    with trio.fail_after(60):
        async with serve_process(tmp_path, env) as daemon:
            async with httpx.AsyncClient(base_url=daemon.endpoints["http"], timeout=10) as client:
                await attack(client)
            rows = daemon.audit_rows()
            texts = [value for row in rows for value in row if isinstance(value, str)]
            # The login and the unknown field are recorded (escaped), each where it belongs
            # (the room's wrong password is audited later, once per burst) ...
            escaped = "x\\nFORGED-LINE 1\\r\\nFORGED-LINE 2\\u2028FORGED-LINE 3\\x85\\x1b[2J\\u202e"
            assert sum(escaped in text for text in texts) >= 2, rows
            # ... and nothing the client sent reaches a row raw.
            assert not [text for text in texts if any(c in text for c in RAW)], rows
            # stderr has the same lines, one each, none of them forged.
            while escaped not in daemon.stderr:  # the child's stderr, written when it may
                await trio.sleep(0.05)
            err = daemon.stderr
            assert escaped in err
            assert not [line for line in err.splitlines() if line.startswith("FORGED-LINE")], err
            assert "\x1b" not in err
            assert "\u202e" not in err
            assert "\u2028" not in err
