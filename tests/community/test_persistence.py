"""Persistent sessions survive a daemon restart; others, rooms and unreadable rows don't
come back (and an unreadable row never stops the daemon)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from leosuite.community.core import ChatCore
from leosuite.community.models import ChatLimits, Member
from leosuite.community.persistence import SessionStore, decode_history, encode_history
from leosuite.store import chat_sessions
from tests.helpers.daemon import make_settings, start_daemon
from tests.helpers.store import open_test_store, store_sql


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


async def test_persistent_sessions_survive_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path / "data")
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            first = await start_daemon(nursery, settings)
            core: ChatCore = first.ctx.chat.core
            alice = Member("alice", ip="10.0.0.1", account_id=1)
            core.connect(alice)
            lounge, _ = core.join(alice, "#Lounge")
            lounge.persistent = True
            lounge.title = "The lounge"
            lounge.password_hash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA"
            lounge.opword_hash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$b3A"
            lounge.nsfm = True
            lounge.closed = True
            lounge.auth_only = True  # guests stay out after a restart too
            lounge.idle_override = True
            lounge.max_user_count = 7
            lounge.banned.add("mallory")
            lounge.muted.update({"account:7", "guest:99"})  # a guest is one connection
            core.say(alice, lounge, "hello, lounge")
            core.system(lounge, "be nice", "alert")
            lounge_id, started = lounge.id, lounge.start_time
            damaged, _ = core.join(alice, "damaged")
            damaged.persistent = True
            core.say(alice, damaged, "soon unreadable")
            temp, _ = core.join(alice, "temp")  # not persistent: gone after a restart
            core.say(alice, temp, "bye")
            await first.ctx.chat.save_sessions()  # a housekeeping pass writes them
            assert await first.ctx.db.call(chat_sessions.ids) == {lounge_id, damaged.id}
            core.say(alice, lounge, "last words")  # saved by the shutdown
            next_id, size = lounge.next_id, lounge.size
            first.daemon.request_stop()

        await trio.to_thread.run_sync(
            store_sql, settings.data_dir, "UPDATE chat_sessions SET history = ? WHERE name = ?",
            b"\xc1\xff\x00", "damaged",
        )  # fmt: skip
        caplog.set_level(logging.WARNING, logger="leosuite.community.persistence")
        async with trio.open_nursery() as nursery:
            second = await start_daemon(nursery, settings)
            core = second.ctx.chat.core
            assert core.find("temp") is None
            restored = core.find("lounge")
            assert restored is not None
            assert restored.id == lounge_id
            assert restored.name == "Lounge"
            assert (restored.title, restored.nsfm, restored.closed, restored.persistent) == (
                "The lounge", True, True, True,
            )  # fmt: skip
            assert restored.password_hash == lounge.password_hash
            assert restored.opword_hash == lounge.opword_hash
            assert restored.max_user_count == 7
            assert (restored.auth_only, restored.idle_override) == (True, True)
            assert (core.find("damaged").auth_only, core.find("damaged").idle_override) == (
                False,
                False,
            )
            assert restored.start_time == started
            assert restored.ops == {"account:1"}  # operators by identity, never by name
            assert restored.muted == {"account:7"}
            assert restored.banned == {"mallory"}
            assert restored.members == {}
            assert [(e.kind, e.user, e.text, e.level) for e in restored.history] == [
                ("message", "alice", "hello, lounge", "info"),
                ("system", "SYSTEM", "be nice", "alert"),
                ("message", "alice", "last words", "info"),
            ]
            assert {e.session for e in restored.history} == {lounge_id}
            assert restored.size == size
            assert restored.next_id == next_id
            # ids go on where they stopped; members can join the restored session
            carol = Member("carol", ip="10.0.0.2", mod=True)
            core.connect(carol)
            core.join(carol, "lounge")
            assert core.say(carol, restored, "back").id == next_id
            # the unreadable history is skipped, with a log line: the session is back
            damaged_again = core.find("damaged")
            assert damaged_again is not None
            assert damaged_again.persistent
            assert list(damaged_again.history) == []
            assert "unreadable" in caplog.text
            assert "damaged" in caplog.text
            # a persistent session stays when its last member leaves, and on idle close
            core.leave(carol, restored)
            restored.last_activity = damaged_again.last_activity = 0.0
            second.ctx.chat.housekeeping()
            assert core.find("lounge") is restored
            second.daemon.request_stop()


async def test_save_writes_changed_sessions_and_deletes_the_rest(tmp_path: Path) -> None:
    db = await trio.to_thread.run_sync(open_test_store, tmp_path)
    try:
        clock = Clock()
        core = ChatCore(ChatLimits(), clock)
        store = SessionStore(db, clock)
        alice = Member("alice")
        core.connect(alice)
        kept, _ = core.join(alice, "kept")
        kept.persistent = True
        plain, _ = core.join(alice, "plain")
        room, _ = core.join(alice, "room")
        room.persistent = True
        room.room = object()  # rooms are never stored
        assert await store.save(core) == 1
        assert await store.save(core) == 0  # nothing changed: nothing written
        core.say(alice, kept, "news")
        assert await store.save(core) == 1
        kept.banned.add("eve")
        assert await store.save(core) == 1
        rows = await db.call(chat_sessions.list_all)
        assert [(r.name, r.banned) for r in rows] == [("kept", ("eve",))]
        plain.persistent = True
        assert await store.save(core) == 1
        plain.persistent = False  # no longer persistent: its row goes
        core.close(kept, "shut down")  # shut down: its row goes
        assert await store.save(core) == 2
        assert await db.call(chat_sessions.ids) == set()
        # with persistence disabled nothing is written, nothing deleted
        plain.persistent = True
        core.update_limits(ChatLimits(enable_persistence=False))
        assert await store.save(core) == 0
        assert await store.load(ChatCore(ChatLimits(), clock)) == []
    finally:
        db.close()


async def test_unrestorable_rows_are_skipped_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = await trio.to_thread.run_sync(open_test_store, tmp_path)
    try:
        clock = Clock()
        core = ChatCore(ChatLimits(), clock)
        alice = Member("alice")
        core.connect(alice)
        for name in ("one", "two", "three"):
            core.join(alice, name)[0].persistent = True
            core.say(alice, core.find(name) or pytest.fail("no such session"), f"in {name}")
        await SessionStore(db, clock).save(core)
        await db.call(
            lambda c: c.execute("UPDATE chat_sessions SET name = 'bad name' WHERE name = 'two'")
        )
        await db.call(
            lambda c: c.execute("UPDATE chat_sessions SET history_format = 99 WHERE name = 'three'")
        )
        caplog.set_level(logging.WARNING, logger="leosuite.community.persistence")
        fresh = ChatCore(ChatLimits(), clock)
        store = SessionStore(db, clock)
        restored = await store.load(fresh)
        assert sorted(s.name for s in restored) == ["one", "three"]
        assert [e.text for e in (fresh.find("one") or pytest.fail("no such session")).history] == [
            "in one"
        ]
        assert list((fresh.find("three") or pytest.fail("no such session")).history) == []
        assert "'bad name'" in caplog.text
        assert "format 99" in caplog.text
        await store.save(fresh, force=True)
        assert len(await db.call(chat_sessions.ids)) == 3  # the bad row is left for a human
    finally:
        db.close()


def test_history_round_trip_and_garbage() -> None:
    clock = Clock()
    core = ChatCore(ChatLimits(), clock)
    alice, bob = Member("alice", kind="room"), Member("bob", kind="room")
    core.connect(alice)
    core.connect(bob)
    session, _ = core.join(alice, "r")
    core.join(bob, "r")
    core.say(alice, session, payload="b64==", to="bob")
    core.system(session, "warn", "warn")
    events = decode_history(encode_history(session), session)
    fields = [(e.id, e.kind, e.user, e.time, e.text, e.origin, e.payload, e.to, e.level)
              for e in events]  # fmt: skip
    assert fields == [
        (1, "message", "alice", clock.t, "", "room", "b64==", "bob", "info"),
        (2, "system", "SYSTEM", clock.t, "warn", "system", None, None, "warn"),
    ]
    import msgspec

    for garbage in (b"\x93\x01", b"not msgpack at all", b"\x91\x94\x01\xa4nope\xa1a\x00"):
        with pytest.raises(msgspec.DecodeError):
            decode_history(garbage, session)


def test_stored_direct_messages_keep_accounts_only() -> None:
    """A guest's identity is one connection, and a restart reuses its number: a stored
    direct message that involved a guest is replayed to nobody."""
    core = ChatCore(ChatLimits(), Clock())
    ann, guest = Member("ann", account_id=7), Member("gus")
    for member in (ann, guest):
        core.connect(member)
    session, _ = core.join(ann, "c")
    core.join(guest, "c")
    core.say(ann, session, "to gus", to="gus")
    core.say(guest, session, "to ann", to="ann")
    core.say(ann, session, "to herself", to="ann")
    core.say(ann, session, "to all")
    events = decode_history(encode_history(session), session)
    again = Member("gus")  # a new guest; after a restart it may get the same number
    again.id = guest.id
    assert [e.text for e in events if e.addressed_to(again)] == ["to all"]
    assert [e.text for e in events if e.addressed_to(ann)] == ["to herself", "to all"]
    assert [e.text for e in core.history(session) if e.addressed_to(ann)] == [
        "to gus", "to ann", "to herself", "to all"
    ]  # fmt: skip
