"""Reading requests: typed JSON bodies, the peer address and the access token.

Bodies are never parsed by Quart (``get_json`` answers HTML or 500 on bad input);
we read at most ``http.max_body_bytes``, refuse any body that is not
``application/json`` (415: a cross-site form can send ``text/plain``, never JSON) and
decode with a msgspec typed decoder, so every malformed body is a 400 that names the
field.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import msgspec
from quart import request

from ..auth.service import AuthService, Principal
from ..errors import AuthError, InvalidInput, TooLarge, UnsupportedMediaType

__all__ = [
    "JSON_ONLY",
    "Body",
    "authenticate",
    "bearer_token",
    "body_type_problem",
    "decode_body",
    "peer_ip",
    "read_body",
]

#: What a request body must be.
JSON_ONLY = "request bodies must be application/json (Content-Type: application/json)"

T = TypeVar("T", bound=msgspec.Struct)


class Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every JSON request body; ``token`` may carry the access token."""

    token: str | None = None


@functools.cache
def _decoder(kind: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(kind)


def peer_ip() -> str:
    """The client's address: the peer's own, or from one of ``http.trusted_proxies``
    the address its forwarding header names (:mod:`.proxies` sets it before routing)."""
    return request.remote_addr or ""


def _is_json() -> bool:
    return request.mimetype == "application/json"


def body_type_problem(max_bytes: int) -> str | None:
    """Why this request's body may not be read, before reading it: a declared type
    other than ``application/json``, or a body announced without any type. GET, HEAD
    and OPTIONS are left alone (no route reads their body), and so is a body announced
    larger than ``max_bytes`` (reading it answers 413 first)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    length = request.content_length or 0
    if length > max_bytes:
        return None
    if "Content-Type" in request.headers:
        return None if _is_json() else JSON_ONLY
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    return JSON_ONLY if chunked or length > 0 else None


def decode_bytes(data: bytes, kind: type[T]) -> T:
    """Decode a JSON document into ``kind``; every failure is ``InvalidInput``."""
    try:
        return _decoder(kind).decode(data)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, _, where = text.partition(" - at `$")
        field = where.rstrip("`").lstrip(".") or None
        if "unknown field" in message:
            field = message.split("`")[1]
            message = "unknown field"
        raise InvalidInput(
            f"{field}: {message}" if field else f"invalid request body: {message}", field=field
        ) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput("request body is not valid UTF-8") from None
    except RecursionError:
        raise InvalidInput("request body is nested too deeply") from None


async def read_body(max_bytes: int) -> bytes:
    """The raw body (at most ``max_bytes``, else 413); 415 unless it is declared JSON,
    or empty and declared nothing."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise TooLarge(f"request body is larger than {max_bytes} bytes")
    request.max_content_length = max_bytes
    data = await request.get_data(cache=False, as_text=False, parse_form_data=False)
    if len(data) > max_bytes:  # pragma: no cover - quart raises 413 first
        raise TooLarge(f"request body is larger than {max_bytes} bytes")
    if not _is_json() and ("Content-Type" in request.headers or data.strip()):
        raise UnsupportedMediaType(JSON_ONLY, field="Content-Type")
    return data


async def decode_body(kind: type[T], max_bytes: int) -> T:
    data = await read_body(max_bytes)
    return decode_bytes(data if data.strip() else b"{}", kind)


def bearer_token(body_token: str | None = None) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return body_token


async def authenticate(auth: AuthService, body_token: str | None = None) -> Principal:
    token = bearer_token(body_token)
    if not token:
        raise AuthError("an access token is required (Authorization: Bearer <token>)")
    return await auth.authenticate(token, ip=peer_ip())
