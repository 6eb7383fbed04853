"""The chat relay's messages on the bus (kind ``chat``), and how a big one is split.

Every message a node publishes carries its relay's ``epoch`` (random, new at each
start) and a sequence number ``seq`` (1, 2, 3, ... within the epoch), so a receiver
sees a lost or repeated message, and a restart. A message whose encoded event would
exceed the bus's ``MAX_PAYLOAD`` is split: its msgpack encoding, in base64, goes out
as consecutive :class:`Part` messages of at most :data:`PART_CHARS` characters, all
with the message's ``seq``, and the receiver joins them (:class:`Reassembly`).
Splitting keeps chat traffic out of the store, whose one writer every other change
waits for; the parts of one message leave one after another from one publisher, so
order per sender holds. The other way round, small messages queued at once share one
event (:func:`batches`: ``{"op": "batch", "m": [...]}``, in order), since what limits
``NOTIFY`` is the number of notifications, each a round trip, not their bytes.

No I/O here: :func:`encode_out` and :func:`decode_in` are pure, and every field of a
received message is checked (a peer's bug or a hostile ``NOTIFY`` is dropped, never
acted on half-read).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = [
    "MAX_PARTS",
    "PART_CHARS",
    "REASON_CHARS",
    "Bye",
    "Hello",
    "Join",
    "Leave",
    "Login",
    "Logout",
    "Part",
    "Ping",
    "Reassembly",
    "Roster",
    "Say",
    "WireError",
    "Wire",
    "batches",
    "decode_in",
    "encode_out",
    "unbatch",
]

#: Base64 characters of one part: its event stays well under the bus's 7 900 bytes
#: with a node name and channel of their maximum lengths around it.
PART_CHARS = 6000
#: Parts of one message at most (about 270 KiB of msgpack): more is a hostile sender.
MAX_PARTS = 48
#: The longest nick, channel, reason and text the relay passes on (characters); the
#: chat's own limits are far below, so only a broken or hostile peer goes over.
_NAME = 64
REASON_CHARS = 1024
_TEXT = 1 << 20


class _Base(msgspec.Struct, frozen=True, kw_only=True, tag_field="op", forbid_unknown_fields=True):
    epoch: str = msgspec.field(name="e")
    seq: int = msgspec.field(name="s")


class Login(_Base, tag="login", frozen=True):
    nick: str = msgspec.field(name="n")


class Logout(_Base, tag="logout", frozen=True):
    nick: str = msgspec.field(name="n")


class Join(_Base, tag="join", frozen=True):
    nick: str = msgspec.field(name="n")
    channel: str = msgspec.field(name="c")


class Leave(_Base, tag="leave", frozen=True):
    nick: str = msgspec.field(name="n")
    channel: str = msgspec.field(name="c")
    reason: str = msgspec.field(name="r", default="left")


class Say(_Base, tag="say", frozen=True):
    nick: str = msgspec.field(name="n")
    channel: str = msgspec.field(name="c")
    text: str = msgspec.field(name="t")


class Hello(_Base, tag="hello", frozen=True):
    """A node (re)started or lost messages: every other node answers with its roster."""


class Roster(_Base, tag="roster", frozen=True):
    """Every chat user of the sender and the channels it is in (replaces what the
    receiver held of that node)."""

    members: dict[str, list[str]] = msgspec.field(name="m")


class Ping(_Base, tag="ping", frozen=True):
    """Sent every ping interval: a node silent for three is gone."""


class Bye(_Base, tag="bye", frozen=True):
    """The sender stops: its users are gone."""


class Part(_Base, tag="part", frozen=True):
    index: int = msgspec.field(name="i")
    count: int = msgspec.field(name="k")
    chunk: str = msgspec.field(name="b")


Wire = Login | Logout | Join | Leave | Say | Hello | Roster | Ping | Bye
_Any = Wire | Part


class WireError(ValueError):
    """A message that is not one of the relay's (logged and dropped)."""


_msgpack = msgspec.msgpack.Encoder()
_unpack = msgspec.msgpack.Decoder(Wire)


