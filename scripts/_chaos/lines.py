"""The check of a numbered-line console (pure: bytes in, problems out).

The numbered flooder writes ``N <run> <number> ...`` lines, whole lines per write,
numbers from 0 in every run (a run is one start of the server). Fed the console's bytes
in order, :class:`LineCheck` wants every number of a run right after the one before,
each new run to start at 0, and no run to come back once another has begun (two copies
writing at once). Only where the reader announces a gap (:meth:`LineCheck.gap`: the
API said bytes are no longer there) may numbers be missing; the first line after a gap
may be cut and is skipped. Other lines (the daemon's ``[leosuite]`` markers) are left
alone, but a line that starts like a numbered one and is not whole is a problem.
"""

from __future__ import annotations

from .programs import NUMBERED

__all__ = ["LineCheck"]


class LineCheck:
    def __init__(self, label: str) -> None:
        self.label = label
        self.lines = 0
        self.gaps = 0
        self._buffer = b""
        self._index = 0  # the console index of the buffer's first byte
        self._run: bytes | None = None
        self._last = -1
        self._runs: set[bytes] = set()
        self._skip_first = False
        self._loose = False

    def gap(self, index: int) -> None:
        """The bytes before ``index`` that were not fed are gone (announced by the API)."""
        self.gaps += 1
        self._buffer = b""
        self._index = index
        self._skip_first = True
        self._loose = True

    def feed(self, data: bytes) -> list[str]:
        """Check the whole lines ``data`` completes; the problems found."""
        problems = []
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            at = self._index
            self._index += len(line) + 1
            if self._skip_first:
                self._skip_first = False
                continue
            problem = self._line(line, at)
            if problem:
                problems.append(f"{self.label} at index {at}: {problem}")
        return problems

    def _line(self, line: bytes, at: int) -> str | None:
        match = NUMBERED.match(line)
        if match is None:
            if line.startswith(b"N "):
                return f"a numbered line is not whole: {line[:80]!r}"
            return None
        run, number = match.group(1), int(match.group(2))
        self.lines += 1
        loose, self._loose = self._loose, False
        previous, last = self._run, self._last
        self._run, self._last = run, number
        if run == previous:
            if number == last + 1 or (loose and number > last):
                return None
            if number <= last:
                return f"run {run.decode()}: {number} after {last} (repeated or out of order)"
            missing = number - last - 1
            return (
                f"run {run.decode()}: {number} after {last} ({missing} missing, no gap announced)"
            )
        if run in self._runs:
            return (
                f"run {run.decode()} writes again after run "
                f"{previous.decode() if previous else '?'} began: two copies running"
            )
        self._runs.add(run)
        if number != 0 and not loose:
            return f"run {run.decode()} starts at {number}, not 0, with no gap announced"
        return None
