"""Proof-of-work of the login flow (seed 001), as plain functions.

The client receives a ``random`` (32 hex chars), a count N and a difficulty D, and
must find N distinct strings ``p`` such that ``sha256(random + p)`` starts with at
least D zero bits.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence

__all__ = ["MAX_PROOF_LENGTH", "leading_zero_bits", "check_proofs", "solve"]

#: A proof longer than this is refused without hashing it.
MAX_PROOF_LENGTH = 64


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def check_proofs(random: str, proofs: Sequence[str], *, count: int, difficulty: int) -> str | None:
    """Return ``None`` when ``proofs`` are good, else the reason they are not."""
    if len(proofs) != count:
        return f"expected {count} proofs of work, got {len(proofs)}"
    if len(set(proofs)) != len(proofs):
        return "proofs of work must be distinct"
    prefix = random.encode()
    for proof in proofs:
        if not proof or len(proof) > MAX_PROOF_LENGTH:
            return f"a proof of work must be 1-{MAX_PROOF_LENGTH} characters"
        digest = hashlib.sha256(prefix + proof.encode()).digest()
        if leading_zero_bits(digest) < difficulty:
            return "a proof of work does not meet the difficulty"
    return None


def solve(
    random: str,
    *,
    count: int,
    difficulty: int,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Find ``count`` proofs (the client side; used by the CLI and tests)."""
    prefix = random.encode()
    found: list[str] = []
    for n in itertools.count():
        candidate = format(n, "x")
        if leading_zero_bits(hashlib.sha256(prefix + candidate.encode()).digest()) >= difficulty:
            found.append(candidate)
            if progress is not None:
                progress(len(found))
            if len(found) == count:
                return found
    raise AssertionError("unreachable")  # pragma: no cover
