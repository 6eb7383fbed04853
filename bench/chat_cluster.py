"""Chat fan-out across nodes: one channel's members split over two nodes vs all on one.

Starts its own PostgreSQL server (Debian's ``postgresql`` package, as
``bench/store_backends.py``) and, in this process, two chat nodes: each a chat core
with its relay on its own :class:`~leosuite.cluster.pg_bus.PgBus` (a listening and a
publishing connection of its own, as two daemons have). No WebSocket: members are
in-process inboxes, so the table shows what the relay and ``LISTEN``/``NOTIFY`` add
(``bench/chat_fanout.py`` measures the WebSocket chat of one daemon).

Per case the same ``--members`` members are in one channel, either all on node a
("one node") or half on each ("two nodes"); ``--senders`` of them (half on each node
when split) send ``--messages`` messages in all, at ``--rate`` messages/s in total
(open loop) or, with rate ``max``, as fast as the receiving side keeps up (closed
loop: at most ``--window`` messages not yet delivered everywhere). Each case stops
after ``--limit`` seconds. Measured: messages and deliveries per second (from the
first send to the last delivery), and latency (send to delivery, one clock) median and
p95 over all deliveries and over those to the other node; NOTIFY messages published.

    flock /tmp/bench.lock .venv/bin/python bench/chat_cluster.py \\
        [--members 100] [--senders 4] [--messages 2000] [--rates 200,1000,max]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import fmt, percentile, print_table

from leosuite.cluster.chat_relay import ChatRelay, run_chat_relay
from leosuite.cluster.pg_bus import PgBus
from leosuite.community.core import ChatCore
from leosuite.community.models import ChatEvent, ChatLimits, Member
from tests.helpers.postgres import PostgresServer, find_bin_dir


class Stats:
    def __init__(self, expected: int) -> None:
        self.sent_at: dict[str, float] = {}
        self.latency: list[float] = []
        self.remote: list[float] = []
        self.expected = expected
        self.delivered = 0
        self.last = 0.0
        self.done = trio.Event()
        self.pending: dict[str, int] = {}  # message -> deliveries still to come
        self.drained = trio.Event()


def member(core: ChatCore, nick: str, node: str, stats: Stats) -> Member:
    def deliver(event: ChatEvent) -> bool:
        if event.kind != "message":
            return True
        now = trio.current_time()
        sent = stats.sent_at.get(event.text)
        if sent is not None:
            stats.latency.append(now - sent)
            if not event.text.startswith(node + ":"):
                stats.remote.append(now - sent)
        stats.delivered += 1
        stats.last = now
        left = stats.pending.get(event.text, 0) - 1
        if left <= 0:
            stats.pending.pop(event.text, None)
            stats.drained.set()
        else:
            stats.pending[event.text] = left
        if stats.delivered >= stats.expected:
            stats.done.set()
        return True

    return Member(nick, ip="10.0.0.1", deliver=deliver)


async def run_case(
    url: str,
    members: int,
    senders: int,
    messages: int,
    rate: str,
    split: bool,
    args: argparse.Namespace,
) -> dict[str, float]:
    cores = {name: ChatCore(ChatLimits(), lambda: 0.0) for name in ("a", "b")}
    buses = {name: PgBus(url, name) for name in cores}
    relays: dict[str, ChatRelay] = {}
    stats = Stats(messages * members)
    async with trio.open_nursery() as nursery:
        for name, core in cores.items():
            await nursery.start(buses[name].run)
            relays[name] = await nursery.start(run_chat_relay, core, buses[name], lambda: 0.0)
        placed: list[tuple[str, Member]] = []
        for i in range(members):
            node = "b" if split and i % 2 else "a"
            m = member(cores[node], f"m{i}", node, stats)
            cores[node].connect(m)
            cores[node].join(m, "bench")
            placed.append((node, m))
        if split:
            with trio.fail_after(30):
                while len(relays["a"].names(cores["a"].find("bench"))) < members // 2:  # type: ignore[arg-type]
                    await trio.sleep(0.05)
        await trio.sleep(0.5)
        published = sum(b.published for b in buses.values())
        chosen = placed[:senders]
        start = trio.current_time()
        with trio.move_on_after(args.limit):
            for n in range(messages):
                node, sender = chosen[n % len(chosen)]
                text = f"{node}:{n}:" + "x" * args.size
                session = cores[node].find("bench")
                assert session is not None
                stats.sent_at[text] = trio.current_time()
                stats.pending[text] = members
                cores[node].say(sender, session, text)
                if rate == "max":
                    while len(stats.pending) >= args.window:
                        stats.drained = trio.Event()
                        await stats.drained.wait()
                else:
                    await trio.sleep_until(start + (n + 1) / float(rate))
            await stats.done.wait()
        elapsed = (stats.last or trio.current_time()) - start
        with trio.move_on_after(10):  # what is still queued for the bus goes out first
            while any(r.queued() for r in relays.values()):
                await trio.sleep(0.05)
            await trio.sleep(0.2)
        published = sum(b.published for b in buses.values()) - published
        lost = sum(r.lost + r.dropped for r in relays.values())
        nursery.cancel_scope.cancel()
    for bus in buses.values():
        await bus.aclose()
    sent = len(stats.sent_at)
    return {
        "sent": sent,
        "msg_s": sent / elapsed if elapsed > 0 else float("nan"),
        "deliv_s": stats.delivered / elapsed if elapsed > 0 else float("nan"),
        "missing": sent * members - stats.delivered,
        "p50": 1000 * percentile(stats.latency, 50),
        "p95": 1000 * percentile(stats.latency, 95),
        "r50": 1000 * percentile(stats.remote, 50),
        "r95": 1000 * percentile(stats.remote, 95),
        "notify": published,
        "lost": lost,
    }


async def bus_case(url: str, count: int, size: int, limit: float) -> dict[str, float]:
    """The bus alone: ``count`` events of ``size`` bytes from a to b, one after another."""
    a, b = PgBus(url, "a"), PgBus(url, "b")
    latency: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(b.run)
        with b.subscribe("bench") as events:

            async def receive() -> None:
                async for event in events:
                    sent = event.data.get("t")
                    if isinstance(sent, float):
                        latency.append(trio.current_time() - sent)
                    if len(latency) >= count:
                        return

            start = trio.current_time()
            with trio.move_on_after(limit):
                async with trio.open_nursery() as inner:
                    inner.start_soon(receive)
                    for _ in range(count):
                        await a.publish("bench", {"t": trio.current_time(), "p": "x" * size})
            elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    await a.aclose()
    await b.aclose()
    return {
        "events": len(latency),
        "per_s": len(latency) / elapsed,
        "p50": 1000 * percentile(latency, 50),
        "p95": 1000 * percentile(latency, 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100, help="members of the channel")
    parser.add_argument("--senders", type=int, default=4, help="members who send")
    parser.add_argument("--messages", type=int, default=2000, help="messages per case")
    parser.add_argument("--rates", default="200,1000,max", help="messages/s in total, or max")
    parser.add_argument("--window", type=int, default=200, help="max: messages in flight")
    parser.add_argument("--size", type=int, default=100, help="bytes of text per message")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per case at most")
    args = parser.parse_args()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("no PostgreSQL under /usr/lib/postgresql: apt-get install postgresql")
    rows: list[list[str]] = []
    server = PostgresServer(bin_dir)
    with tempfile.TemporaryDirectory(prefix="leosuite-bench-"):
        try:
            server.start()
            url = server.new_database()
            for rate in args.rates.split(","):
                for split in (False, True):
                    r = trio.run(
                        run_case, url, args.members, args.senders, args.messages, rate, split, args
                    )
                    rows.append(
                        [
                            "two nodes" if split else "one node",
                            rate,
                            fmt(int(r["sent"])),
                            fmt(r["msg_s"], 0),
                            fmt(r["deliv_s"], 0),
                            fmt(r["p50"], 2),
                            fmt(r["p95"], 2),
                            fmt(r["r50"], 2) if split else "-",
                            fmt(r["r95"], 2) if split else "-",
                            fmt(int(r["notify"])),
                            fmt(int(r["missing"])),
                        ]
                    )
            raw = trio.run(bus_case, url, args.messages, args.size, args.limit)
        finally:
            server.stop()
    print(
        f"The bus alone (one NOTIFY per event, {args.size}-byte payloads, published one after "
        f"another): {fmt(int(raw['events']))} events, {fmt(raw['per_s'], 0)}/s, latency p50 "
        f"{fmt(raw['p50'], 2)} ms, p95 {fmt(raw['p95'], 2)} ms\n"
    )
    print(
        f"{args.members} members in one channel, {args.senders} senders, {args.size}-byte messages"
    )
    print_table(
        [
            "members on",
            "offered msg/s",
            "messages",
            "msg/s",
            "deliveries/s",
            "p50 ms",
            "p95 ms",
            "other node p50 ms",
            "other node p95 ms",
            "NOTIFYs",
            "not delivered",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
