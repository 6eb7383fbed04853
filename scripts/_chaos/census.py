"""scripts/soak --census: where the daemon's Python heap grows, from tracemalloc snapshots.

The soak writes a ``sitecustomize.py`` into the run's directory and puts that directory
on the daemon's ``PYTHONPATH``: in a ``leosuite serve`` process it starts tracemalloc
(6 frames a trace) and takes a snapshot every ``--census`` minutes into the same
directory. At the end the soak compares the snapshots: what grew between the first and
the last, and between the middle one and the last (the later half is what a buffer
still filling cannot explain for long), by source line. Tracing slows the daemon and
multiplies its memory (by 3-4 in a 2-hour soak), so the rows of such a run measure the
census too: run it beside a soak without it, not in its place.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

__all__ = ["SITECUSTOMIZE", "compare", "install"]

#: The environment variable that names the census directory and the minutes between
#: snapshots (``DIR:MINUTES``); not ``LEOSUITE_*``, which the daemon checks.
ENV = "SOAK_CENSUS"

SITECUSTOMIZE = '''\
"""The soak's census: tracemalloc snapshots of a leosuite daemon (scripts/_chaos/census.py)."""
import os
import sys
import threading
import time

_spec = os.environ.get("SOAK_CENSUS", "")
_argv = getattr(sys, "orig_argv", [])
if _spec and "leosuite" in _argv and "serve" in _argv:  # the daemon, not its servers
    import tracemalloc

    _dir, _, _minutes = _spec.rpartition(":")
    tracemalloc.start(6)
    _began = time.monotonic()

    def _census() -> None:
        n = 1
        while True:
            time.sleep(max(0.0, _began + n * float(_minutes) * 60 - time.monotonic()))
            minute = round(n * float(_minutes))
            tracemalloc.take_snapshot().dump(os.path.join(_dir, f"snap-{minute:04d}.pickle"))
            n += 1

    threading.Thread(target=_census, name="soak-census", daemon=True).start()
'''

_IGNORED = [
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, tracemalloc.__file__),
]


def install(directory: Path, minutes: float) -> dict[str, str]:
    """Write the census's ``sitecustomize.py`` into ``directory``; the daemon's
    environment that turns it on."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {ENV: f"{directory}:{minutes:g}"}


def _load(path: Path) -> tracemalloc.Snapshot:
    return tracemalloc.Snapshot.load(str(path)).filter_traces(_IGNORED)


def _minute(path: Path) -> int:
    return int(path.stem.split("-")[1])


def compare(directory: Path, top: int = 12) -> str:
    """What grew between the snapshots in ``directory``, as text for the report."""
    snaps = sorted(directory.glob("snap-*.pickle"), key=_minute)
    if len(snaps) < 2:
        return f"census: {len(snaps)} snapshot(s) in {directory}, nothing to compare"
    first, middle, last = snaps[0], snaps[len(snaps) // 2], snaps[-1]
    pairs = [(first, last)]
    if middle not in (first, last):  # two snapshots have no middle of their own
        pairs.append((middle, last))
    loaded = {path: _load(path) for pair in pairs for path in pair}
    out = []
    for a, b in pairs:
        old, new = loaded[a], loaded[b]
        total_a = sum(s.size for s in old.statistics("filename"))
        total_b = sum(s.size for s in new.statistics("filename"))
        out.append(
            f"\ncensus: minute {_minute(a)} -> {_minute(b)}: traced {total_a / 2**20:.2f} -> "
            f"{total_b / 2**20:.2f} MiB ({(total_b - total_a) / 2**10:+.0f} KiB); "
            f"most grown, by line:"
        )
        for stat in new.compare_to(old, "lineno")[:top]:
            frame = stat.traceback[0]
            out.append(
                f"  {stat.size_diff / 2**10:+9.1f} KiB {stat.count_diff:+8d} blocks  "
                f"{frame.filename}:{frame.lineno}"
            )
    return "\n".join(out)
