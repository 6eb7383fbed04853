"""Variants of the leosuite daemon for ``chat_fanout.py``, applied at interpreter start.

``chat_fanout.py`` runs a variant daemon with ``PYTHONPATH`` pointing at a directory
whose ``sitecustomize.py`` calls :func:`apply` with ``$BENCH_CHAT_VARIANT``, so that
one run compares the tree as it is with the same tree minus one lever:

* ``nocache``: every member's frame is encoded again (``event_frame`` bypasses the
  ``event.frames`` cache), i.e. what encoding once buys.
* ``permsg``: the connection writer sends one message per ``send_message`` (one
  frame, one ``send_all`` each), i.e. what the batching writer buys.
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
    elif variant == "permsg":
        import trio

        from leosuite.api.ws.conn import WsConnection

        async def writer(self: Any) -> None:
            async for item in self._receive:
                await self.ws.send_message(item.payload)
                self._activity = trio.current_time()
                if item.sent is not None:
                    item.sent.set()

        WsConnection._writer = writer  # type: ignore[method-assign]
    elif variant:
        raise SystemExit(f"unknown BENCH_CHAT_VARIANT {variant!r}")


SITECUSTOMIZE = """\
import os, sys
sys.path.insert(0, {bench!r})
import _chat_variants
_chat_variants.apply(os.environ.get("BENCH_CHAT_VARIANT", ""))
"""
