"""OpenPGP work in a child process, so the event loop never stalls.

pysequoia spends ~45 ms per message on key stretching while holding the GIL (a
worker *thread* would stall the loop just the same). :class:`CryptoWorker` keeps one
child process (``python -m leosuite.community.crypto_worker``) that reads JSON lines
``{"id", "passphrase", "message"}`` on stdin and answers ``{"id", "payload"}`` or
``{"id", "error"}`` lines on stdout, one request at a time.

Every answer carries its request's id and a caller takes only the answer with its
own id: a caller cancelled after writing its request leaves an answer behind that
the next caller discards, never reads as its own. A caller cancelled while writing
may leave half a line in the pipe, so the child is killed then. Every exchange has a
deadline (:attr:`CryptoWorker.deadline`): past it the child is killed and the caller
gets a :class:`~leosuite.errors.ProcessError`. A child that died or was killed is
started again on the next request.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Any

import trio

from ..errors import ProcessError
from .crypto import PayloadVerb, encrypt_payload

__all__ = ["DEFAULT_DEADLINE", "CryptoWorker"]

log = logging.getLogger("leosuite.community")

_MAX_LINE = 1 << 22

#: Seconds one exchange may take, the child's start-up included (~0.3 s cold, ~45 ms warm).
DEFAULT_DEADLINE = 10.0

_BROKEN = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ValueError)


class CryptoWorker:
    def __init__(self, *, deadline: float = DEFAULT_DEADLINE) -> None:
        if not deadline > 0:
            raise ValueError("the crypto worker's deadline must be positive")
        #: Seconds one exchange may take before the child is killed (read per exchange).
        self.deadline = deadline
        self._process: trio.Process | None = None
        self._buffer = b""
        self._lock = trio.Lock()
        self._last_id = 0

    async def _start(self) -> trio.Process:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "leosuite.community.crypto_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._buffer = b""
        self._process = process
        return process

    async def _readline(self, process: trio.Process) -> bytes:
        assert process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await process.stdout.receive_some(65536)
            if not chunk or len(self._buffer) > _MAX_LINE:
                raise OSError("the crypto worker stopped answering")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    async def _send(self, process: trio.Process, request: bytes) -> None:
        assert process.stdin is not None
        try:
            await process.stdin.send_all(request)
        except trio.Cancelled:
            # half a request may sit in the pipe: the next one would be read as its tail
            await self._discard(kill=True)
            raise

    async def _answer(self, process: trio.Process, request_id: int) -> dict[str, Any]:
        """The answer to *request_id*; answers left by interrupted callers are dropped."""
        while True:
            answer = json.loads(await self._readline(process))
            if not isinstance(answer, dict):
                raise OSError("the crypto worker answered something other than an object")
            if answer.get("id") == request_id:
                return answer
            log.debug(
                "crypto worker: dropped the answer to interrupted request %s", answer.get("id")
            )

    async def _exchange(self, request_id: int, request: bytes) -> dict[str, Any]:
        for attempt in (1, 2):
            process = self._process
            try:
                if process is None or process.returncode is not None:
                    process = await self._start()
                await self._send(process, request)
                return await self._answer(process, request_id)
            except _BROKEN:
                log.warning("crypto worker failed (attempt %d); restarting it", attempt)
                await self.aclose()
        raise ProcessError("the crypto worker cannot be started")

    async def encrypt(self, passphrase: str, message: dict[str, str]) -> str:
        """``crypto.encrypt_payload`` in the child process."""
        async with self._lock:
            self._last_id += 1
            request_id = self._last_id
            request = {"id": request_id, "passphrase": passphrase, "message": message}
            deadline = self.deadline
            with trio.move_on_after(deadline) as scope:
                answer = await self._exchange(request_id, json.dumps(request).encode() + b"\n")
            if scope.cancelled_caught:
                log.warning("crypto worker did not answer within %g s; killed it", deadline)
                await self._discard(kill=True)
                raise ProcessError(
                    f"the crypto worker did not answer within {deadline:g} s;"
                    " it was killed and the next request starts a new one"
                )
        if "payload" in answer:
            return str(answer["payload"])
        raise ValueError(str(answer.get("error", "encryption failed")))

    async def system_payload(
        self, syskey: str, text: str, verb: PayloadVerb = "sysinfo", user: str = "SYSTEM"
    ) -> str:
        """``crypto.system_payload`` in the child process."""
        return await self.encrypt(syskey, {"user": user, "text": text, "verb": verb})

    async def aclose(self) -> None:
        """Stop the child: end of input, then SIGKILL if it has not exited in 2 s."""
        await self._discard(kill=False)

    async def _discard(self, *, kill: bool) -> None:
        process, self._process = self._process, None
        self._buffer = b""
        if process is None:
            return
        with trio.CancelScope(shield=True):
            if kill and process.returncode is None:
                process.kill()
            if process.stdin is not None:
                await process.stdin.aclose()
            with trio.move_on_after(2):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()


def main() -> None:
    """The child: one JSON request per line in, one answer with the request's id out."""
    for line in sys.stdin:
        request_id = None
        try:
            request = json.loads(line)
            request_id = request.get("id") if isinstance(request, dict) else None
            payload = encrypt_payload(str(request["passphrase"]), dict(request["message"]))
            answer: dict[str, Any] = {"id": request_id, "payload": payload}
        except Exception as exc:
            error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            answer = {"id": request_id, "error": error}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
