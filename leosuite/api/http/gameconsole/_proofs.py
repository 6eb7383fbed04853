"""GameConsole's proof-of-work, as plain functions.

The client is given a ``random`` and a count N; each of its web workers hashes strings
that start with the random (the random, ``Math.random()``, a counter, ``Math.random()``
again) until the SHA-512 of one, in hex, starts with four zeros (16 zero bits, fixed
in the client), and the login sends those strings as ``proofofwork``.

The client sends its login as soon as the user submits, with the proofs found by then
(it may also carry strings hashed for the random before, from workers still running):
a login passes when at least N distinct strings of the list meet the rule; the others
are not counted.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence

from ....settings import GAMECONSOLE_MAX_PROOFS, GAMECONSOLE_PROOF_BITS

__all__ = [
    "MAX_PROOFS",
    "MAX_PROOF_LENGTH",
    "PROOF_BITS",
    "good_proofs",
    "meets_rule",
    "proof_count",
    "solve",
]

#: Zero bits the client's proofs have: four hex zeros, fixed in its worker.
PROOF_BITS = GAMECONSOLE_PROOF_BITS
#: The most proofs a login is ever asked for (settings refuse a login cost beyond it).
MAX_PROOFS = GAMECONSOLE_MAX_PROOFS
#: A proof longer than this is not hashed (the client's are under 100 characters).
MAX_PROOF_LENGTH = 256


def proof_count(count: int, difficulty: int) -> int:
    """Proofs of 16 bits that cost a client what ``count`` proofs of ``difficulty`` bits
    cost on leosuite's own login (the same expected number of hashes), at least one,
    at most :data:`MAX_PROOFS`."""
    if count <= 0:
        return 0
    needed = math.ceil(count * 2.0 ** (difficulty - PROOF_BITS))
    return max(1, min(needed, MAX_PROOFS))


def meets_rule(random: str, proof: str) -> bool:
    """Whether ``proof`` starts with ``random`` and its SHA-512 starts with 16 zero bits."""
    if len(proof) > MAX_PROOF_LENGTH or not proof.startswith(random):
        return False
    try:
        data = proof.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no browser hashes that
        return False
    return hashlib.sha512(data).digest()[:2] == b"\0\0"


def good_proofs(random: str, proofs: Sequence[str]) -> int:
    """How many distinct strings of ``proofs`` meet the rule for ``random``."""
    return sum(1 for proof in set(proofs) if meets_rule(random, proof))


def solve(random: str, count: int) -> list[str]:
    """Find ``count`` proofs the way the client does, minus its randomness (tests, tools)."""
    found: list[str] = []
    for n in itertools.count():
        candidate = f"{random}0.{n}"
        if meets_rule(random, candidate):
            found.append(candidate)
            if len(found) == count:
                return found
    raise AssertionError("unreachable")  # pragma: no cover
