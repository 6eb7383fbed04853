"""Frames built once for many connections: the shared frame cache (leosuite.api.ws.conn)
keeps only payloads written to more than one connection, its bound counting the payload
strings as well as the frames; a console push's frame is made from its JSON bytes."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from typing import cast

import pytest
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import TextMessage

from leosuite.api.ws import conn as ws_conn
from leosuite.api.ws.fanout import text_frame
from leosuite.api.ws.fanout_console import ConsolePush
from leosuite.supervision.console_file import ConsoleFile


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    saved = dict(ws_conn._FRAMES), ws_conn._FRAMES_BYTES[0], list(ws_conn._LAST)
    ws_conn._FRAMES.clear()
    ws_conn._FRAMES_BYTES[0] = 0
    ws_conn._LAST.clear()
    yield
    ws_conn._FRAMES.clear()
    ws_conn._FRAMES.update(saved[0])
    ws_conn._FRAMES_BYTES[0] = saved[1]
    ws_conn._LAST[:] = saved[2]


def _held() -> int:
    entry = ws_conn._FRAME_ENTRY_BYTES
    return sum(sys.getsizeof(k) + sys.getsizeof(v) + entry for k, v in ws_conn._FRAMES.items())


def test_a_push_with_its_own_uuid_is_never_cached() -> None:
    for _ in range(1000):
        payload = json.dumps({"uuid": uuid.uuid4().hex, "type": "stats", "content": {}})
        assert ws_conn._frame(payload) == text_frame(payload)
    assert ws_conn._FRAMES == {}
    assert ws_conn._FRAMES_BYTES[0] == 0


def test_a_broadcast_frame_is_built_once_and_reused() -> None:
    line = json.dumps({"type": 0, "message": "hello"})
    first = ws_conn._frame(line)
    again = [ws_conn._frame(line) for _ in range(100)]
    assert first == text_frame(line)
    assert all(frame is first for frame in again)
    assert list(ws_conn._FRAMES) == [line]
    assert ws_conn._FRAMES_BYTES[0] == _held()


@pytest.mark.parametrize("char", ["y", "\U0001f600"])  # 1 and 4 bytes a character in a str
def test_the_bound_counts_payloads_and_frames_and_drops_the_oldest(char: str) -> None:
    lines = [f"{i:05d}" + char * 4000 for i in range(3000)]
    for line in lines:  # each broadcast to two members
        assert ws_conn._frame(line) is ws_conn._frame(line)
    assert 0 < ws_conn._FRAMES_BYTES[0] == _held() <= ws_conn._FRAMES_MAX_BYTES
    kept = list(ws_conn._FRAMES)
    assert kept == lines[-len(kept) :]  # the newest, oldest first
    assert len(kept) < len(lines)


def test_an_oversized_payload_is_never_kept() -> None:
    big = "z" * (ws_conn._FRAME_CACHED_MAX + 1)
    assert ws_conn._frame(big) == ws_conn._frame(big) == text_frame(big)
    assert ws_conn._FRAMES == {}
    assert ws_conn._LAST == []


@pytest.mark.parametrize("size", [0, 60, 200, 65_400, 70_000])
def test_a_console_push_frame_is_what_wsproto_makes_of_its_text(size: int) -> None:
    data = ('a"\\\x00\x1f\u00e9\U0001f600\n' * size)[:size]  # escapes, multi-byte, controls
    content: dict[str, object] = {
        "server": "s",
        "readIndex": 7,
        "nextReadIndex": 7 + size,
        "data": data,
        "encoding": "utf-8",
    }
    made = ConsolePush(cast(ConsoleFile, None), content, 7, 7 + size, 0.0)
    text = made.payload
    assert made.frame == Connection(ConnectionType.SERVER).send(TextMessage(data=text))
    decoded = json.loads(text)
    assert decoded["type"] == "console_output"
    assert decoded["status_code"] == 0
    assert decoded["status_string"] == "SUCCESS"
    assert decoded["content"] == content
    assert len(decoded["uuid"]) == 32
    assert (made.old_read_index, made.next_index) == (7, 7 + size)
