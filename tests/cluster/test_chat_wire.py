"""The chat relay's messages on the bus, without I/O: what fits goes whole, what does not
goes in parts joined in order, small ones share a batch, and every field a peer sends
is checked."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from leosuite.cluster import chat_wire as wire
from leosuite.cluster.bus import MAX_PAYLOAD, LocalBus

FITS = 7000


def _say(seq: int, text: str) -> wire.Say:
    return wire.Say(epoch="e", seq=seq, nick="alice", channel="dev", text=text)


def _parts(datas: list[dict[str, Any]]) -> list[wire.Part]:
    parts = [wire.decode_in(data) for data in datas]
    assert all(isinstance(part, wire.Part) for part in parts)
    return parts  # type: ignore[return-value]


def test_a_small_message_goes_whole_and_decodes_back() -> None:
    message = _say(1, 'hi "there" \x01')
    (data,) = wire.encode_out(message, FITS)
    assert data["op"] == "say"
    assert wire.decode_in(data) == message


@pytest.mark.parametrize("text", ["é" * 8192, "😀" * 4096, '"\\' * 8192, "\x01" * 16384])
def test_a_message_at_the_size_limit_goes_in_parts_that_fit_the_bus(text: str) -> None:
    bus = LocalBus("a-node-name-of-some-length.example.org")
    message = _say(7, text)
    parts = wire.encode_out(message, FITS)
    assert len(parts) > 1
    for data in parts:
        assert len(bus.encode("chat", data)) <= MAX_PAYLOAD  # the bus takes each
    joined = wire.Reassembly()
    results = [joined.add(p) for p in _parts(parts)]
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == message


def test_parts_out_of_order_or_interrupted_drop_the_message() -> None:
    first = _parts(wire.encode_out(_say(1, "x" * 20000), FITS))
    second = _parts(wire.encode_out(_say(2, "y" * 20000), FITS))
    joined = wire.Reassembly()
    joined.add(first[0])
    with pytest.raises(wire.WireError, match="out of order"):
        joined.add(first[2])
    # Another message begins while one is unfinished: the first is dropped, the second kept.
    joined.add(first[0])
    with pytest.raises(wire.WireError, match="unfinished"):
        joined.add(second[0])
    for part in second[1:-1]:
        assert joined.add(part) is None
    assert joined.add(second[-1]) == _say(2, "y" * 20000)


def test_a_part_whose_inner_message_differs_is_refused() -> None:
    parts = wire.encode_out(_say(5, "x" * 20000), FITS)
    forged = _parts([{**p, "s": 6} for p in parts])
    joined = wire.Reassembly()
    for part in forged[:-1]:
        joined.add(part)
    with pytest.raises(wire.WireError, match="differs"):
        joined.add(forged[-1])


def test_small_messages_share_batches_in_order_and_parts_go_alone() -> None:
    datas: list[dict[str, Any]] = []
    for seq in range(1, 300):
        text = "z" * 20000 if seq == 150 else f"message {seq}"
        datas.extend(wire.encode_out(_say(seq, text), FITS))
    events = wire.batches(datas, FITS)
    assert len(events) < 20
    unpacked = [item for event in events for item in wire.unbatch(event)]
    assert unpacked == datas
    for event in events:
        assert len(msgspec.json.encode(event)) <= FITS
        if event["op"] == "batch":
            assert all(item["op"] != "part" for item in event["m"])
    assert wire.batches(datas[:1], FITS) == datas[:1]  # one alone is no batch


@pytest.mark.parametrize(
    "data",
    [
        {"op": "batch"},
        {"op": "batch", "m": []},
        {"op": "batch", "m": "x"},
        {"op": "batch", "m": [1]},
        {"op": "batch", "m": [{}], "x": 1},
        {"op": "batch", "m": [{}] * (wire.MAX_BATCH + 1)},
    ],
)
def test_a_malformed_batch_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(wire.WireError):
        wire.unbatch(data)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"op": "say", "e": "e", "s": 1, "n": "a", "c": "dev"},  # no text
        {"op": "say", "e": "e", "s": 1, "n": "a", "c": "dev", "t": "x", "extra": 1},
        {"op": "say", "e": "e", "s": 0, "n": "a", "c": "dev", "t": "x"},
        {"op": "say", "e": "e", "s": -5, "n": "a", "c": "dev", "t": "x"},
        {"op": "say", "e": "", "s": 1, "n": "a", "c": "dev", "t": "x"},
        {"op": "say", "e": "e", "s": 1, "n": "", "c": "dev", "t": "x"},
        {"op": "say", "e": "e", "s": 1, "n": "a" * 65, "c": "dev", "t": "x"},
        {"op": "say", "e": "e", "s": 1, "n": "a", "c": "dev", "t": ""},
        {"op": "say", "e": "e", "s": 1, "n": ["a"], "c": "dev", "t": "x"},
        {"op": "leave", "e": "e", "s": 1, "n": "a", "c": "dev", "r": "x" * 2000},
        {"op": "roster", "e": "e", "s": 1, "m": {"a": [""]}},
        {"op": "roster", "e": "e", "s": 1, "m": {"": ["dev"]}},
        {"op": "part", "e": "e", "s": 1, "i": 2, "k": 2, "b": "AAAA"},
        {"op": "part", "e": "e", "s": 1, "i": 0, "k": wire.MAX_PARTS + 1, "b": "AAAA"},
        {"op": "part", "e": "e", "s": 1, "i": 0, "k": 2, "b": "A" * (wire.PART_CHARS + 1)},
        {"op": "launch", "e": "e", "s": 1},
    ],
)
def test_every_field_a_peer_sends_is_checked(data: dict[str, Any]) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_in(data)
