"""Where ``leosuite server logs`` reads a console: the daemon the command is logged in
to, or, for a server another node runs, that node, with a console token the first one
mints (a console's bytes never pass through another node)."""

from __future__ import annotations

import math
import time
from typing import Any

from ..http import HttpClient

__all__ = ["TAIL_BYTES", "ConsoleSource"]

#: What ``logs`` shows when no start is given: the console's last bytes.
TAIL_BYTES = 64 * 1024
#: A console token is minted anew once this old (seconds): half the default lifetime
#: (``node.console_token_lifetime``), so a long read never sends an expired one.
TOKEN_RENEW = 30.0


class ConsoleSource:
    """The console of server ``name``, read with ``server_log`` where it is."""

    def __init__(self, client: HttpClient, name: str, *, remote: bool = False) -> None:
        """``remote``: already known to run on another node (its status is not asked)."""
        self.name = name
        self._client = client
        # Only the node that runs a server knows where its console ends.
        self._end: int | None = None
        if not remote:
            self._end = client.post("/api/server_status", {"server": name}).get("readIndex")
        #: Another node runs the server (its console is read there).
        self.remote = self._end is None
        self._node: HttpClient | None = None
        self._token = ""
        self._minted = -math.inf
        #: The WebSocket API of the node that runs it (once a token was minted).
        self.ws_url = ""

    def token(self) -> str:
        """A console token for the node that runs the server (fresh enough to use)."""
        if time.monotonic() - self._minted > TOKEN_RENEW:
            answer = self._client.post("/api/server_console_token", {"server": self.name})
            self._token = str(answer["token"])
            self._minted = time.monotonic()
            self.ws_url = str(answer["ws_url"])
            self._node = HttpClient(str(answer["http_url"]), timeout=self._client.timeout)
        return self._token

    def read(self, index: int) -> dict[str, Any]:
        """The ``server_log`` answer from ``index`` (without waiting for more)."""
        body: dict[str, Any] = {"server": self.name, "readIndex": index, "wait": None}
        if not self.remote:
            answer: dict[str, Any] = self._client.post("/api/server_log", body)
            return answer
        body["console_token"] = self.token()
        assert self._node is not None
        answer = self._node.post("/api/server_log", body)
        return answer

    def end(self) -> int:
        """Where the console ends now (the index of its next byte)."""
        if self._end is None:
            self._end = int(self.read(0)["readIndex"])
        return self._end

    def tail_start(self) -> int:
        """Where ``logs`` starts without ``--from``: the last :data:`TAIL_BYTES`."""
        return max(0, self.end() - TAIL_BYTES)
