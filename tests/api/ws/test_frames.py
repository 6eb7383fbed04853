"""The writer's hand-made frames are byte for byte what wsproto (trio-websocket) sends."""

from __future__ import annotations

import pytest
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import TextMessage

from leosuite.api.ws import conn as ws_conn
from tests.api.test_fanout_frames import empty_cache  # noqa: F401 (each test's, autouse)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("char", ["x", "é"])
def test_frame_matches_wsproto(size: int, char: str) -> None:
    payload = char * size
    server = Connection(ConnectionType.SERVER)
    assert ws_conn._frame(payload) == server.send(TextMessage(data=payload))
    assert ws_conn._frame(payload) == server.send(TextMessage(data=payload))  # cached


def test_frame_cache_is_bounded() -> None:
    for i in range(2000):
        payload = f"{i:05d}" + "y" * 10_000
        ws_conn._frame(payload)
        ws_conn._frame(payload)  # written again: cached
    assert 0 < ws_conn._FRAMES_BYTES[0] <= ws_conn._FRAMES_MAX_BYTES
    assert len(ws_conn._FRAMES) < 2000


def test_small_frames_are_bounded_with_what_their_entries_hold() -> None:
    """A chat's small lines, each written twice (so cached): the cache holds at most
    its bound counting each entry, not a bound's worth of strings plus the entries."""
    for i in range(20_000):
        payload = f'{{"type":0,"message":"line {i}"}}'
        ws_conn._frame(payload)
        ws_conn._frame(payload)
    assert len(ws_conn._FRAMES) * ws_conn._FRAME_ENTRY_BYTES < ws_conn._FRAMES_MAX_BYTES
    assert ws_conn._FRAMES_BYTES[0] <= ws_conn._FRAMES_MAX_BYTES
