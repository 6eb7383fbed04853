"""Any role that may connect to the store's database may ``NOTIFY`` on the bus's
channel. A notification nested too deep to decode is dropped like any malformed one:
the listening connection stays (no reconnect, no resync storm), and the events after
it arrive."""

from __future__ import annotations

import psycopg
import trio

from leosuite.cluster.bus import CHANNEL, ClusterEvent
from leosuite.cluster.pg_bus import PgBus


async def test_a_deeply_nested_notification_is_dropped_and_listening_goes_on(
    postgres_url: str,
) -> None:
    b = PgBus(postgres_url, "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        with b.subscribe("ban") as events:
            deep = '{"kind": "ban", "node": "x", "data": {"a": ' + "[" * 3000 + "]" * 3000 + "}}"
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, deep))
                conn.execute(
                    "SELECT pg_notify(%s, %s)",
                    (CHANNEL, '{"kind": "ban", "node": "x", "data": {"ok": true}}'),
                )
            with trio.fail_after(10):
                got = await events.receive()
            assert got == ClusterEvent(kind="ban", node="x", data={"ok": True})
        assert b.connected
        assert b.reconnects == 0
        nursery.cancel_scope.cancel()
