"""Variants of the leosuite daemon for ``chat_fanout.py``, applied at interpreter start.

``chat_fanout.py`` runs a variant daemon with ``PYTHONPATH`` pointing at a directory
whose ``sitecustomize.py`` calls :func:`apply` with ``$BENCH_CHAT_VARIANT``, so that
one run compares the tree as it is with the same tree minus one lever:

* ``nocache``: every member's frame is encoded again (``event_frame`` bypasses the
  ``event.frames`` cache), i.e. what encoding once buys.
* ``writer``: no direct write: every message is queued for the connection's writer
  task (which writes what is queued with one raw write), i.e. what writing straight to
  an idle member's socket from the fan-out buys.
* ``nocork``: a chat connection handles one message before it reads again and writes
  each member's frame at once, i.e. what one write per member for the messages that
  arrived together buys.
* ``announce1``: each login and logout goes to every member at once, one write per
  member per login, i.e. what announcing the logins of one moment together buys (a
  crowd connecting: the "connected in" line).
* ``permsg``: no raw writes at all: the writer sends one message per ``send_message``
  (one wsproto encode and one ``send_all`` each).
"""

from __future__ import annotations

from typing import Any


def apply(variant: str) -> None:
    if variant == "nocache":
        from leosuite.community import chat_protocol

        render = chat_protocol._render

        def event_frame(event: Any, *, history: bool = False) -> str | None:
            return render(event, history)

        chat_protocol.event_frame = event_frame
    elif variant == "writer":
        from leosuite.api.ws.fanout import Outbox

        def put_nowait(self: Any, data: Any) -> bool:
            return self._enqueue(data) is not False

        Outbox.put_nowait = put_nowait  # type: ignore[method-assign]
    elif variant == "nocork":
        import contextlib

        from leosuite.api.ws import fanout

        fanout.BURST = 1
        fanout.corked = contextlib.nullcontext  # type: ignore[assignment]
    elif variant == "announce1":
        from leosuite.api.ws.chat import WsChat

        def announce(self: Any, frame: str, *, login_of: Any = None) -> None:
            for client in list(self.clients.values()):  # as a broadcast did: a write each
                if client is not login_of and not client.conn.push_nowait(frame, shared=True):
                    self._slow.append(client)
            if self._slow:
                self._wake_announcer()

        WsChat._announce = announce  # type: ignore[method-assign]
    elif variant == "permsg":
        from leosuite._compat import trio_websocket

        trio_websocket.FAST_WRITES = False
    elif variant:
        raise SystemExit(f"unknown BENCH_CHAT_VARIANT {variant!r}")


SITECUSTOMIZE = """\
import os, sys
sys.path.insert(0, {bench!r})
import _chat_variants
_chat_variants.apply(os.environ.get("BENCH_CHAT_VARIANT", ""))
"""
