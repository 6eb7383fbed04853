"""OpenPGP work in a child process, so the event loop never stalls.

pysequoia spends ~45 ms per message on key stretching while holding the GIL (a
worker *thread* would stall the loop just the same). :class:`CryptoWorker` keeps one
child process (``python -m leosuite.community.crypto_worker``) that reads JSON lines
``{"passphrase", "message"}`` on stdin and answers ``{"payload"}`` or ``{"error"}``
lines on stdout, one request at a time. If the child dies it is started again on
the next request.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import trio

from .crypto import PayloadVerb, encrypt_payload

__all__ = ["CryptoWorker"]

log = logging.getLogger("leosuite.community")

_MAX_LINE = 1 << 22


class CryptoWorker:
    def __init__(self) -> None:
        self._process: trio.Process | None = None
        self._buffer = b""
        self._lock = trio.Lock()

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

    async def encrypt(self, passphrase: str, message: dict[str, str]) -> str:
        """``crypto.encrypt_payload`` in the child process."""
        request = json.dumps({"passphrase": passphrase, "message": message}).encode() + b"\n"
        async with self._lock:
            for attempt in (1, 2):
                process = self._process
                try:
                    if process is None or process.returncode is not None:
                        process = await self._start()
                    assert process.stdin is not None
                    await process.stdin.send_all(request)
                    answer = json.loads(await self._readline(process))
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, ValueError):
                    log.warning("crypto worker failed (attempt %d); restarting it", attempt)
                    await self.aclose()
                    continue
                if "payload" in answer:
                    return str(answer["payload"])
                raise ValueError(str(answer.get("error", "encryption failed")))
        raise OSError("the crypto worker cannot be started")

    async def system_payload(
        self, syskey: str, text: str, verb: PayloadVerb = "sysinfo", user: str = "SYSTEM"
    ) -> str:
        """``crypto.system_payload`` in the child process."""
        return await self.encrypt(syskey, {"user": user, "text": text, "verb": verb})

    async def aclose(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with trio.CancelScope(shield=True):
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
    """The child: one JSON request per line in, one answer per line out."""
    for line in sys.stdin:
        try:
            request = json.loads(line)
            payload = encrypt_payload(str(request["passphrase"]), dict(request["message"]))
            answer: dict[str, str] = {"payload": payload}
        except Exception as exc:
            answer = {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