def _check(message: Wire | Part) -> None:
    """Refuse sizes no correct peer sends (before anything is done with them)."""
    if not message.epoch or len(message.epoch) > _NAME or not 0 < message.seq < 1 << 62:
        raise WireError("bad epoch or sequence number")
    for name in ("nick", "channel"):
        value = getattr(message, name, None)
        if value is not None and not 0 < len(value) <= _NAME:
            raise WireError(f"bad {name}")
    if isinstance(message, Leave) and len(message.reason) > REASON_CHARS:
        raise WireError("reason too long")
    if isinstance(message, Say) and not 0 < len(message.text) <= _TEXT:
        raise WireError("bad text")
    if isinstance(message, Roster):
        if len(message.members) > 100_000:
            raise WireError("roster too long")
        for nick, channels in message.members.items():
            if not 0 < len(nick) <= _NAME or any(not 0 < len(c) <= _NAME for c in channels):
                raise WireError("bad roster entry")
    if isinstance(message, Part) and not (
        0 <= message.index < message.count <= MAX_PARTS and 0 < len(message.chunk) <= PART_CHARS
    ):
        raise WireError("bad part")


def decode_in(data: Mapping[str, object]) -> Wire | Part:
    """The relay message in a bus event's ``data``; :class:`WireError` if it is none."""
    try:
        message: Wire | Part = msgspec.convert(data, _Any)
    except (msgspec.ValidationError, RecursionError) as exc:
        raise WireError(str(exc)) from None
    _check(message)
    return message


def _as_data(message: Wire | Part) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(message)
    return data


def encode_out(message: Wire, fits: int) -> list[dict[str, Any]]:
    """The bus ``data`` of ``message``: one dict when its JSON takes at most ``fits``
    bytes, else its :class:`Part`\\ s in order."""
    data = _as_data(message)
    if len(msgspec.json.encode(data)) <= fits:
        return [data]
    text = base64.b64encode(_msgpack.encode(message)).decode("ascii")
    chunks = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)]
    if len(chunks) > MAX_PARTS:
        raise WireError(f"a chat relay message of {len(text)} characters is too big")
    return [
        _as_data(Part(epoch=message.epoch, seq=message.seq, index=i, count=len(chunks), chunk=c))
        for i, c in enumerate(chunks)
    ]


#: Messages one batch holds at most.
MAX_BATCH = 500


def batches(datas: list[dict[str, Any]], fits: int) -> list[dict[str, Any]]:
    """``datas`` (each as :func:`encode_out` made it) as few events as fit in ``fits``
    bytes each, in order: runs of small ones batched, parts alone."""
    out: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []
    size = len(b'{"op":"batch","m":[]}')

    def flush() -> None:
        nonlocal run, size
        if len(run) == 1:
            out.append(run[0])
        elif run:
            out.append({"op": "batch", "m": run})
        run, size = [], len(b'{"op":"batch","m":[]}')

    for data in datas:
        length = len(msgspec.json.encode(data)) + 1
        if data.get("op") == "part" or size + length > fits or len(run) >= MAX_BATCH:
            flush()
        if data.get("op") == "part":
            out.append(data)
        else:
            run.append(data)
            size += length
    flush()
    return out


def unbatch(data: Mapping[str, object]) -> list[Mapping[str, object]]:
    """The messages in one event's ``data``: a batch's, or the data itself."""
    if data.get("op") != "batch":
        return [data]
    items = data.get("m")
    if (
        len(data) != 2
        or not isinstance(items, list)
        or not 0 < len(items) <= MAX_BATCH
        or not all(isinstance(item, dict) for item in items)
    ):
        raise WireError("a malformed batch")
    return items


class Reassembly:
    """The parts of one node's split message, joined in order. A part out of order (a
    lost part, another message begun) drops what was gathered: :meth:`add` then
    raises :class:`WireError` and starts afresh with that part if it is a first."""

    def __init__(self) -> None:
        self._key: tuple[str, int, int] | None = None
        self._chunks: list[str] = []

    def add(self, part: Part) -> Wire | None:
        """The whole message once ``part`` completes it, else None."""
        key = (part.epoch, part.seq, part.count)
        broken = False
        if part.index == 0:
            broken = bool(self._chunks)
            self._key, self._chunks = key, []
        elif key != self._key or part.index != len(self._chunks):
            self._key, self._chunks = None, []
            raise WireError(f"part {part.index + 1} of {part.count} out of order")
        self._chunks.append(part.chunk)
        if broken:
            raise WireError("an unfinished split message was dropped")
        return self._finish() if len(self._chunks) == part.count else None

    def _finish(self) -> Wire:
        key, chunks = self._key, self._chunks
        self._key, self._chunks = None, []
        try:
            message: Wire = _unpack.decode(base64.b64decode("".join(chunks), validate=True))
        except (msgspec.DecodeError, binascii.Error, RecursionError) as exc:
            raise WireError(f"a split message does not decode: {exc}") from None
        if key is None or (message.epoch, message.seq) != key[:2]:
            raise WireError("a split message's inner sequence number differs")
        _check(message)
        return message
