"""The node-to-node HTTP client and how a node's answer becomes this node's: errors
keep their class, anything that is not the API's answer is "unreachable"; a peer that
closes, stalls, talks garbage or answers without end fails cleanly."""

from __future__ import annotations

import json
import shutil
import ssl
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path

import h11
import pytest
import trio

from leosuite.cluster.forward import (
    CREDENTIAL_HEADER,
    MAX_ANSWER_BYTES,
    OPERATION_PATH,
    post_json,
    relayed_error,
)
from leosuite.errors import (
    AuthError,
    Conflict,
    DiskFull,
    InternalError,
    InvalidInput,
    NodeUnreachable,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from tests.helpers.daemon import make_settings, running_daemon
from tests.helpers.tls_proxy import self_signed_certificate


def body(error_type: str, message: str = "why") -> bytes:
    return f'{{"error_type": "{error_type}", "error_message": "{message}"}}'.encode()


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (400, "invalid", InvalidInput),
        (403, "forbidden", AuthError),
        (403, "permission_denied", PermissionDenied),
        (404, "not_found", NotFound),
        (409, "conflict", Conflict),
        (429, "rate_limited", RateLimited),
        (507, "disk_full", DiskFull),
        (500, "internal", InternalError),
        (500, "store", InternalError),
    ],
)
def test_errors_keep_their_class(status: int, error_type: str, cls: type[Exception]) -> None:
    error = relayed_error("b", status, body(error_type, "the reason"))
    assert type(error) is cls
    assert "the reason" in error.message
    if status < 500 or cls is DiskFull:
        assert (error.http_status, error.error_type) == (status, error_type)


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (404, b"<html>not found</html>"),  # a web server, not a node
        (502, b"Bad Gateway"),
        (200, body("not_found")),
        (404, body("conflict")),  # status and type disagree
        (418, body("teapot")),
        (400, b'{"error_type": 1, "error_message": "x"}'),
        (400, b"[]"),
        (400, b""),
    ],
)
def test_anything_else_is_unreachable(status: int, answer: bytes) -> None:
    error = relayed_error("b", status, answer)
    assert isinstance(error, NodeUnreachable)
    assert (error.http_status, error.error_type) == (503, "node_unreachable")


async def test_a_real_node_answers(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_daemon(make_settings(tmp_path / "data")) as daemon:
            status, answer = await post_json(
                daemon.endpoints.http, OPERATION_PATH, b"{}", {CREDENTIAL_HEADER: "wrong"}
            )
            assert status == 403
            assert isinstance(relayed_error("b", status, answer), AuthError)
            # A base URL with a path and a trailing slash keeps the path.
            status, _ = await post_json(daemon.endpoints.http + "/", OPERATION_PATH, b"{}", {})
            assert status == 403
            # The credential's holder naming an account no store can hold: refused, not a 500.
            right = {CREDENTIAL_HEADER: await daemon.ctx.node_credential.value(daemon.ctx.db)}
            for account in (2**63, 2**64, 0, -1):
                operation = {"kind": "power", "server": "x", "account": account, "ip": "::1"}
                sent = json.dumps({**operation, "action": "start"}).encode()
                status, answer = await post_json(daemon.endpoints.http, OPERATION_PATH, sent, right)
                assert status == 400, (account, answer)
                assert isinstance(relayed_error("b", status, answer), InvalidInput)


async def _peer(
    nursery: trio.Nursery, handler: Callable[[trio.SocketStream], Awaitable[None]]
) -> str:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, handler, listeners)
    port = listeners[0].socket.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def _read_request(stream: trio.abc.Stream) -> None:
    conn = h11.Connection(h11.SERVER)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(65536)))
        elif isinstance(event, h11.EndOfMessage):
            return


async def test_peers_that_fail_fail_cleanly() -> None:
    async def closes(stream: trio.SocketStream) -> None:
        await _read_request(stream)
        await stream.aclose()

    async def garbage(stream: trio.SocketStream) -> None:
        await _read_request(stream)
        await stream.send_all(b"SSH-2.0-OpenSSH\r\n\r\n")
        await stream.aclose()

    async def endless(stream: trio.SocketStream) -> None:
        await _read_request(stream)
        # the client hangs up once the answer is too long: a reset here is the point
        with suppress(trio.BrokenResourceError):
            await stream.send_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
            for _ in range(MAX_ANSWER_BYTES // 65536 + 2):
                await stream.send_all(chunk)

    async def stalls(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for handler, error in (
                (closes, h11.RemoteProtocolError),
                (garbage, h11.RemoteProtocolError),
                (endless, OSError),
            ):
                url = await _peer(nursery, handler)
                with pytest.raises(error):
                    await post_json(url, OPERATION_PATH, b"{}", {})
            url = await _peer(nursery, stalls)
            with pytest.raises(trio.TooSlowError):
                await post_json(url, OPERATION_PATH, b"{}", {}, answer_timeout=0.2)
            nursery.cancel_scope.cancel()
        # Nobody listening: refused at once.
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()
        with pytest.raises(OSError, match="onnect"):
            await post_json(f"http://127.0.0.1:{port}", OPERATION_PATH, b"{}", {})


async def test_https_nodes_are_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: apt-get install openssl")
    cert, key = self_signed_certificate(tmp_path, "node-b.test")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def answers(stream: trio.SSLStream[trio.SocketStream]) -> None:
        with suppress(trio.BrokenResourceError, ssl.SSLError):
            await _read_request(stream)
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b'Content-Length: 14\r\nConnection: close\r\n\r\n{"done": true}'
            )

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            listeners = await trio.open_ssl_over_tcp_listeners(0, server_tls, host="127.0.0.1")
            nursery.start_soon(trio.serve_listeners, answers, listeners)
            tcp = listeners[0].transport_listener
            assert isinstance(tcp, trio.SocketListener)
            url = f"https://127.0.0.1:{tcp.socket.getsockname()[1]}"
            # A certificate no CA the system trusts signed: refused.
            monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
            with pytest.raises(OSError, match="certificate verify failed"):
                await post_json(url, OPERATION_PATH, b"{}", {})
            # Its CA named with SSL_CERT_FILE, as docs/cluster.md says: answered.
            monkeypatch.setenv("SSL_CERT_FILE", str(cert))
            assert await post_json(url, OPERATION_PATH, b"{}", {}) == (200, b'{"done": true}')
            nursery.cancel_scope.cancel()
