"""Console tokens: signed claims any node mints and the owning node checks, with keys
in the store's kv table that two daemons agree on and that rotate."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import trio

from leosuite.cluster.console_tokens import (
    KEY_PREFIX,
    MAX_TOKEN_LENGTH,
    MISSING_RECHECK,
    ConsoleClaims,
    ConsoleKeys,
    check,
    claims_of,
    sign,
)
from leosuite.errors import AuthError
from leosuite.store import Database, kv

KEY = b"k" * 32
DAY = 86400.0


def claims(**changes: object) -> ConsoleClaims:
    values: dict[str, object] = {
        "server": "mc",
        "node": "b",
        "account": 7,
        "rights": ("console",),
        "expires": 1000.0,
        "kid": 0,
    }
    values.update(changes)
    return ConsoleClaims(**values)  # type: ignore[arg-type]


def test_a_signed_token_checks_out() -> None:
    token = sign(claims(), KEY)
    assert check(token, KEY, now=999.0, node="b", server="mc") == claims()


@pytest.mark.parametrize(
    ("now", "node", "server", "reason"),
    [
        (1000.0, "b", "mc", "expired"),
        (5000.0, "b", "mc", "expired"),
        (10.0, "a", "mc", "for node 'b'"),
        (10.0, "b", "other", "for server 'mc'"),
    ],
)
def test_expired_or_elsewhere_is_refused(now: float, node: str, server: str, reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        check(sign(claims(), KEY), KEY, now=now, node=node, server=server)


def test_forged_tokens_are_refused() -> None:
    token = sign(claims(), KEY)
    prefix, body, signature = token.split(".")
    other = sign(claims(account=1), KEY).split(".")[1]
    forged = [
        sign(claims(), b"x" * 32),  # another key
        f"{prefix}.{other}.{signature}",  # claims changed under the same signature
        f"{prefix}.{body}.",  # no signature
        f"{prefix}.{body}.{signature[:-2]}",  # cut
        f"{prefix}.{body}.!!!!",  # not base64
    ]
    for token_text in forged:
        with pytest.raises(AuthError, match="refused"):
            check(token_text, KEY, now=10.0, node="b", server="mc")
    with pytest.raises(AuthError, match="signature"):
        check(token, None, now=10.0, node="b", server="mc")  # a key nobody knows


@pytest.mark.parametrize(
    "text",
    [
        "",
        "lct1",
        "lct1..",
        "lct2.e30.x",
        "lct1.e30.x",  # {} is not claims
        "lct1." + base64.urlsafe_b64encode(b'{"server":1}').decode() + ".x",
        "lct1.\u00e9.x",
        "a.b.c.d",
        "lct1." + "A" * MAX_TOKEN_LENGTH + ".x",
        "lct1.bnVsbA.x",  # null
    ],
)
def test_hostile_texts_are_not_tokens(text: str) -> None:
    with pytest.raises(AuthError, match="not a console token"):
        claims_of(text)


async def test_two_daemons_agree_on_the_key(tmp_path: Path) -> None:
    db_a = Database.open(tmp_path / "store.db")
    db_b = Database.open(tmp_path / "store.db")
    try:
        a, b = ConsoleKeys(), ConsoleKeys()
        results: list[tuple[int, bytes]] = []

        async def sign_on(keys: ConsoleKeys, db: Database) -> None:
            results.append(await keys.signing_key(db, 5 * DAY + 1, DAY))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sign_on, a, db_a)
            nursery.start_soon(sign_on, b, db_b)
        assert results[0] == results[1]
        kid, key = results[0]
        assert kid == 5
        assert len(key) == 32
        assert await ConsoleKeys().checking_key(db_b, 5, 5 * DAY + 2, DAY) == key
    finally:
        db_a.close()
        db_b.close()


async def test_keys_rotate_and_the_previous_one_stays_valid(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "store.db")
    try:
        minting, checking = ConsoleKeys(), ConsoleKeys()
        kid0, key0 = await minting.signing_key(db, 10.0, DAY)
        token = sign(claims(kid=kid0, expires=DAY + 60), key0)
        # A day later the next key signs; the token of the previous one is still good.
        kid1, key1 = await minting.signing_key(db, DAY + 1, DAY)
        assert (kid1, key1 != key0) == (kid0 + 1, True)
        old = await checking.checking_key(db, kid0, DAY + 30, DAY)
        assert old == key0
        assert check(token, old, now=DAY + 30, node="b", server="mc").kid == kid0
        # Two rotations later the first key is retired from the store and refused.
        await minting.signing_key(db, 2 * DAY + 1, DAY)
        stored = await db.call(lambda conn: kv.items(conn, KEY_PREFIX))
        assert sorted(stored) == [f"{KEY_PREFIX}1", f"{KEY_PREFIX}2"]
        assert await ConsoleKeys().checking_key(db, kid0, 2 * DAY + 1, DAY) is None
        assert await checking.checking_key(db, kid0, 2 * DAY + 1, DAY) is None
        # A key id from the far future or past is refused without a store read.
        assert await checking.checking_key(db, 10**9, 2 * DAY + 1, DAY) is None
        assert await checking.checking_key(db, -5, 2 * DAY + 1, DAY) is None
    finally:
        db.close()


async def test_a_missing_key_is_asked_for_once_in_a_while(tmp_path: Path) -> None:
    """A forged token naming the next key's id (not made yet) costs one store read per
    MISSING_RECHECK seconds, however often it is sent; once the key exists (a node whose
    clock is ahead made it), it is found at the next read."""
    db = Database.open(tmp_path / "store.db")
    try:
        reads = 0
        original = db.call

        async def counted(fn: Any) -> Any:
            nonlocal reads
            reads += 1
            return await original(fn)

        db.call = counted  # type: ignore[method-assign]
        checking = ConsoleKeys()
        now = 3 * DAY + 10
        for _ in range(50):
            assert await checking.checking_key(db, 4, now, DAY) is None
        assert reads == 1
        kid, key = await ConsoleKeys().signing_key(db, 4 * DAY + 1, DAY)  # made elsewhere
        assert kid == 4
        assert await checking.checking_key(db, 4, now + 1, DAY) is None  # asked lately
        assert await checking.checking_key(db, 4, now + MISSING_RECHECK, DAY) == key
    finally:
        db.close()
