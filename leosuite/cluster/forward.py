"""Server operations forwarded to the node that runs the server.

A power action or console command for a server of another node is sent to that node's
public URL as ``POST /node/server_operation`` (:class:`Operation`, JSON), with the
node-to-node credential in the :data:`CREDENTIAL_HEADER` header. The credential is one
random value kept in the store's ``kv`` table, inserted by the first daemon that needs
it, so every daemon on the store shares it and nothing else knows it. The receiving
node compares it in constant time, loads the account the operation is for, re-checks
its permissions itself and audits (``leosuite.api.node_calls``); its answer, success or
error, is relayed to the client unchanged (:func:`relayed_error`). A node that cannot
be reached is :class:`NodeUnreachable` (503), never a traceback.

The HTTP/1.1 client is h11 over a trio stream (TLS for an ``https`` URL, verified with
the system's CA store): one connection per operation, closed after the answer.
"""

from __future__ import annotations

import secrets
import sqlite3
import ssl
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import h11
import msgspec
import trio

from .. import errors
from ..errors import DiskFull, InternalError, LeosuiteError, NodeUnreachable
from ..store import kv
from ..store.db import Database

__all__ = [
    "ANSWER_TIMEOUT",
    "CONNECT_TIMEOUT",
    "CREDENTIAL_HEADER",
    "CREDENTIAL_KEY",
    "NODE_HEADER",
    "OPERATION_PATH",
    "NodeCredential",
    "Operation",
    "OperationKind",
    "post_json",
    "relayed_error",
]

#: Where a node takes operations forwarded to it (outside ``/api/``: the forwarding
#: node limited its own client's request rate already).
OPERATION_PATH = "/node/server_operation"
#: The header carrying the node-to-node credential.
CREDENTIAL_HEADER = "X-Leosuite-Node-Credential"
#: The header naming the forwarding node (for the audit log).
NODE_HEADER = "X-Leosuite-Node"
#: The ``kv`` key of the credential.
CREDENTIAL_KEY = "cluster.node_credential"
#: Seconds to connect to a node and send it the operation.
CONNECT_TIMEOUT = 10.0
#: Seconds to wait for its answer: a start may install first (``servers.install_timeout``).
ANSWER_TIMEOUT = 3660.0
#: The largest answer read from a node.
MAX_ANSWER_BYTES = 1 << 20


#: What a forwarded operation does.
OperationKind = Literal["power", "command", "install", "settings"]


class Operation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One forwarded server operation: ``power`` (``action``), ``command``, ``install``,
    or ``settings`` (read them, or change them with ``settings``)."""

    kind: OperationKind
    server: str
    #: The account it is done for (the receiving node checks what it may do).
    account: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
    #: The address the client came from (the audit log's).
    ip: str
    action: str = ""
    command: str = ""
    #: The settings to change (``kind`` ``settings``; None: only read them).
    settings: dict[str, Any] | None = None
    #: The client's login (``console_tokens.session_of`` its access token's hash): the
    #: receiving node refuses the operation once that login has ended ("" for none).
    session: str = ""


class NodeCredential:
    """The node-to-node credential: read from the store once, created there if absent."""

    def __init__(self) -> None:
        self._value: str | None = None

    async def value(self, db: Database) -> str:
        if self._value is None:
            fresh = secrets.token_urlsafe(32)

            def ensure(conn: sqlite3.Connection) -> str:
                return kv.insert_absent(conn, CREDENTIAL_KEY, fresh)

            self._value = await db.call(ensure)
        return self._value

    async def matches(self, db: Database, given: str | None) -> bool:
        """Whether ``given`` is the credential (compared in constant time)."""
        if not given:
            return False
        return secrets.compare_digest(given.encode(), (await self.value(db)).encode())


def _errors_by_type() -> dict[str, type[LeosuiteError]]:
    found: dict[str, type[LeosuiteError]] = {}
    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, LeosuiteError):
            found.setdefault(cls.error_type, cls)
    return found


_BY_TYPE = _errors_by_type()
_answer_decoder = msgspec.json.Decoder(dict[str, object])


def relayed_error(node: str, status: int, body: bytes) -> LeosuiteError:
    """The error a node answered (``{"error_type", "error_message"}``) as the same error
    here; an answer that is not one is :class:`NodeUnreachable`."""
    try:
        answer = _answer_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):  # nested too deep is no answer either
        answer = {}
    error_type, message = answer.get("error_type"), answer.get("error_message")
    if not isinstance(error_type, str) or not isinstance(message, str) or status < 400:
        return NodeUnreachable(f"node {node!r} gave an answer that is not the API's ({status})")
    cls = _BY_TYPE.get(error_type)
    if status >= 500 and cls is not DiskFull:
        return InternalError(f"node {node!r} failed: {message}")
    if cls is None or cls.http_status != status:
        return NodeUnreachable(f"node {node!r} answered {status} {error_type}: {message}")
    if cls is DiskFull:
        error = DiskFull.__new__(DiskFull)
        LeosuiteError.__init__(error, message)
        error.in_store = False
        return error
    return cls(message)


async def post_json(
    base_url: str,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    answer_timeout: float = ANSWER_TIMEOUT,
) -> tuple[int, bytes]:
    """POST ``body`` (JSON) to ``base_url`` + ``path``; the answer's status and body.
    OSError (including TLS failures), trio.TooSlowError or h11.ProtocolError when the
    exchange fails."""
    url = urlsplit(base_url)
    tls = url.scheme in ("https", "wss")
    host = url.hostname or ""
    port = url.port or (443 if tls else 80)
    with trio.fail_after(connect_timeout):
        tcp = await trio.open_tcp_stream(host, port)
        stream: trio.abc.Stream = tcp
        try:
            if tls:
                stream = trio.SSLStream(tcp, ssl.create_default_context(), server_hostname=host)
                await stream.do_handshake()
            conn = h11.Connection(h11.CLIENT)
            request = h11.Request(
                method="POST",
                target=url.path.rstrip("/") + path,
                headers=[
                    ("Host", url.netloc.rpartition("@")[2]),
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Connection", "close"),
                    *headers.items(),
                ],
            )
            data = conn.send(request) + conn.send(h11.Data(data=body))
            await stream.send_all(data + conn.send(h11.EndOfMessage()))
        except BaseException as exc:
            await trio.aclose_forcefully(stream)
            if isinstance(exc, trio.BrokenResourceError):  # TLS refused, or the peer left
                raise OSError(str(exc.__cause__ or "the connection broke")) from exc
            raise
    async with stream:
        with trio.fail_after(answer_timeout):
            return await _answer(conn, stream)


async def _answer(conn: h11.Connection, stream: trio.abc.Stream) -> tuple[int, bytes]:
    status = 0
    chunks: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                conn.receive_data(bytes(await stream.receive_some(65536)))
            except trio.BrokenResourceError as exc:
                raise OSError("the connection broke") from exc
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > MAX_ANSWER_BYTES:
                raise OSError("the answer is larger than any the API gives")
            chunks.append(bytes(event.data))
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            if status == 0:
                raise OSError("the connection closed before an answer")
            return status, b"".join(chunks)
