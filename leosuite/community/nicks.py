"""Names people read: invisible characters, and when two names look alike.

Two names *look alike* when they share one of their :func:`name_keys`: after NFKC
and with every combining mark removed (a dot above ``U+0307``, a slash through
``U+0338``, a line below ``U+0332``, Tibetan marks), the confusable skeleton of
Unicode's UTS #39 (Cyrillic ``U+0405`` and Latin ``S``, ``rn`` and ``m``, ``l``, ``I``
and ``1`` share one) combined with case folding. The skeleton's mapping is Unicode's
own ``confusables.txt`` (UTS #39 data, version 13.0.0), shipped beside this module as
``data/confusables.txt`` and read once, on first use: no maintained Python library
computes the UTS #39 skeleton.

A name *has invisible characters* when one of them is a control or format character,
a separator, unassigned or private, a default-ignorable code point (fillers such as
``U+3164``, variation selectors, tags), a blank that prints as nothing (``U+2800``,
the musical null notehead ``U+1D159``), or a combining mark with no base to sit on.
"""

from __future__ import annotations

import functools
import unicodedata
from importlib import resources

__all__ = ["has_invisible", "look_alike", "name_keys", "skeleton"]

#: Unicode's Default_Ignorable_Code_Point ranges, plus blanks that print as nothing.
_INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x16FE4, 0x16FE4),
    (0x1D159, 0x1D159),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
#: General categories that never print as a visible mark of their own.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
#: Combining marks (nonspacing, enclosing): drawn on the character before them.
_MARK_CATEGORIES = frozenset({"Mn", "Me"})
#: Marks that are punctuation by category but draw as a dot on the letter before them
#: (Tibetan tsheg and its non-breaking form).
_MARK_LIKE = frozenset({"\u0f0b", "\u0f0c"})


def _is_invisible(char: str) -> bool:
    code = ord(char)
    if any(low <= code <= high for low, high in _INVISIBLE_RANGES):
        return True
    return unicodedata.category(char) in _INVISIBLE_CATEGORIES


def has_invisible(name: str) -> bool:
    """Whether ``name`` has a character that shows nothing (or moves text around), or
    starts with a combining mark (which has no base to draw on)."""
    if name and unicodedata.category(unicodedata.normalize("NFC", name)[0]) in _MARK_CATEGORIES:
        return True
    return any(_is_invisible(c) for c in name)


def _bare(text: str) -> str:
    """``text`` in NFD without its combining marks and invisible characters."""
    return "".join(
        c
        for c in unicodedata.normalize("NFD", text)
        if unicodedata.category(c) not in _MARK_CATEGORIES
        and c not in _MARK_LIKE
        and not _is_ignorable(c)
    )


@functools.cache
def _prototypes() -> dict[str, str]:
    """``confusables.txt``: each character that looks like another, to its prototype."""
    table: dict[str, str] = {}
    text = resources.files(__package__).joinpath("data/confusables.txt").read_text("utf-8-sig")
    for line in text.splitlines():
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        source, target, *_kind = (field.strip() for field in data.split(";"))
        table[chr(int(source, 16))] = "".join(chr(int(c, 16)) for c in target.split())
    return table


def skeleton(text: str) -> str:
    """UTS #39's skeleton: NFD, each character to its prototype (default-ignorable
    characters dropped), NFD again."""
    table = _prototypes()
    mapped = "".join(
        table.get(c, c) for c in unicodedata.normalize("NFD", text) if not _is_ignorable(c)
    )
    return unicodedata.normalize("NFD", mapped)


def _is_ignorable(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _INVISIBLE_RANGES)


@functools.lru_cache(maxsize=4096)
def name_keys(name: str) -> frozenset[str]:
    """What ``name`` looks like, in any letter case: names that share a key look alike.

    Three keys, because letter case and look-alikes do not commute (``I`` looks like
    ``l`` but is ``i`` in another case): the skeleton of the case-folded name (``ADMIN``
    and ``admin``), the skeleton of the case-folded skeleton (``Info`` and ``lnfo``,
    Cyrillic capitals and Latin ones), and the same with ``I`` folded first (``BIG``
    with a Cyrillic ``U+0412`` and ``big``). Combining marks are removed before and
    after (a prototype may bring its own), so marks never tell two names apart."""
    text = _bare(unicodedata.normalize("NFKC", name))
    return frozenset(
        _bare(key)
        for key in (
            skeleton(text.casefold()),
            skeleton(skeleton(text).casefold()),
            skeleton(skeleton(text.replace("I", "i")).casefold()),
        )
    )


def look_alike(a: str, b: str) -> bool:
    return not name_keys(a).isdisjoint(name_keys(b))
