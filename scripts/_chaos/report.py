"""What a chaos run counts: the faults injected per kind and, per invariant, how many
times it was checked and every violation seen (with what happened just before), and
the tables printed at the end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

__all__ = ["INVARIANTS", "Problem", "Tally", "markdown_table"]

#: Invariant keys and the line each gets in the table, in table order.
INVARIANTS = {
    "unknown": "no managed process the daemon does not know",
    "twice": "no server running twice",
    "writes": "every acknowledged store write present",
    "console": "console continuous or gap announced in-band",
    "integrity": "store PRAGMA integrity_check ok",
    "recovery": "API answers within 1 s after recovery",
    "exits": "daemon exits and reloads as documented",
}


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


#: A violation: its text, or (an identity, its text) when the same fault of the daemon
#: shows up at every check (one process left running): it is then counted once.
Problem = str | tuple[Hashable, str]


class Tally:
    def __init__(self, fault_kinds: Iterable[str], recovery_limit: float = 1.0) -> None:
        #: Seconds within which the API must answer after a recovery.
        self.recovery_limit = recovery_limit
        self.faults: Counter[str] = Counter({kind: 0 for kind in fault_kinds})
        self.checks: Counter[str] = Counter({key: 0 for key in INVARIANTS})
        self.violations: dict[str, dict[Hashable, list[Any]]] = {key: {} for key in INVARIANTS}
        self.context = "start-up"
        self.notes: list[str] = []

    def label(self, key: str, text: str) -> str:
        """An invariant's line in the table, with the recovery limit of this run."""
        if key == "recovery" and self.recovery_limit != 1.0:
            return text.replace("within 1 s", f"within {self.recovery_limit:g} s")
        return text

    def fault(self, kind: str) -> None:
        self.faults[kind] += 1
        self.context = f"{kind} #{self.faults[kind]}"

    def check(self, key: str, problems: Iterable[Problem] = ()) -> None:
        """One check of invariant ``key``; each problem is one violation."""
        self.checks[key] += 1
        for problem in problems:
            self.violate(key, problem)

    def violate(self, key: str, problem: Problem) -> None:
        """A violation (also one seen outside a check, by a console reader)."""
        identity, text = (problem, problem) if isinstance(problem, str) else problem
        seen = self.violations[key].get(identity)
        if seen is None:
            self.violations[key][identity] = [f"[after {self.context}] {text}", 1]
        else:
            seen[1] += 1

    def note(self, text: str) -> None:
        """An observation for the end of the report (each text once, at most 40)."""
        if text not in self.notes and len(self.notes) < 40:
            self.notes.append(text)

    @property
    def total_violations(self) -> int:
        return sum(len(v) for v in self.violations.values())

    def render(self, limit: int = 30) -> str:
        faults = markdown_table(
            ["fault", "injected"], [[kind, str(n)] for kind, n in self.faults.items()]
        )
        invariants = markdown_table(
            ["invariant", "checks", "violations"],
            [
                [self.label(key, text), str(self.checks[key]), str(len(self.violations[key]))]
                for key, text in INVARIANTS.items()
            ],
        )
        parts = [faults, "", invariants]
        if self.total_violations:
            parts += ["", "Violations (each once, with the fault after which it was first seen):"]
            for key, found in self.violations.items():
                for text, times in list(found.values())[:limit]:
                    again = f" (seen at {times} checks)" if times > 1 else ""
                    parts.append(f"- {key}: {text}{again}")
                if len(found) > limit:
                    parts.append(f"- {key}: ... {len(found) - limit} more")
        if self.notes:
            parts += ["", *self.notes]
        return "\n".join(parts)
