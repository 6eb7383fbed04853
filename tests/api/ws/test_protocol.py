"""The WebSocket API's wire protocol without sockets: envelope, frame parsing, typed
content, the error tree's status codes, and that the module does no I/O."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import msgspec
import pytest

from leosuite import errors
from leosuite.api.ws.protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    Malformed,
    StatusCode,
    WsError,
    decode_content,
    envelope,
    error_of,
    parse_frame,
    push,
)
from leosuite.errors import (
    AuthError,
    ConfigError,
    Conflict,
    DiskFull,
    InternalError,
    InvalidInput,
    LeosuiteError,
    MethodNotAllowed,
    NodeUnreachable,
    NotFound,
    PermissionDenied,
    ProcessError,
    RateLimited,
    StartupError,
    StoreCorrupt,
    StoreError,
    TooLarge,
    UnsupportedMediaType,
)


@pytest.mark.parametrize(
    "content", [None, {"a": [1, 2.5, "x"]}, ["é", True], "text", 0, {"nested": {"deep": None}}]
)
def test_envelope_round_trip(content: Any) -> None:
    text = envelope("u-1", "server.status", StatusCode.ENTITY_NOT_FOUND, content, "no such")
    assert list(json.loads(text)) == ["uuid", "type", "status_code", "status_string", "content"]
    assert json.loads(text) == {
        "uuid": "u-1",
        "type": "server.status",
        "status_code": 8,
        "status_string": "no such",
        "content": content,
    }


def test_status_string_defaults_to_the_status_name() -> None:
    assert json.loads(envelope("", "", StatusCode.SUCCESS, None))["status_string"] == "SUCCESS"


def test_pushes_get_a_fresh_uuid() -> None:
    first, second = json.loads(push("stats", {})), json.loads(push("stats", {}))
    assert first["uuid"] != second["uuid"]
    assert len(first["uuid"]) == 32
    assert (first["type"], first["status_code"], first["content"]) == ("stats", 0, {})


def test_a_request_parses_to_uuid_type_and_content() -> None:
    frame = json.dumps({"type": "get_version", "uuid": "a", "content": {"x": 1}})
    assert parse_frame(frame) == ("a", "get_version", {"x": 1})
    # content may be null; the uuid and type of a parsed request answer it
    assert parse_frame('{"uuid": "", "type": "t", "content": null}') == ("", "t", None)


@pytest.mark.parametrize(
    ("frame", "uuid", "kind", "names"),
    [
        pytest.param(b'{"uuid": "a", "type": "t", "content": 1}', "", "", ["binary"], id="binary"),
        pytest.param("not json {", "", "", ["not valid JSON"], id="not-json"),
        pytest.param('{"a": NaN}', "", "", ["not valid JSON"], id="nan"),
        pytest.param("[" * 10_000 + "]" * 10_000, "", "", [], id="deep"),
        pytest.param('["uuid"]', "", "", ["not a JSON object"], id="array"),
        pytest.param('{"type": "t", "content": 1}', "", "t", ["'uuid' is missing"], id="no-uuid"),
        pytest.param(
            '{"uuid": 17, "type": "t", "content": 1}',
            "",
            "t",
            ["'uuid' must be a string, not a number"],
            id="int-uuid",
        ),
        pytest.param(
            '{"uuid": "u", "type": null, "content": 1}',
            "u",
            "",
            ["'type' must be a string, not null"],
            id="null-type",
        ),
        pytest.param('{"uuid": "u", "type": "t"}', "u", "t", ["'content' is missing"], id="nc"),
        pytest.param(
            '{"uuid": {"a": 1}, "type": ["x"]}',
            "",
            "",
            ["'uuid' must be a string, not an object", "'type' must be a string, not an array"],
            id="all-wrong",
        ),
    ],
)
def test_malformed_frames_name_what_is_wrong(
    frame: str | bytes, uuid: str, kind: str, names: list[str]
) -> None:
    with pytest.raises(Malformed) as caught:
        parse_frame(frame)
    assert (caught.value.uuid, caught.value.kind) == (uuid, kind)
    assert caught.value.reason
    for name in names:
        assert name in caught.value.reason


class _Query(msgspec.Struct, forbid_unknown_fields=True):
    server: str
    max: int | None = None


class _Outer(msgspec.Struct, forbid_unknown_fields=True):
    query: _Query


def test_decode_content_gives_the_struct() -> None:
    assert decode_content({"server": "a", "max": 3}, _Query) == _Query(server="a", max=3)
    assert decode_content({"query": {"server": "b"}}, _Outer) == _Outer(_Query(server="b"))


@pytest.mark.parametrize(
    ("content", "kind", "field"),
    [
        ({}, _Query, "server"),
        (None, _Query, "server"),
        ({"server": 1}, _Query, "server"),
        ({"server": "a", "max": "many"}, _Query, "max"),
        ({"server": "a", "launch": True}, _Query, "launch"),
        ({"query": {"server": "a", "max": 1.5}}, _Outer, "query.max"),
        ({"query": {}}, _Outer, "query.server"),
        ([], _Query, None),
    ],
)
def test_bad_content_is_model_exception_naming_the_field(
    content: Any, kind: type[msgspec.Struct], field: str | None
) -> None:
    with pytest.raises(WsError) as caught:
        decode_content(content, kind)
    error = caught.value
    assert error.status is StatusCode.MODEL_EXCEPTION
    [detail] = error.content["errors"]
    pointer = "/content" + (f"/{field.replace('.', '/')}" if field else "")
    assert detail["source"]["pointer"] == pointer
    if field is not None:
        assert error.message.startswith(f"{field}: ")
    assert detail["detail"] == error.message


ERRORS: list[tuple[LeosuiteError, StatusCode]] = [
    (AuthError("x"), StatusCode.PERMISSION_DENIED),
    (PermissionDenied("x"), StatusCode.PERMISSION_DENIED),
    (NotFound("x"), StatusCode.ENTITY_NOT_FOUND),
    (InvalidInput("x", field="f"), StatusCode.INVALID_ARGUMENT),
    (TooLarge("x", field="f"), StatusCode.INVALID_ARGUMENT),
    (Conflict("x"), StatusCode.GENERAL_FAILURE),
    (RateLimited("x"), StatusCode.RATE_LIMITED),
    (NodeUnreachable("x"), StatusCode.GENERAL_FAILURE),  # says which node, and why
    (StoreError("x"), StatusCode.DATABASE_ERROR),
    (StoreCorrupt("x"), StatusCode.DATABASE_ERROR),
    (DiskFull("x", in_store=True), StatusCode.DATABASE_ERROR),  # the store's write
    (DiskFull("x"), StatusCode.UNKNOWN),  # a file's: the seed has no status for it
    (InternalError("x"), StatusCode.UNKNOWN),
    (ProcessError("x"), StatusCode.UNKNOWN),
    (MethodNotAllowed("x"), StatusCode.GENERAL_FAILURE),
    (ConfigError("x"), StatusCode.UNKNOWN),
    (StartupError("x"), StatusCode.UNKNOWN),
    (LeosuiteError("x"), StatusCode.UNKNOWN),
    (UnsupportedMediaType("x"), StatusCode.GENERAL_FAILURE),  # no bodies on the WebSocket
]


def test_every_class_of_the_error_tree_is_in_the_table() -> None:
    tree = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, LeosuiteError)
    }
    assert {type(exc) for exc, _ in ERRORS} == tree


@pytest.mark.parametrize(("exc", "status"), ERRORS, ids=lambda v: type(v).__name__)
def test_error_mapping(exc: LeosuiteError, status: StatusCode) -> None:
    error = error_of(exc)
    assert error.status is status
    if isinstance(exc, DiskFull):  # says so, never with a correlation id
        assert error.message == error_of(exc, "c0ffee").message == exc.message
        assert (error.message.startswith("disk full: x "), error.content) == (True, None)
    elif status is StatusCode.INVALID_ARGUMENT:
        assert (error.message, error.content) == ("x", {"field": "f"})
    elif status is StatusCode.DATABASE_ERROR:
        assert (error.message, error.content) == ("database error", None)  # no detail leaks
    elif status is StatusCode.UNKNOWN:
        assert (error.message, error.content) == ("internal error", None)  # no detail leaks
        assert error_of(exc, "c0ffee").message == "internal error (correlation id c0ffee)"
    else:
        assert (error.message, error.content) == ("x", None)


def test_close_codes() -> None:
    assert (CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_BIG) == (
        1000,
        1001,
        1008,
        1009,
    )


def test_the_protocol_does_no_io() -> None:
    """Importing it loads neither trio nor trio-websocket nor quart."""
    code = (
        "import sys, leosuite.api.ws.protocol; "
        "print(sorted(m for m in ('trio', 'trio_websocket', 'quart') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
