"""Look-alike names and invisible characters (``leosuite.community.nicks``), without
sockets."""

from __future__ import annotations

import pytest

from leosuite.community.models import validate_nick
from leosuite.community.nicks import has_invisible, look_alike, skeleton
from leosuite.errors import InvalidInput
from leosuite.store import accounts, servers


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SYSTEM", "\u0405YSTEM"),  # a Cyrillic capital dze
        ("SYSTEM", "system"),
        ("SYSTEM", "\uff33\uff39\uff33\uff34\uff25\uff2d"),  # fullwidth
        ("admin", "\u0430dmin"),  # a Cyrillic a
        ("admin", "ADMIN"),
        ("admin", "adrnin"),  # rn reads as m
        ("Info", "lnfo"),  # I and l
        ("BIG", "\u0412IG"),  # a Cyrillic ve
        ("big", "\u0412IG"),
        ("bob", "b0b"),
    ],
)
def test_look_alikes_share_a_key(a: str, b: str) -> None:
    assert look_alike(a, b)
    assert look_alike(b, a)


@pytest.mark.parametrize(("a", "b"), [("bob", "bobby"), ("alice", "alicia"), ("Hi", "HL")])
def test_different_names_do_not(a: str, b: str) -> None:
    assert not look_alike(a, b)


def test_the_skeleton_follows_unicode_s_table() -> None:
    assert skeleton("\u0440\u0430ypal") == "paypal"  # Cyrillic er and a
    assert skeleton("m") == "rn"
    assert skeleton("a\u200bb") == "ab"  # default-ignorable characters drop out


@pytest.mark.parametrize(
    "name",
    ["a\u200bb", "x\u202ey", "\u3164", "a\u2800", "e\ufe0f", "tab\there", "a\u00adb", "\U000e0041"],
)
def test_invisible_characters(name: str) -> None:
    assert has_invisible(name)
    with pytest.raises(InvalidInput, match="invisible"):
        validate_nick(name)


def test_visible_names_are_fine() -> None:
    for name in ("alice", "Zoë", "\u0430\u043b\u0438\u0441\u0430", "\u82b1\u5b50", "o'"):
        assert not has_invisible(name)
    assert validate_nick("Zoë") == "Zoë"
    with pytest.raises(InvalidInput, match="reserved"):
        validate_nick("\u0405ystem")


def test_account_and_server_names_have_no_invisible_characters_either() -> None:
    for name in ("admin\u2800", "a\u200bdmin", "\u0430dmin", "admin\u3164"):
        with pytest.raises(InvalidInput):
            accounts.validate_username(name)
        assert servers.NAME_RE.fullmatch(name) is None
